// View 1: one big heatmap of the chosen kind, layer and head (or aggregate).

import { KIND_NAMES } from "../state.js";
import { selectionName } from "../selection.js";
import { escapePlotly } from "../tokens.js";
import { attentionTraces, axisTitle, FONT, highlightShapes, PLOT_CONFIG, tokenAxes } from "./heatmap.js";

const AXIS_NAMES = { source_tokens: "source tokens", target_tokens: "produced tokens", decoder_input_tokens: "decoder inputs" };

export function cellSize(rows, cols) {
  return Math.max(14, Math.min(64, 640 / Math.max(rows, cols, 1)));
}

export function drawHeadView(element, view, options, highlight) {
  const cell = cellSize(view.rows.length, view.cols.length);
  const axes = tokenAxes(view, options);
  axes.xaxis.title = axisTitle(`keys: ${AXIS_NAMES[view.keyAxis]}`);
  axes.yaxis.title = axisTitle(`queries: ${AXIS_NAMES[view.queryAxis]}`);
  const layout = {
    ...axes,
    title: { text: escapePlotly(`${KIND_NAMES[view.kind]} · ${selectionName(view.kind, view.layer, view.head)}`), x: 0, xanchor: "left", font: { size: 15 } },
    font: FONT,
    height: Math.round(view.rows.length * cell + 190 + (options.showReadings ? 20 : 0)),
    margin: { t: 110, r: 20, b: 20, l: 20 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    shapes: highlightShapes(view, highlight),
    hoverlabel: { font: { family: FONT.family, size: 13 } },
  };
  return Plotly.react(element, attentionTraces(view, options), layout, PLOT_CONFIG);
}

export function drawHighlight(element, view, highlight) {
  return Plotly.relayout(element, { shapes: highlightShapes(view, highlight) });
}

// Pointing at an axis label reports (token axis, token position) to `onToken`, and null on leaving.
// Plotly keeps each tick's value on its SVG group, which is how a label finds its token.
export function bindAxisLabelHover(element, currentView, onToken) {
  element.addEventListener("mouseover", (event) => {
    const tick = event.target.closest?.(".xtick, .ytick");
    const view = currentView();
    if (!tick || !view || tick.__data__ === undefined) return;
    const position = Math.round(tick.__data__.x);
    if (tick.classList.contains("xtick")) onToken(view.keyAxis, view.cols[position]);
    else onToken(view.queryAxis, view.rows[position]);
  });
  element.addEventListener("mouseout", (event) => {
    if (event.target.closest?.(".xtick, .ytick")) onToken(null, null);
  });
}
