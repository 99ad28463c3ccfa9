// View 1: one big heatmap of the chosen kind, layer and head (or aggregate).

import { KIND_NAMES } from "../state.js";
import { selectionName } from "../selection.js";
import { escapePlotly } from "../tokens.js";
import { attentionFigure, axisTitle, highlightShapes, PLOT_CONFIG } from "./heatmap.js";

const AXIS_NAMES = { source_tokens: "source tokens", target_tokens: "produced tokens", decoder_input_tokens: "decoder inputs" };

// Maps of another method than the weights say which.
export function headTitle(view) {
  const method = view.method && view.method !== "weights" ? ` · ${view.method}` : "";
  return `${KIND_NAMES[view.kind]}${method} · ${selectionName(view.kind, view.layer, view.head)}`;
}

// The head view's traces and layout, `width` px wide and at most `height` px high (so that on a laptop
// screen it is whole in view after Enter): what Plotly draws, and what sketch.js paints before it.
export function headFigure(view, options, width, height) {
  const { traces, layout } = attentionFigure([view], options, {
    width,
    height,
    xSide: "top",
    title: escapePlotly(headTitle(view)),
    maxCell: 90,
    maxAspect: 2.2,
  });
  layout.xaxis.title = { ...axisTitle(`keys: ${AXIS_NAMES[view.keyAxis]}`), standoff: 6 };
  layout.yaxis.title = { ...axisTitle(`queries: ${AXIS_NAMES[view.queryAxis]}`), standoff: 6 };
  return { traces, layout };
}

export function drawHeadView(element, view, options, highlight, height) {
  const { traces, layout } = headFigure(view, options, element.clientWidth, height);
  layout.shapes = highlightShapes(view, highlight);
  return Plotly.react(element, traces, layout, PLOT_CONFIG);
}

// The pinned result's map, and beside it the current one minus the pinned one where their tokens match
// (`difference` null where they do not): two figures, side by side where they fit.
export function drawCompare(elements, pinned, difference, options, height) {
  const draw = (element, view, title) => {
    const { traces, layout } = attentionFigure([view], options, { width: element.clientWidth, height, xSide: "top", title: escapePlotly(title), maxCell: 90, maxAspect: 2.2 });
    return Plotly.react(element, traces, layout, PLOT_CONFIG);
  };
  elements.difference.hidden = !difference;
  const drawn = [draw(elements.pinned, pinned, `Pinned · ${headTitle(pinned)}`)];
  if (difference) drawn.push(draw(elements.difference, difference, "This result minus the pinned one"));
  else Plotly.purge(elements.difference);
  return Promise.all(drawn);
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
    if (!tick || !view || tick.__data__ === undefined || tick.closest(".xy") === null) return;
    const position = Math.round(tick.__data__.x);
    if (tick.classList.contains("xtick")) onToken(view.keyAxis, view.cols[position]);
    else onToken(view.queryAxis, view.rows[position]);
  });
  element.addEventListener("mouseout", (event) => {
    if (event.target.closest?.(".xtick, .ytick")) onToken(null, null);
  });
}
