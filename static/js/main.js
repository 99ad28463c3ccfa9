// The page: one state object; events change it, then the controls and the active view are redrawn
// from it. Fetching happens only on submit: switching kind, layer, head or view never refetches.

import { ApiError, fetchAttention, fetchModels } from "./api.js";
import { downloadCsv, downloadGrid, downloadJson, downloadPlot } from "./exporting.js";
import { displayedMap, headName, highlightFor } from "./selection.js";
import { AGGREGATES, clampSelection, headCount, initialState, layerCount, queryFromState, stateFromQuery, VIEWS } from "./state.js";
import { drawGrid, markGridSelection, parseHead } from "./views/grid.js";
import { bindAxisLabelHover, drawHeadView, drawHighlight } from "./views/head.js";
import { drawHeader } from "./views/header.js";
import { drawPanels } from "./views/panels.js";
import { drawStatistics } from "./views/stats.js";
import { drawSteps, stepsView } from "./views/steps.js";

const state = initialState();
const $ = (id) => document.getElementById(id);
const el = {
  form: $("query"),
  source: $("source"),
  target: $("target"),
  model: $("model"),
  beam: $("beam"),
  politeness: $("politeness"),
  submit: $("submit"),
  error: $("error"),
  empty: $("empty"),
  result: $("result"),
  modelInfo: $("model-info"),
  layer: $("layer"),
  head: $("head"),
  showSpecial: $("show-special"),
  renormalise: $("renormalise"),
  showReadings: $("show-readings"),
  scale: $("scale"),
  headFigure: $("head-figure"),
  grid: $("grid"),
  panelsFigure: $("panels-figure"),
  statsFigure: $("stats-figure"),
  actionStatus: $("action-status"),
  header: {
    translation: $("translation"),
    mode: $("mode"),
    score: $("score"),
    politeness: $("politeness-badge"),
    sourceTokens: $("source-tokens"),
    targetTokens: $("target-tokens"),
    unknownNote: $("unknown-note"),
  },
  steps: {
    slider: $("step"),
    position: $("step-position"),
    prefix: $("step-prefix"),
    summary: $("step-summary"),
    figure: $("steps-figure"),
  },
};

// What the head view and the decoding-steps view last drew, for hovers, CSV and the slider.
let headView = null;
let currentStepsView = null;
let latestRequest = 0;

function options() {
  return { showSpecial: state.showSpecial, renormalise: state.renormalise, showReadings: state.showReadings, scale: state.scale };
}

// ---- fetching -------------------------------------------------------------------------------

async function loadModels() {
  try {
    state.models = await fetchModels();
  } catch (error) {
    showError(error instanceof ApiError ? `Models could not be listed: ${error.message}` : String(error));
    return;
  }
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

async function translate() {
  readForm();
  const request = ++latestRequest;
  setLoading(true);
  try {
    const response = await fetchAttention(state);
    if (request !== latestRequest) return; // a newer request is on its way; this answer is stale
    performance.mark("attnscope:response");
    state.response = response;
    state.error = "";
    clampSelection(state);
    showError("");
    render();
  } catch (error) {
    if (request !== latestRequest) return;
    showError(error instanceof ApiError ? error.message : `Something went wrong: ${error}`);
  } finally {
    if (request === latestRequest) setLoading(false);
    writeUrl();
  }
}

function readForm() {
  state.source = el.source.value;
  state.target = el.target.value;
  state.model = el.model.value || state.model;
  state.beam = Math.max(1, Number.parseInt(el.beam.value, 10) || 1);
  state.politeness = el.politeness.value;
}

function setLoading(loading) {
  state.loading = loading;
  el.submit.disabled = loading;
  el.submit.textContent = loading ? "Translating…" : "Translate";
  el.form.setAttribute("aria-busy", String(loading));
}

function showError(message) {
  state.error = message;
  el.error.textContent = message;
  el.error.hidden = !message;
}

// ---- rendering ------------------------------------------------------------------------------

function render() {
  const response = state.response;
  el.empty.hidden = Boolean(response);
  el.result.hidden = !response;
  if (!response) return Promise.resolve();
  drawHeader(el.header, response, state.beam, state.politeness);
  renderControls();
  return renderView();
}

function renderControls() {
  const response = state.response;
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.checked = radio.value === state.kind;
    radio.disabled = !(radio.value in response.attention);
  }
  fillSelect(el.layer, Array.from({ length: layerCount(response, state.kind) }, (_, l) => [String(l), String(l)]), String(state.layer));
  const heads = Array.from({ length: headCount(response, state.kind) }, (_, h) => [String(h), String(h)]);
  const aggregates = AGGREGATES.filter((a) => a !== "rollout" || state.kind === "encoder").map((a) => [a, headName(a)]);
  fillSelect(el.head, [...heads, ...aggregates], String(state.head));
  el.showSpecial.checked = state.showSpecial;
  el.renormalise.checked = state.renormalise;
  el.renormalise.disabled = state.showSpecial;
  el.showReadings.checked = state.showReadings;
  el.scale.value = state.scale;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const active = tab.dataset.view === state.view;
    tab.setAttribute("aria-selected", String(active));
    tab.tabIndex = active ? 0 : -1;
  }
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== state.view;
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

async function renderView() {
  const response = state.response;
  const selected = { layer: state.layer, head: state.head };
  switch (state.view) {
    case "head": {
      headView = displayedMap(response, options(), state.kind, state.layer, state.head);
      await drawHeadView(el.headFigure, headView, options(), { rows: [], cols: [] });
      performance.mark("attnscope:head-view");
      break;
    }
    case "grid":
      performance.mark("attnscope:grid-start");
      drawGrid(el.grid, response, options(), state.kind, selected);
      performance.mark("attnscope:grid-end");
      break;
    case "panels":
      await drawPanels(el.panelsFigure, response, options(), state.layer, state.head);
      break;
    case "stats":
      await drawStatistics(el.statsFigure, response, options(), state.kind, selected);
      bindStatisticsClicks();
      break;
    case "steps":
      currentStepsView = stepsView(response, options(), Math.min(state.layer, layerCount(response, "cross") - 1), state.head);
      await drawSteps(el.steps, currentStepsView, options(), state.step);
      break;
  }
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

function describeModel() {
  const info = state.models.find((m) => m.name === state.model);
  if (!info) return;
  const bleu = info.test_bleu ? Object.entries(info.test_bleu).map(([how, score]) => `${how} ${score.toFixed(1)}`).join(", ") : "";
  const parameters = `${(info.parameters / 1e6).toFixed(1)} M parameters`;
  const shape = `${info.encoder_layers}+${info.decoder_layers} layers × ${info.heads} heads`;
  el.modelInfo.textContent = [info.name, shape, parameters, bleu && `test BLEU ${bleu}`].filter(Boolean).join(" · ");
  el.beam.max = String(info.limits.max_beam_size);
  // A model trained without politeness control decides for itself; asking it would be refused.
  const controllable = info.politeness_levels.length > 0;
  el.politeness.disabled = !controllable;
  if (!controllable) el.politeness.value = state.politeness = "auto";
}

// ---- changing what is shown -----------------------------------------------------------------

function update(changes) {
  Object.assign(state, changes);
  if (!state.response) return writeUrl();
  clampSelection(state);
  renderControls();
  writeUrl();
  return renderView();
}

function selectHead(layer, head) {
  return update({ layer, head, view: "head" });
}

function moveHead(delta) {
  const heads = headCount(state.response, state.kind);
  const current = typeof state.head === "number" ? state.head : delta > 0 ? -1 : heads;
  return update({ head: (current + delta + heads) % heads });
}

function moveLayer(delta) {
  const layers = layerCount(state.response, state.kind);
  return update({ layer: Math.max(0, Math.min(layers - 1, state.layer + delta)) });
}

function writeUrl() {
  const query = queryFromState(state);
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
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
  if (state.view !== "head" || !headView) return;
  drawHighlight(el.headFigure, headView, axis === null ? { rows: [], cols: [] } : highlightFor(headView, axis, index));
}

function exportName() {
  const head = typeof state.head === "number" ? `H${state.head}` : state.head;
  return `attnscope-${state.view}-${state.kind}-L${state.layer}-${head}`;
}

function exportCurrent(format) {
  const name = exportName();
  if (format === "json") return downloadJson(state.response, name);
  if (format === "csv") return downloadCsv(displayedMap(state.response, options(), state.kind, state.layer, state.head), name);
  if (state.view === "grid") return downloadGrid(el.grid, format, name);
  const figure = { head: el.headFigure, panels: el.panelsFigure, stats: el.statsFigure, steps: el.steps.figure }[state.view];
  return downloadPlot(figure, format, name).catch((error) => showError(`The ${format.toUpperCase()} export failed: ${error}`));
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

function bindEvents() {
  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    translate();
  });
  for (const button of document.querySelectorAll("button.example")) {
    button.addEventListener("click", () => {
      el.source.value = button.textContent;
      el.target.value = "";
      translate();
    });
  }
  el.model.addEventListener("change", () => {
    state.model = el.model.value;
    describeModel();
  });
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener("change", () => update({ kind: radio.value }));
  el.layer.addEventListener("change", () => update({ layer: Number(el.layer.value) }));
  el.head.addEventListener("change", () => update({ head: parseHead(el.head.value) }));
  el.showSpecial.addEventListener("change", () => update({ showSpecial: el.showSpecial.checked }));
  el.renormalise.addEventListener("change", () => update({ renormalise: el.renormalise.checked }));
  el.showReadings.addEventListener("change", () => update({ showReadings: el.showReadings.checked }));
  el.scale.addEventListener("change", () => update({ scale: el.scale.value }));
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.addEventListener("click", () => update({ view: tab.dataset.view }));

  el.grid.addEventListener("click", (event) => {
    const thumb = event.target.closest("button.thumb");
    if (thumb) selectHead(Number(thumb.dataset.layer), parseHead(thumb.dataset.head));
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

  document.addEventListener("keydown", (event) => {
    if (!state.response || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest?.("input, select, textarea, [contenteditable]")) return;
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
  el.politeness.value = state.politeness;
}

async function start() {
  Object.assign(state, stateFromQuery(location.search));
  fillForm();
  bindEvents();
  await loadModels();
  if (state.source.trim()) await translate();
  else writeUrl();
}

start();
