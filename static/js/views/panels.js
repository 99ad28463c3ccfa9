// View 4: encoder self, decoder self and cross-attention side by side, as textbooks draw them,
// with one shared colour scale; the decoder and cross panels share their rows (the produced tokens).

import { displayedMap, selectionName } from "../selection.js";
import { KINDS, KIND_NAMES, layerCount } from "../state.js";
import { escapePlotly } from "../tokens.js";
import { attentionFigure, PLOT_CONFIG } from "./heatmap.js";

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
  const { traces, layout } = attentionFigure(views, options, { width: Math.max(element.clientWidth, 600), xSide: "bottom", maxCell: 46 });
  views.forEach((view, k) => {
    const domain = layout[`xaxis${k === 0 ? "" : k + 1}`].domain;
    layout.annotations.push({
      text: `${escapePlotly(KIND_NAMES[view.kind])}<br>${escapePlotly(selectionName(view.kind, view.layer, view.head))}`,
      xref: "paper",
      yref: "paper",
      x: (domain[0] + domain[1]) / 2,
      y: 1,
      yshift: 6,
      yanchor: "bottom",
      showarrow: false,
      font: { size: 12 },
    });
  });
  return Plotly.react(element, traces, layout, PLOT_CONFIG);
}
