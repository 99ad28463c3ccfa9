// View 4: encoder self, decoder self and cross-attention side by side, as textbooks draw them.
// One figure with three subplots sharing one colour bar, laid out in pixels so every cell is square
// and the decoder and cross panels (same rows: the produced tokens) line up.

import { matrixMax } from "../matrices.js";
import { displayedMap, selectionName } from "../selection.js";
import { KINDS, KIND_NAMES, layerCount } from "../state.js";
import { escapePlotly } from "../tokens.js";
import { plotlyScale } from "../colors.js";
import { attentionTraces, FONT, PLOT_CONFIG, tokenAxes } from "./heatmap.js";

const GAP = 36; // px between panels
const COLORBAR = 90; // px kept free on the right for the shared colour bar

// Each kind at the chosen layer (clamped to its own depth); rollout is an encoder notion, so the
// decoder and cross panels show the mean of heads instead.
export function panelViews(response, options, layer, head) {
  return KINDS.filter((kind) => kind in response.attention).map((kind) => {
    const kindLayer = Math.min(layer, layerCount(response, kind) - 1);
    const kindHead = head === "rollout" && kind !== "encoder" ? "mean" : head;
    return displayedMap(response, options, kind, kindLayer, kindHead);
  });
}

export function drawPanels(element, response, options, layer, head) {
  const views = panelViews(response, options, layer, head);
  const labelWidth = (view) => Math.max(...view.rowTokens.map((t) => textWidth(t.text + (options.showReadings && t.reading ? `  ${t.reading}` : ""))), 20) + 14;
  const width = Math.max(element.clientWidth, 600);
  const left = labelWidth(views[0]) + 16;
  // The cross panel shares its rows with the decoder panel just before it, so only the others need room for labels.
  const gaps = views.slice(1).map((view, k) => (view.kind === "cross" && views[k].kind === "decoder" ? GAP : labelWidth(view) + GAP));
  const totalCols = views.reduce((n, v) => n + v.cols.length, 0);
  const plotWidth = width - left - COLORBAR;
  const cell = Math.max(10, Math.min(46, (plotWidth - gaps.reduce((a, b) => a + b, 0)) / totalCols));
  const plotHeight = Math.max(...views.map((v) => v.rows.length)) * cell;
  const zmax = Math.max(...views.map((v) => matrixMax(v.matrix))) || 1;

  const layout = {
    font: FONT,
    width,
    height: plotHeight + 210,
    margin: { l: left, r: COLORBAR, t: 70, b: 140 },
    coloraxis: { colorscale: plotlyScale(options.scale), cmin: 0, cmax: zmax, colorbar: { thickness: 14, len: 0.8, outlinewidth: 0, title: { text: "weight", side: "right" } } },
    annotations: [],
    hoverlabel: { font: { family: FONT.family, size: 13 } },
  };
  const traces = [];
  let x = 0;
  views.forEach((view, k) => {
    const axes = k === 0 ? "" : String(k + 1);
    if (k > 0) x += gaps[k - 1];
    const span = view.cols.length * cell;
    const axisLayout = tokenAxes(view, options, axes);
    const xaxis = axisLayout[`xaxis${axes}`];
    const yaxis = axisLayout[`yaxis${axes}`];
    Object.assign(xaxis, { side: "bottom", domain: [x / plotWidth, Math.min(1, (x + span) / plotWidth)], anchor: `y${axes}`, automargin: false, tickangle: -45 });
    Object.assign(yaxis, { domain: [1 - (view.rows.length * cell) / plotHeight, 1], anchor: `x${axes}`, automargin: false, scaleanchor: undefined });
    if (view.kind === "cross" && k > 0 && views[k - 1].kind === "decoder") yaxis.showticklabels = false;
    layout[`xaxis${axes}`] = xaxis;
    layout[`yaxis${axes}`] = yaxis;
    layout.annotations.push({
      text: `<b>${escapePlotly(KIND_NAMES[view.kind])}</b><br>${escapePlotly(selectionName(view.kind, view.layer, view.head))}`,
      xref: "paper",
      yref: "paper",
      x: (x + span / 2) / plotWidth,
      y: 1,
      yshift: 8,
      yanchor: "bottom",
      showarrow: false,
      font: { size: 12 },
    });
    traces.push(...attentionTraces(view, options, axes, { coloraxis: "coloraxis" }));
    x += span;
  });
  return Plotly.react(element, traces, layout, { ...PLOT_CONFIG, responsive: false });
}

let measuringContext = null;

function textWidth(text) {
  measuringContext ??= document.createElement("canvas").getContext("2d");
  measuringContext.font = `${FONT.size}px ${FONT.family}`;
  return measuringContext.measureText(text).width;
}
