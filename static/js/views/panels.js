// View 4: encoder self, decoder self and cross-attention side by side, as textbooks draw them,
// with one shared colour scale; the decoder and cross panels share their rows (the produced tokens).

import { displayedMap, selectionName } from "../selection.js";
import { headChoices, headCount, KINDS, KIND_NAMES, layerCount } from "../state.js";
import { escapePlotly } from "../tokens.js";
import { attentionFigure, PLOT_CONFIG } from "./heatmap.js";

// Each kind at the chosen layer (clamped to its own depth); rollout is an encoder notion, so the
// decoder and cross panels show the mean of heads instead.
export function panelViews(response, options, layer, head) {
  return KINDS.filter((kind) => kind in response.attention).map((kind) => {
    const kindLayer = Math.min(layer, layerCount(response, kind) - 1);
    const choices = headChoices(response, kind);
    const clamped = typeof head === "number" ? Math.min(head, headCount(response, kind) - 1) : head;
    const kindHead = choices.includes(clamped) ? clamped : choices.includes("mean") ? "mean" : choices[0];
    return displayedMap(response, options, kind, kindLayer, kindHead);
  });
}

export function panelsTitle(views) {
  const method = views[0].method && views[0].method !== "weights" ? ` · ${views[0].method}` : "";
  return `Every kind of attention${method} · ${selectionName(views[0].kind, views[0].layer, views[0].head)}`;
}

// Side by side where they fit, one above the other on a narrow screen. `title`: another one for the
// pinned result's panels or their differences.
export function drawPanels(element, views, options, title = panelsTitle(views)) {
  const labels = views.map((view) => {
    const note = view.head === "mean" && views[0].head === "rollout" ? " (rollout is for the encoder)" : "";
    return [KIND_NAMES[view.kind], selectionName(view.kind, view.layer, view.head) + note];
  });
  return drawLabelledPanels(element, views, labels, options, title);
}

// Maps side by side (stacked on a narrow screen) on one colour scale, each titled by its lines of
// `labels`: the three panels, and the compare view's two models.
export function drawLabelledPanels(element, views, labels, options, title) {
  const width = element.clientWidth;
  const stack = width < 760;
  const { traces, layout } = attentionFigure(views, options, { width, xSide: "bottom", maxCell: 46, stack, title: escapePlotly(title) });
  views.forEach((view, k) => {
    const axes = k === 0 ? "" : k + 1;
    const domain = layout[`xaxis${axes}`].domain;
    layout.annotations.push({
      text: labels[k].map(escapePlotly).join("<br>"),
      xref: "paper",
      yref: "paper",
      x: (domain[0] + domain[1]) / 2,
      y: layout[`yaxis${axes}`].domain[1],
      yshift: 6,
      yanchor: "bottom",
      showarrow: false,
      font: { size: 12 },
    });
  });
  return Plotly.react(element, traces, layout, PLOT_CONFIG);
}
