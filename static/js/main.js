// The page: one state object; events change it, then the controls and the active view are redrawn
// from it. Fetching happens only on submit: switching kind, layer, head or view never refetches.

import { agreementSentence, agreementTable, argmaxAgreement, otherModels, otherRequest } from "./agreement.js";
import { ApiError, fetchAttention, fetchExplanation } from "./api.js";
import { downloadBlob, downloadGrid, downloadPlot } from "./exporting.js";
import { comparisonTable, differences, gridDifferences, pinnedMap, pinnedSelection, pinnedStep, statisticsShift, whyNoDifference } from "./compare.js";
import { contributionsTable, contributionViews, sourceShares } from "./contributions.js";
import { checkForm, fieldOf, labelled } from "./form.js";
import { explainRequest, explanationSteps, headEfficiency } from "./learn/explain.js";
import { differenceMap, displayedMap, headName, highlightFor, selectionName } from "./selection.js";
import {
  clampSelection,
  firstLayer,
  headChoices,
  initialState,
  KIND_NAMES,
  KINDS,
  layerCount,
  queryFromState,
  requestQuery,
  shownKind,
  stateFromQuery,
  stepHead,
  VIEWS,
  whyNoView,
} from "./state.js";
import { gridSummaryTable, gridViews, longTable, matrixTable, statisticsTable, stepTable, tableCsv } from "./tables.js";
import { drawGrid, parseHead } from "./views/grid.js";
import { bindAxisLabelHover, drawCompare, drawHeadView, drawHighlight, headFigure, headTitle } from "./views/head.js";
import { drawHeader } from "./views/header.js";
import { maskColour } from "./views/heatmap.js";
import { drawLabelledPanels, drawPanels, panelsTitle, panelViews } from "./views/panels.js";
import { chosenControls, describeGranularity, describeLanguages, describeMethods, drawControls, modelLine } from "./views/model.js";
import { contributionsTitle, drawContributions } from "./views/contributions.js";
import { drawStatistics, drawStatisticsShift, statisticsOf } from "./views/stats.js";
import { sketchFigure } from "./views/sketch.js";
import { drawSteps, stepRow, stepsView } from "./views/steps.js";
import { checkSentence, drawRowFigure, explanationSections, explanationTable, explanationTitle } from "./views/explain.js";
import { drawTable } from "./views/table.js";
import { bestAlignmentNote } from "./lines.js";
import { drawLines, linesTable } from "./views/lines.js";

const state = initialState();
const $ = (id) => document.getElementById(id);
const el = {
  form: $("query"),
  source: $("source"),
  target: $("target"),
  model: $("model"),
  beam: $("beam"),
  granularity: $("granularity"),
  granularityWhy: $("granularity-why"),
  methods: { method: $("method"), why: $("method-why"), saliency: $("saliency"), saliencyField: $("saliency-field") },
  controls: $("controls"),
  submit: $("submit"),
  error: $("error"),
  empty: $("empty"),
  result: $("result"),
  staleNote: $("stale-note"),
  modelInfo: $("model-info"),
  languages: {
    tagline: $("tagline"),
    sourceLabel: $("source-label"),
    source: $("source"),
    target: $("target"),
    sourceTokens: $("source-tokens"),
    targetText: [$("target"), $("translation"), $("target-tokens"), $("step-prefix")],
    examples: $("examples"),
  },
  viewNote: $("view-note"),
  kindPicker: $("kind-picker"),
  layer: $("layer"),
  head: $("head"),
  showSpecial: $("show-special"),
  renormalise: $("renormalise"),
  normaliseRows: $("normalise-rows"),
  normaliseRowsControl: $("normalise-rows-control"),
  showReadings: $("show-readings"),
  scale: $("scale"),
  toolbarNote: $("toolbar-note"),
  headFigure: $("head-figure"),
  compare: $("compare"),
  compareNote: $("compare-note"),
  compareFigures: { pinned: $("compare-pinned"), difference: $("compare-difference") },
  pin: $("pin"),
  // Beside each other view's figure, with a pinned result: a note and (but for decoding steps) a figure.
  viewCompare: Object.fromEntries(["grid", "panels", "stats", "steps"].map((view) => [view, { note: $(`${view}-compare-note`), figure: $(`${view}-compare`) }])),
  grid: $("grid"),
  panelsFigure: $("panels-figure"),
  statsFigure: $("stats-figure"),
  otherModel: $("other-model"),
  modelsCaption: $("models-caption"),
  modelsFigure: $("models-figure"),
  explain: { query: $("explain-query"), status: $("explain-status"), check: $("explain-check"), figure: $("explain-figure"), steps: $("explain-steps") },
  legend: $("legend"),
  maskSwatch: $("mask-swatch"),
  legendText: $("legend-text"),
  table: $("figure-table"),
  actionStatus: $("action-status"),
  header: {
    translation: $("translation"),
    mode: $("mode"),
    score: $("score"),
    badges: $("badges"),
    warnings: $("warnings"),
    sourceTokens: $("source-tokens"),
    targetTokens: $("target-tokens"),
    unknownNote: $("unknown-note"),
  },
  lines: { note: $("lines-note"), figure: $("lines-figure") },
  contributions: { figure: $("contributions-figure"), shares: $("source-shares") },
  steps: {
    slider: $("step"),
    position: $("step-position"),
    prefix: $("step-prefix"),
    summary: $("step-summary"),
    figure: $("steps-figure"),
  },
};

// What the views last drew: the head view for hovers, the decoding steps for the slider, and the
// figure on screen for its exports ({ element, figures, table, csvTable, name, title }: `figures`, the
// Plotly figures or overview grids an image export stacks, where more than `element` is on screen).
let headView = null;
let linesView = null; // { view, point } of the line view last drawn
let currentStepsView = null;
let onScreen = null;
let latestRequest = 0;

function options() {
  return { showSpecial: state.showSpecial, renormalise: state.renormalise, normaliseRows: state.normaliseRows, showReadings: state.showReadings, scale: state.scale };
}

// The result's maps by kind; none for method saliency, which has contributions only.
function hasMaps() {
  return Object.keys(state.response.attention).length > 0;
}

// Whether the result holds values that are not distributions (norms, saliency), which Row-normalise divides.
function hasRawRows() {
  const response = state.response;
  return Object.values(response.attention).some((map) => map.rows_sum_to_one === false) || response.contributions?.normalised === false;
}

function modelInfo(name = state.model) {
  return state.models.find((m) => m.name === name);
}

// What the result on screen can be compared with in the compare view.
function comparable() {
  return otherModels(state.models, state.response.model);
}

function clamp() {
  clampSelection(state, modelInfo(state.response.model), comparable().length);
}

// ---- fetching -------------------------------------------------------------------------------

// Plotly's bundle is fetched and run by startPlotly: at once when there is no result
// to show, else once the first map's preview is painted, as its start-up holds the page for a second.
// Figures wait for it; the header and the preview do not.
let startPlotly;
const plotlyReady = new Promise((resolve, reject) => {
  startPlotly = () => {
    if (document.getElementById("plotly-bundle")) return;
    const script = document.createElement("script");
    script.id = "plotly-bundle";
    script.src = "/vendor/plotly.min.js";
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error("the figure library (/vendor/plotly.min.js) could not be loaded")));
    document.head.append(script);
  };
});

// The models' descriptions, as GET /api/v1/models gives them, come with the page.
function loadModels() {
  state.models = JSON.parse($("models-data").textContent);
  el.model.replaceChildren(
    ...state.models.map((info) => {
      const option = document.createElement("option");
      option.value = info.name;
      option.textContent = info.name;
      option.title = info.description;
      return option;
    }),
  );
  if (!state.models.some((m) => m.name === state.model)) state.model = (state.models.find((m) => m.default) ?? state.models[0])?.name ?? "";
  el.model.value = state.model;
  describeModel();
}

// Refused in the page before any request: what the form can tell is wrong.
function translate() {
  performance.mark("attnscope:submit");
  const problem = checkForm(el, modelInfo());
  if (problem) {
    showError(problem.message, problem.field);
    fieldOf(el, problem.field)?.focus();
    return Promise.resolve();
  }
  readForm();
  return request();
}

async function request() {
  const number = ++latestRequest;
  setLoading(true);
  try {
    const response = await fetchAttention(state);
    if (number !== latestRequest) return; // a newer request is on its way; this answer is stale
    performance.mark("attnscope:response");
    // Another method: open on its own layer map where it has one (norms, alti), the mean of heads otherwise.
    if (state.response && state.response.method !== response.method) state.head = "layer";
    state.response = response;
    state.answeredSource = state.source;
    state.asked = { model: state.model, source: state.source, target: state.target, beam: state.beam, controls: state.controls };
    clamp();
    showError("");
    await render();
    bringResultIntoView();
  } catch (error) {
    if (number !== latestRequest) return;
    if (!(error instanceof ApiError)) console.error(error);
    showError(error instanceof ApiError ? labelled(error.message) : `Something went wrong: ${error}`, error.field);
  } finally {
    if (number === latestRequest) setLoading(false);
    writeUrl();
  }
}

function readForm() {
  state.source = el.source.value;
  state.target = el.target.value;
  state.model = el.model.value || state.model;
  state.beam = Number(el.beam.value); // checked by checkForm
  state.granularity = el.granularity.disabled ? "token" : el.granularity.value;
  state.method = el.methods.method.value || "weights";
  state.saliency = state.method === "saliency" ? el.methods.saliency.value : "";
  const chosen = Object.fromEntries([...el.controls.querySelectorAll("select")].map((select) => [select.dataset.control, select.value]));
  state.controls = chosenControls(modelInfo(), chosen);
}

function setLoading(loading) {
  state.loading = loading;
  el.submit.disabled = loading;
  el.submit.textContent = loading ? "Translating…" : "Translate";
  el.form.setAttribute("aria-busy", String(loading));
}

// An error names the field to fix (marked invalid); a result still on screen is marked as the earlier one.
function showError(message, field) {
  state.error = message;
  el.error.textContent = message;
  el.error.hidden = !message;
  for (const input of el.form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const invalid = fieldOf(el, field);
  if (invalid) invalid.setAttribute("aria-invalid", "true");
  const stale = Boolean(message && state.response);
  el.result.classList.toggle("stale", stale);
  el.staleNote.hidden = !stale;
  el.staleNote.textContent = stale ? `Shown below: the earlier result, for “${state.answeredSource}”. Fix the input above and translate again.` : "";
}

// After Enter the result's header, tabs, toolbar and figure fill the screen: scrolled to where they start.
function bringResultIntoView() {
  const figure = $(`view-${state.view}`).getBoundingClientRect();
  if (figure.bottom > window.innerHeight || figure.top < 0) el.result.scrollIntoView({ block: "start" });
}

// ---- rendering ------------------------------------------------------------------------------

function render() {
  const response = state.response;
  el.empty.hidden = Boolean(response);
  el.result.hidden = !response;
  if (!response) return Promise.resolve();
  drawHeader(el.header, response, state.beam, modelInfo(response.model), state.controls);
  renderControls();
  if (!window.Plotly && state.view === "head") {
    drawPreview();
    // Once the preview's frame is painted (the mark says when, for bench/page_timing.py).
    requestAnimationFrame(() =>
      setTimeout(() => {
        performance.mark("attnscope:head-preview-painted");
        startPlotly();
      }, 0),
    );
  } else startPlotly();
  return plotlyReady.then(renderView);
}

// Until Plotly's bundle has started up (a shared link opened afresh), the head view's figure is
// painted on a canvas from the same traces and layout (views/sketch.js); the interactive one replaces it.
function drawPreview() {
  const view = displayedMap(state.response, options(), shownKind(state), state.layer, state.head);
  const preview = sketchFigure(headFigure(view, options(), el.headFigure.clientWidth, headHeight()));
  preview.className = "preview";
  el.headFigure.replaceChildren(preview);
  el.headFigure.setAttribute("aria-label", `${headTitle(view)}. The interactive figure, and the table of its values, are loading.`);
  performance.mark("attnscope:head-preview");
}

// The reasons a control does nothing in this view, shown beside the toolbar.
function inapplicable() {
  const reasons = [];
  const method = state.response.method ?? "weights";
  if (!hasMaps()) reasons.push(`Method ${method} has no per-layer maps, so the attention, layer and head pickers do not apply.`);
  else if (state.view === "contributions") reasons.push("Contributions are composed through every layer, so the attention, layer and head pickers do not apply.");
  if (hasRawRows() && !state.normaliseRows) reasons.push(`Method ${method} gives rows that are not distributions: shown as they are; tick Row-normalise to compare rows.`);
  if (state.view === "panels") reasons.push("The three panels show every kind of attention, so the attention picker does not apply.");
  if (state.view === "steps") reasons.push("Decoding steps follow cross-attention (what each produced token looks at), so the attention picker does not apply.");
  if (state.view === "models") reasons.push("The compare view shows cross-attention (the only kind both models have for one sentence), so the attention picker does not apply.");
  if (state.view === "lines") reasons.push("The line view links source and target tokens, which is cross-attention, so the attention picker does not apply.");
  const info = modelInfo(state.response.model);
  const lacking = KINDS.filter((kind) => !(kind in info.kinds));
  if (lacking.length) reasons.push(`${info.name} has no ${lacking.map((k) => KIND_NAMES[k].toLowerCase()).join(" or ")}, so neither that attention nor the three panels are offered.`);
  const noCompare = whyNoView("models", info, comparable().length);
  if (noCompare) reasons.push(noCompare);
  if (state.view === "explain") reasons.push("How it's computed shows every key as the model weighs it, <s> and </s> included, so hiding them and renormalising do not apply.");
  if (state.showSpecial && !hasRawRows()) reasons.push("Rows are renormalised only when <s> and </s> are hidden: shown, every row sums to 1.");
  if (!hasReadings()) reasons.push("This result has no readings to show.");
  return reasons;
}

function hasReadings() {
  return state.response.target_tokens.some((t) => t.reading);
}

function renderControls() {
  const response = state.response;
  const kind = shownKind(state);
  const maps = hasMaps();
  const pickerApplies = maps && !["panels", "steps", "models", "contributions", "lines"].includes(state.view);
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.checked = radio.value === kind;
    radio.disabled = !pickerApplies || !(radio.value in response.attention);
  }
  el.kindPicker.setAttribute("aria-disabled", String(!pickerApplies));
  fillSelect(el.layer, maps ? Array.from({ length: layerCount(response, kind) }, (_, l) => [String(l), String(l)]) : [], String(state.layer));
  fillSelect(el.head, maps ? headChoices(response, kind, state.view === "explain").map((h) => [String(h), typeof h === "number" ? String(h) : headName(h)]) : [], String(state.head));
  el.layer.disabled = el.head.disabled = !maps || state.view === "contributions";
  el.normaliseRowsControl.hidden = !hasRawRows();
  el.normaliseRows.checked = state.normaliseRows;
  el.showSpecial.checked = state.showSpecial;
  el.renormalise.checked = state.renormalise && !state.showSpecial;
  el.renormalise.disabled = state.showSpecial || hasRawRows(); // raw rows follow Row-normalise instead
  el.showReadings.checked = state.showReadings && hasReadings();
  el.showReadings.disabled = !hasReadings();
  el.scale.value = state.scale;
  const reasons = inapplicable();
  el.toolbarNote.textContent = reasons.join(" ");
  el.toolbarNote.hidden = reasons.length === 0;
  const info = modelInfo(response.model);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const active = tab.dataset.view === state.view;
    const why = whyNoView(tab.dataset.view, info, comparable().length, response);
    tab.setAttribute("aria-selected", String(active));
    tab.tabIndex = active ? 0 : -1;
    tab.disabled = Boolean(why);
    tab.title = why;
  }
  fillSelect(el.otherModel, comparable().map((m) => [m.name, m.name]), otherModelName());
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== state.view;
  el.pin.textContent = state.pinned ? "Unpin" : "Pin this result";
  el.pin.setAttribute("aria-pressed", String(Boolean(state.pinned)));
}

// The model the compare view sets beside this result: the one chosen, else the first other one.
function otherModelName() {
  const others = comparable();
  return (others.find((m) => m.name === state.otherModel) ?? others[0])?.name ?? "";
}

function fillSelect(select, entries, value) {
  const current = [...select.options].map((o) => `${o.value}:${o.textContent}`).join("|");
  const wanted = entries.map(([v, text]) => `${v}:${text}`).join("|");
  if (current !== wanted) {
    select.replaceChildren(
      ...entries.map(([v, text]) => {
        const option = document.createElement("option");
        option.value = v;
        option.textContent = text;
        return option;
      }),
    );
  }
  select.value = value;
}

// The px the head view may take: on a laptop screen the figure fits below the result's header,
// tabs and toolbar; a phone scrolls instead, so there the width decides.
function headHeight() {
  if (window.innerWidth < 600) return Infinity;
  const offset = el.headFigure.getBoundingClientRect().top - el.result.getBoundingClientRect().top;
  return Math.max(320, window.innerHeight - offset - 56);
}

async function renderView() {
  const response = state.response;
  const kind = shownKind(state);
  const selected = { layer: state.layer, head: state.head };
  switch (state.view) {
    case "head": {
      headView = displayedMap(response, options(), kind, state.layer, state.head);
      for (const preview of el.headFigure.querySelectorAll(".preview")) preview.remove();
      await drawHeadView(el.headFigure, headView, options(), { rows: [], cols: [] }, headHeight());
      performance.mark("attnscope:head-view");
      onScreen = { element: el.headFigure, table: matrixTable(headView, headTitle(headView)), name: `head-${kind}-L${state.layer}-${fileHead(state.head)}` };
      describeFirstView(kind);
      Object.assign(onScreen, await renderCompare());
      bindHeadClicks();
      break;
    }
    case "grid": {
      performance.mark("attnscope:grid-start");
      const layers = gridViews(response, options(), kind);
      drawGrid(el.grid, layers, options(), selected);
      performance.mark("attnscope:grid-end");
      const title = `${KIND_NAMES[kind]}: every layer and head, with each layer's mean and max (each map coloured up to its own largest weight)`;
      onScreen = { element: el.grid, title, table: gridSummaryTable(layers, kind), csvTable: longTable(layers.flat(), title), name: `overview-${kind}` };
      Object.assign(onScreen, compareGrid(layers, kind, selected, title));
      break;
    }
    case "panels": {
      const views = panelViews(response, options(), state.layer, state.head);
      await drawPanels(el.panelsFigure, views, options());
      const title = panelsTitle(views);
      onScreen = { element: el.panelsFigure, table: longTable(views, title), name: `panels-L${state.layer}-${fileHead(state.head)}` };
      Object.assign(onScreen, await comparePanels(views, title));
      break;
    }
    case "stats": {
      const statistics = statisticsOf(response, options(), kind);
      await drawStatistics(el.statsFigure, statistics, options(), kind, selected);
      bindStatisticsClicks();
      onScreen = { element: el.statsFigure, table: statisticsTable(statistics, kind), name: `statistics-${kind}` };
      Object.assign(onScreen, await compareStatistics(statistics, kind, onScreen.table));
      break;
    }
    case "steps": {
      currentStepsView = stepsView(response, options(), state.layer, state.head);
      const row = stepRow(currentStepsView, state.step);
      const pinnedRow = compareStep(currentStepsView, row);
      await drawSteps(el.steps, currentStepsView, options(), state.step, pinnedRow?.view.matrix[row]);
      onScreen = { element: el.steps.figure, table: stepTable(currentStepsView, row), name: `steps-cross-L${state.layer}-${fileHead(state.head)}-step${row + 1}` };
      if (pinnedRow) {
        const parts = [{ name: "this result", table: onScreen.table }, { name: "pinned", table: stepTable(pinnedRow.view, row) }];
        onScreen.csvTable = comparisonTable(onScreen.table.caption, parts);
      }
      break;
    }
    case "lines": {
      // The selected cross map; for a method with no per-layer maps (saliency), its source contributions.
      const perLayer = "cross" in response.attention;
      const view = perLayer ? displayedMap(response, options(), "cross", state.layer, state.head === "rollout" ? "mean" : state.head) : contributionViews(response, options())[0];
      const what = perLayer ? `cross-attention · ${selectionName("cross", view.layer, view.head)}` : "source contributions";
      const title = `Line view · ${what} · method ${response.method ?? "weights"}`;
      const drawn = drawLines(el.lines.figure, view, options(), { source: "source tokens", target: "produced tokens" });
      linesView = { view, point: drawn.point };
      el.lines.note.textContent = bestAlignmentNote(modelInfo(response.model)?.alignment_layer, response.method ?? "weights");
      el.lines.note.hidden = !el.lines.note.textContent;
      onScreen = { element: el.lines.figure, title, table: linesTable(view, drawn.links, title), name: perLayer ? `lines-${response.method}-L${state.layer}-${fileHead(view.head)}` : `lines-${response.method}-contributions` };
      break;
    }
    case "contributions": {
      const views = contributionViews(response, options());
      const shares = sourceShares(response, options());
      const title = contributionsTitle(response);
      await drawContributions(el.contributions, views, shares, options(), title);
      onScreen = { element: el.contributions.figure, title, table: contributionsTable(views, shares, title), name: `contributions-${response.method}` };
      break;
    }
    case "models": {
      const drawn = await renderModels();
      if (!drawn) return; // a newer result or choice came while the other model was asked: its render draws
      onScreen = drawn;
      break;
    }
    case "explain": {
      const drawn = await renderExplain();
      if (!drawn) return; // a newer result or choice came while the model was asked: its render draws
      onScreen = drawn;
      break;
    }
  }
  onScreen.title ??= onScreen.table.caption;
  onScreen.element.setAttribute("aria-label", `${onScreen.title}. The table after the figure lists its values.`);
  if (el.table.open) drawTable(el.table.querySelector("table"), onScreen.table);
  renderLegend();
}

function fileHead(head) {
  return typeof head === "number" ? `H${head}` : head;
}

// The legend under every view: the mask colour of the current scale (only where a causal map is
// drawn), and what hiding <s> and </s> did to the rows.
function renderLegend() {
  const kind = shownKind(state);
  const contributions = state.view === "contributions";
  const causal = contributions || (state.view === "panels" ? "decoder" in state.response.attention : Boolean(state.response.attention[kind]?.causal));
  el.legend.hidden = state.view === "explain"; // its numbers are every key's, as the model computed them
  el.maskSwatch.hidden = !causal;
  el.maskSwatch.style.backgroundColor = maskColour(state.scale);
  const parts = [];
  const method = state.response.method ?? "weights";
  const raw = contributions ? state.response.contributions.normalised === false : state.response.attention[kind]?.rows_sum_to_one === false;
  if (causal) parts.push("masked: a future position the decoder cannot see");
  if (method === "norms" && !contributions) parts.push("norms ‖α f(x)‖: how much each key moves into the query (head: ‖α f_h(x)‖, layer map: ‖Σ_h α f_h(x)‖)");
  if (method === "alti" && !contributions) parts.push(`ALTI+ contributions of each block${kind === "cross" ? "; the decoder's own residual stream has the rest of each row (not drawn)" : ""}`);
  if (contributions) parts.push(`${method}: source and prefix parts of each row drawn on one scale`);
  if (raw) parts.push(state.normaliseRows ? "rows normalised to sum to 1 over the tokens shown" : "rows not normalised: the values as the method gives them");
  else if (state.showSpecial) parts.push("<s> and </s> shown: each row sums to 1");
  else if (state.renormalise) parts.push("<s> and </s> hidden, each row renormalised to sum to 1 over the tokens shown");
  else parts.push("<s> and </s> hidden and rows not renormalised: a row shows only its share of weight on the tokens shown");
  if (!state.showSpecial && kind === "decoder" && state.view !== "grid") parts.push("the first produced token can only look at <s>, so its row is all masked");
  parts.push("word? unknown to the model");
  if (state.view === "head") parts.push("point at a token to outline its row and column");
  if (state.view === "head" && modelInfo(state.response.model)?.explains) parts.push("click a row to see how it is computed");
  if (state.view === "lines") parts.push("line width: a link's share of its produced token's row over the source tokens shown; dark: each row's strongest link");
  el.legendText.textContent = parts.join(" · ");
}

// Pinned: the pinned result's map next to the current one, and their difference where the tokens
// match. Returns what the exports add: the figures drawn, and the CSV with a line per cell of each.
async function renderCompare() {
  const pinned = state.pinned;
  el.compare.hidden = !pinned;
  if (!pinned) return {};
  const kind = shownKind(state);
  const link = el.compare.querySelector("a");
  link.href = `?${pinned.query}`;
  const before = pinnedMap(pinned.response, options(), headView);
  if (!before) {
    el.compareNote.textContent = `The pinned result has no ${KIND_NAMES[kind].toLowerCase()}.`;
    Plotly.purge(el.compareFigures.pinned);
    Plotly.purge(el.compareFigures.difference);
    return {};
  }
  const difference = differenceMap(before, headView);
  const why = difference ? "Right: this result minus the pinned one (red: more weight now)." : `No difference map: ${whyNoDifference(headView, before)}.`;
  el.compareNote.textContent = `${pinnedLabel()} · ${selectionName(kind, before.layer, before.head)}. ${why}`;
  await drawCompare(el.compareFigures, before, difference, options(), headHeight());
  const title = headTitle(headView);
  const parts = [{ name: "this result", table: longTable([headView], title) }, { name: "pinned", table: longTable([before], title) }];
  if (difference) parts.push({ name: "difference", table: longTable([difference], title) });
  const figures = [el.headFigure, el.compareFigures.pinned, ...(difference ? [el.compareFigures.difference] : [])];
  return { figures, csvTable: comparisonTable(title, parts) };
}

function pinnedLabel() {
  return `Pinned: “${state.pinned.label}”`;
}

// The compare note and figure of a view other than the head view, shown only while a result is pinned;
// `text` says what is shown, or why nothing is; `shown`: whether the view's compare figure is.
function compareBox(view, text, shown) {
  const box = el.viewCompare[view];
  box.note.hidden = !state.pinned;
  box.note.textContent = state.pinned ? `${pinnedLabel()}. ${text}` : "";
  if (box.figure) box.figure.hidden = !shown;
  return box;
}

// The overview: under it, the pinned overview, or each map minus the pinned one where every map's tokens match.
function compareGrid(layers, kind, selected, title) {
  if (!state.pinned) {
    compareBox("grid", "", false);
    return {};
  }
  const pinnedResponse = state.pinned.response;
  if (!(kind in pinnedResponse.attention)) {
    compareBox("grid", `It has no ${KIND_NAMES[kind].toLowerCase()}.`, false);
    return {};
  }
  const pinnedLayers = gridViews(pinnedResponse, options(), kind);
  const difference = gridDifferences(layers, pinnedLayers);
  const why = whyNoDifference(layers[0][0], pinnedLayers[0][0]) || "it has another number of layers or heads";
  const box = compareBox("grid", difference ? "Below: this result minus the pinned one, map by map (red: more weight now)." : `Below: the pinned result (no difference: ${why}).`, true);
  drawGrid(box.figure, difference ?? pinnedLayers, options(), selected, difference ? "difference" : "pinned");
  const compareTitle = difference ? `This result minus the pinned one · ${title}` : `Pinned · ${title}`;
  const parts = [{ name: "this result", table: longTable(layers.flat(), title) }, { name: difference ? "difference" : "pinned", table: longTable((difference ?? pinnedLayers).flat(), title) }];
  return {
    figures: [{ element: el.grid, title, signed: false }, { element: box.figure, title: compareTitle, signed: Boolean(difference) }],
    csvTable: comparisonTable(title, parts),
  };
}

// The three panels: under them, the pinned result's panels, or the differences where every panel's tokens match.
async function comparePanels(views, title) {
  if (!state.pinned) {
    compareBox("panels", "", false);
    return {};
  }
  const pinnedViews = panelViews(state.pinned.response, options(), state.layer, state.head);
  const difference = differences(views, pinnedViews);
  const why = pinnedViews.length !== views.length ? "it has other kinds of attention" : views.map((v, k) => whyNoDifference(v, pinnedViews[k]) && `${KIND_NAMES[v.kind].toLowerCase()}: ${whyNoDifference(v, pinnedViews[k])}`).filter(Boolean).join("; ");
  const box = compareBox("panels", difference ? "Below: this result minus the pinned one (red: more weight now)." : `Below: the pinned result (no difference: ${why}).`, true);
  const shown = difference ?? pinnedViews;
  await drawPanels(box.figure, shown, options(), difference ? `This result minus the pinned one · ${panelsTitle(views)}` : `Pinned · ${panelsTitle(pinnedViews)}`);
  const parts = [{ name: "this result", table: longTable(views, title) }, { name: difference ? "difference" : "pinned", table: longTable(shown, title) }];
  return { figures: [el.panelsFigure, box.figure], csvTable: comparisonTable(title, parts) };
}

// Head statistics: under them, each head's point for the pinned result (hollow) and this one (filled).
async function compareStatistics(statistics, kind, table) {
  if (!state.pinned) {
    compareBox("stats", "", false);
    return {};
  }
  const pinnedResponse = state.pinned.response;
  if (!(kind in pinnedResponse.attention)) {
    compareBox("stats", `It has no ${KIND_NAMES[kind].toLowerCase()}.`, false);
    return {};
  }
  const pinnedStatistics = statisticsOf(pinnedResponse, options(), kind);
  const box = compareBox("stats", "Below: how each head moved from the pinned result (hollow) to this one (filled).", true);
  await drawStatisticsShift(box.figure, statisticsShift(statistics, pinnedStatistics), kind);
  const parts = [{ name: "this result", table }, { name: "pinned", table: statisticsTable(pinnedStatistics, kind) }];
  return { figures: [el.statsFigure, box.figure], csvTable: comparisonTable(table.caption, parts) };
}

// Decoding steps: the pinned result's weights for the same step, where both produced the same tokens
// from the same source tokens; { view } of the pinned result, or null (the note says why).
function compareStep(view, row) {
  if (!state.pinned) {
    compareBox("steps", "", false);
    return null;
  }
  const selection = pinnedSelection(state.pinned.response, "cross", view.layer, view.head);
  if (!selection) {
    compareBox("steps", "It has no cross-attention.", false);
    return null;
  }
  const pinnedView = displayedMap(state.pinned.response, options(), "cross", selection.layer, selection.head);
  const step = pinnedStep(view, pinnedView, row);
  compareBox("steps", step.reason ? `Its steps do not line up with these: ${step.reason}.` : "Hollow bars: its weights at the same step.", false);
  return step.reason ? null : { view: pinnedView };
}

// The compare view: the other model forced on this translation (fetched once per result and model,
// the one request a view makes), its cross map beside this one's on the same axes, and how often
// their argmax source tokens agree. A newer result, model or view chosen while it is asked wins
// (null: nothing drawn; that choice's render draws).
async function renderModels() {
  const response = state.response;
  const model = otherModelName();
  const asked = otherRequest(state, model);
  const key = JSON.stringify(asked);
  if (state.other?.key !== key) {
    el.modelsCaption.textContent = `Asking ${model} for its cross-attention on this translation…`;
    try {
      const other = await fetchAttention(asked);
      if (state.response !== response || otherModelName() !== model || state.view !== "models") return null;
      state.other = { key, response: other };
    } catch (error) {
      if (!(error instanceof ApiError)) console.error(error);
      el.modelsCaption.textContent = `${model} could not be asked: ${error.message}`;
      Plotly.purge(el.modelsFigure);
      return { element: el.modelsFigure, table: { caption: `${model} could not be asked`, columns: [], rows: [] }, name: `models-${model}` };
    }
  }
  const other = state.other.response;
  const first = displayedMap(response, options(), "cross", state.layer, state.head);
  const second = displayedMap(other, options(), "cross", firstLayer(other, "cross", modelInfo(model)), "mean");
  const agreement = argmaxAgreement(first, second);
  el.modelsCaption.textContent = agreementSentence(agreement, response.model, model);
  const title = `${response.model} and ${model} on one sentence`;
  const labels = [first, second].map((view, k) => [[response.model, model][k], selectionName("cross", view.layer, view.head)]);
  await drawLabelledPanels(el.modelsFigure, [first, second], labels, options(), title);
  return {
    element: el.modelsFigure,
    title: `${title}. ${el.modelsCaption.textContent}`,
    table: agreementTable(first, second, agreement, response.model, model),
    name: `models-${response.model}-${model}-L${state.layer}-${fileHead(first.head)}`,
  };
}

// "How it's computed": one head's computation of the row of state.query, in the model's numbers, asked
// of the server once per row (the one other request a view makes), with the same request as the result
// on screen so that the model decodes the same translation. A newer result or choice made while it is
// asked wins (null: nothing drawn; that choice's render draws).
async function renderExplain() {
  const response = state.response;
  const { kind, layer, head, query } = state;
  const map = response.attention[kind];
  fillSelect(el.explain.query, response[map.query_axis].map((token, i) => [String(i), `${i}: ${token.text}`]), String(query));
  const asked = explainRequest(state.asked, kind, layer, head, query);
  const key = JSON.stringify(asked);
  if (state.explanation?.key !== key) {
    el.explain.status.textContent = `Asking ${response.model} for the numbers of layer ${layer}, head ${head}…`;
    try {
      const answer = await fetchExplanation(asked);
      const current = state.response === response && state.view === "explain";
      if (!current || JSON.stringify(explainRequest(state.asked, state.kind, state.layer, state.head, state.query)) !== key) return null;
      state.explanation = { key, response: answer };
    } catch (error) {
      if (!(error instanceof ApiError)) console.error(error);
      el.explain.status.textContent = `${response.model} could not be asked: ${error.message}`;
      el.explain.check.hidden = true;
      el.explain.steps.replaceChildren();
      Plotly.purge(el.explain.figure);
      return { element: el.explain.figure, table: { caption: el.explain.status.textContent, columns: [], rows: [] }, name: `explain-${kind}` };
    }
  }
  const explanation = state.explanation.response;
  const mapRow = map.weights[layer][head][query];
  const steps = explanationSteps(explanation, mapRow);
  const check = checkSentence(explanation, steps);
  el.explain.status.textContent = `${explanationTitle(explanation)}. Pick another row below, or another kind, layer or head above.`;
  el.explain.check.textContent = check.text;
  el.explain.check.classList.toggle("differs", !check.equal);
  el.explain.check.hidden = false;
  await drawRowFigure(el.explain.figure, explanation, steps, mapRow);
  el.explain.steps.replaceChildren(...explanationSections(explanation, steps, headEfficiency(explanation), mapRow, options()));
  return {
    element: el.explain.figure,
    title: explanationTitle(explanation),
    table: explanationTable(explanation, steps, mapRow),
    name: `explain-${kind}-L${layer}-H${head}-q${query}`,
  };
}

// A click on a row of the head view opens "How it's computed" for that query token (and, from the
// mean or max of heads, for head 0: an aggregate is no one computation). Bound once.
let headClicksBound = false;
function bindHeadClicks() {
  if (headClicksBound) return;
  headClicksBound = true;
  el.headFigure.on("plotly_click", (event) => {
    const point = event.points?.find((p) => p.data.yaxis === "y");
    if (!point || !headView || !modelInfo(state.response.model)?.explains) return;
    update({ view: "explain", query: headView.rows[point.y], head: typeof state.head === "number" ? state.head : 0 });
  });
}

// Plotly's click events live on the figure element once it has been drawn; bound once.
let statisticsClicksBound = false;
function bindStatisticsClicks() {
  if (statisticsClicksBound) return;
  statisticsClicksBound = true;
  el.statsFigure.on("plotly_click", (event) => {
    const point = event.points?.[0];
    if (point) selectHead(point.y, point.x);
  });
}

// Why the head view opened where it did: the layer the model's card measured to align best, or,
// without such a figure, the last layer. Said while that is what is shown.
function describeFirstView(kind) {
  const alignment = modelInfo(state.response.model)?.alignment_layer;
  const shown = kind === "cross" && alignment && state.head === "mean" && state.layer === Math.min(alignment.layer, layerCount(state.response, kind) - 1);
  el.viewNote.hidden = !shown;
  if (!shown) return;
  el.viewNote.textContent = alignment.measured
    ? `Layer ${alignment.layer}, mean of heads: the layer whose attention aligns words best (${alignment.note}).`
    : `Layer ${alignment.layer}, mean of heads: ${alignment.note}.`;
}

function describeModel() {
  const info = modelInfo();
  if (!info) return;
  el.modelInfo.textContent = modelLine(info);
  el.beam.max = String(info.limits.max_beam_size);
  describeLanguages(el.languages, info, (text) => {
    el.source.value = text;
    el.target.value = "";
    translate();
  });
  drawControls(el.controls, info, state.controls, (control, value) => {
    state.controls = chosenControls(info, { ...state.controls, [control.name]: value });
  });
  describeGranularity(el.granularity, el.granularityWhy, info, state.granularity);
  Object.assign(state, describeMethods(el.methods, info, state.method, state.saliency));
}

// ---- changing what is shown -----------------------------------------------------------------

function update(changes) {
  Object.assign(state, changes);
  if (!state.response) return writeUrl();
  clamp();
  renderControls();
  writeUrl();
  return plotlyReady.then(renderView);
}

function selectHead(layer, head) {
  return update({ layer, head, view: "head" });
}

function moveHead(delta) {
  if (!hasMaps()) return undefined;
  return update({ head: stepHead(state.response, shownKind(state), state.head, delta, state.view === "stats" || state.view === "explain") });
}

function moveLayer(delta) {
  if (!hasMaps()) return undefined;
  const layers = layerCount(state.response, shownKind(state));
  return update({ layer: Math.max(0, Math.min(layers - 1, state.layer + delta)) });
}

function writeUrl() {
  const query = queryFromState(state);
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

// "This is an example. → これ は 例 で す 。 (tiny, forced)": what was asked, of which model, how decoded.
function resultLabel(asked, response) {
  const target = asked.target.trim() ? ` → ${asked.target.trim()}` : "";
  const how = response.forced ? "forced" : asked.beam > 1 ? `beam ${asked.beam}` : "greedy";
  const controls = Object.entries(response.controls).map(([name, value]) => `${name} ${value}`);
  const method = response.method && response.method !== "weights" ? [response.method] : [];
  return `${asked.source.trim()}${target} (${[response.model, how, ...controls, ...method].join(", ")})`;
}

function togglePin() {
  if (state.pinned) state.pinned = null;
  else if (state.response) {
    state.pinned = { response: state.response, query: requestQuery(state), label: resultLabel(state, state.response) };
  }
  state.pinQuery = state.pinned?.query ?? "";
  return update({});
}

// Pointing at a token (a header chip or an axis label) outlines its row and column in the head
// view and lights up its chip.
function pointAt(axis, index) {
  for (const chip of document.querySelectorAll(".token.active")) chip.classList.remove("active");
  if (axis !== null) {
    const chipAxis = axis === "decoder_input_tokens" ? "target_tokens" : axis;
    const chipIndex = axis === "decoder_input_tokens" ? index - 1 : index;
    document.querySelector(`.token[data-axis="${chipAxis}"][data-index="${chipIndex}"]`)?.classList.add("active");
  }
  if (state.view === "lines" && linesView) {
    const { view, point } = linesView;
    const at = axis === "source_tokens" ? view.cols.indexOf(index) : axis === "target_tokens" ? view.rows.indexOf(index) : -1;
    point(at < 0 ? null : axis === "source_tokens" ? "source" : "target", at);
    return;
  }
  if (state.view !== "head" || !headView) return;
  drawHighlight(el.headFigure, headView, axis === null ? { rows: [], cols: [] } : highlightFor(headView, axis, index));
}

// Every export is of the figure on screen, named for what it shows.
async function exportCurrent(format) {
  const name = `attnscope-${onScreen.name}`;
  const file = `${name}.${format}`;
  try {
    if (format === "json") downloadBlob(new Blob([JSON.stringify(state.response, null, 2)], { type: "application/json" }), file);
    else if (format === "csv") downloadBlob(new Blob([tableCsv(onScreen.csvTable ?? onScreen.table)], { type: "text/csv;charset=utf-8" }), file);
    else if (state.view === "grid") await downloadGrid(onScreen.figures ?? [{ element: el.grid, title: onScreen.title, signed: false }], format, file, state.scale);
    else await downloadPlot(onScreen.figures ?? [onScreen.element], format, file);
    el.actionStatus.textContent = `Downloaded ${file}`;
  } catch (error) {
    showError(`The ${format.toUpperCase()} export failed: ${error}`);
  }
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText(location.href);
    el.actionStatus.textContent = "Link copied: it opens this exact view.";
  } catch {
    el.actionStatus.textContent = "The address bar holds a link to this exact view.";
  }
}

// ---- events ---------------------------------------------------------------------------------

// The WAI-ARIA tabs pattern: arrows, Home and End move between the tabs while the tab list has focus.
function onTabKey(event) {
  const tabs = [...document.querySelectorAll('[role="tab"]:not(:disabled)')];
  const at = tabs.indexOf(event.target);
  const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (at < 0 || to === undefined) return;
  event.preventDefault();
  event.stopPropagation();
  const tab = tabs[(to + tabs.length) % tabs.length];
  update({ view: tab.dataset.view });
  tab.focus();
}

// Arrows move between the overview's cells without redrawing it; Enter or Space opens one.
function onGridKey(event) {
  const grid = event.currentTarget;
  const thumbs = [...grid.querySelectorAll("button.thumb")];
  const at = thumbs.indexOf(event.target);
  const columns = Number(grid.style.getPropertyValue("--grid-columns"));
  const to = { ArrowLeft: at - 1, ArrowRight: at + 1, ArrowUp: at - columns, ArrowDown: at + columns }[event.key];
  if (at < 0 || to === undefined) return;
  event.preventDefault();
  event.stopPropagation();
  thumbs[Math.max(0, Math.min(thumbs.length - 1, to))].focus();
}

function bindEvents() {
  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    translate();
  });
  el.model.addEventListener("change", () => {
    state.model = el.model.value;
    state.layer = null; // another model: open where it aligns best again
    describeModel();
  });
  // Units change the request: a result on screen is fetched again in the new units.
  el.granularity.addEventListener("change", () => state.response && translate());
  // So does the method: its maps are other numbers, computed by the model.
  el.methods.method.addEventListener("change", () => {
    el.methods.saliencyField.hidden = el.methods.method.value !== "saliency";
    if (state.response) translate();
  });
  el.methods.saliency.addEventListener("change", () => state.response && translate());
  el.normaliseRows.addEventListener("change", () => update({ normaliseRows: el.normaliseRows.checked }));
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener("change", () => update({ kind: radio.value }));
  el.layer.addEventListener("change", () => update({ layer: Number(el.layer.value) }));
  el.head.addEventListener("change", () => update({ head: parseHead(el.head.value) }));
  el.showSpecial.addEventListener("change", () => update({ showSpecial: el.showSpecial.checked }));
  el.renormalise.addEventListener("change", () => update({ renormalise: el.renormalise.checked }));
  el.showReadings.addEventListener("change", () => update({ showReadings: el.showReadings.checked }));
  el.scale.addEventListener("change", () => update({ scale: el.scale.value }));
  el.otherModel.addEventListener("change", () => update({ otherModel: el.otherModel.value }));
  el.explain.query.addEventListener("change", () => update({ query: Number(el.explain.query.value) }));
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.addEventListener("click", () => update({ view: tab.dataset.view }));
  document.querySelector('[role="tablist"]').addEventListener("keydown", onTabKey);

  // The overview and, with a pinned result, its comparison: a cell opens its head in the head view.
  for (const grid of [el.grid, el.viewCompare.grid.figure]) {
    grid.addEventListener("click", (event) => {
      const thumb = event.target.closest("button.thumb");
      if (thumb) selectHead(Number(thumb.dataset.layer), parseHead(thumb.dataset.head));
    });
    grid.addEventListener("keydown", onGridKey);
  }
  // The statistics figure takes focus: arrows choose a head (the document's shortcuts), Enter opens it.
  el.statsFigure.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      selectHead(state.layer, typeof state.head === "number" ? state.head : 0);
    }
  });
  // The table is built when it is opened: a 40 × 40 map is 1,600 cells.
  el.table.addEventListener("toggle", () => el.table.open && drawTable(el.table.querySelector("table"), onScreen.table));
  el.table.addEventListener("click", (event) => {
    const open = event.target.closest("button.open-head");
    if (open) selectHead(Number(open.dataset.layer), parseHead(open.dataset.head));
  });
  bindAxisLabelHover(el.headFigure, () => headView, pointAt);
  for (const tokens of [el.header.sourceTokens, el.header.targetTokens]) {
    const enter = (event) => {
      const chip = event.target.closest(".token");
      if (chip) pointAt(chip.dataset.axis, Number(chip.dataset.index));
    };
    tokens.addEventListener("mouseover", enter);
    tokens.addEventListener("focusin", enter);
    tokens.addEventListener("mouseleave", () => pointAt(null, null));
    tokens.addEventListener("focusout", () => pointAt(null, null));
  }

  const stepTo = (row) => {
    if (!currentStepsView) return;
    const clamped = Math.max(0, Math.min(currentStepsView.rows.length - 1, row));
    update({ step: currentStepsView.rows[clamped] });
  };
  el.steps.slider.addEventListener("input", () => stepTo(Number(el.steps.slider.value)));
  $("step-back").addEventListener("click", () => stepTo(Number(el.steps.slider.value) - 1));
  $("step-forward").addEventListener("click", () => stepTo(Number(el.steps.slider.value) + 1));

  for (const button of document.querySelectorAll("[data-export]")) button.addEventListener("click", () => exportCurrent(button.dataset.export));
  $("copy-link").addEventListener("click", copyLink);
  el.pin.addEventListener("click", togglePin);

  // Head and layer shortcuts, wherever the arrows have no job of their own.
  document.addEventListener("keydown", (event) => {
    if (!state.response || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest?.('input, select, textarea, [contenteditable], [role="tablist"], .grid, .figure-table')) return;
    const moves = { ArrowLeft: () => moveHead(-1), ArrowRight: () => moveHead(1), ArrowUp: () => moveLayer(-1), ArrowDown: () => moveLayer(1) };
    if (!(event.key in moves)) return;
    event.preventDefault();
    moves[event.key]();
  });

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => state.response && state.view !== "grid" && renderView(), 150);
  });
}

function fillForm() {
  el.source.value = state.source;
  el.target.value = state.target;
  el.beam.value = String(state.beam);
  el.granularity.value = state.granularity;
}

// A shared link with a pinned result fetches that one first.
async function restorePin() {
  if (!state.pinQuery) return;
  const asked = { ...initialState(), ...stateFromQuery(state.pinQuery) };
  try {
    const response = await fetchAttention(asked);
    state.pinned = { response, query: state.pinQuery, label: resultLabel(asked, response) };
  } catch (error) {
    showError(`The pinned result could not be restored: ${error.message}`);
    state.pinQuery = "";
  }
}

async function start() {
  Object.assign(state, stateFromQuery(location.search));
  fillForm();
  bindEvents();
  loadModels();
  await restorePin();
  if (state.source.trim()) await translate();
  else writeUrl();
  startPlotly(); // for the first figure to come, or where a refused shared link drew none
}

start();
