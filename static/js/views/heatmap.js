// Plotly pieces shared by the figures: an attention heatmap, its masked cells, its axes.
// Axes are numeric with token tick labels, so a sentence with a repeated word keeps both columns.

import { plotlyScale } from "../colors.js";
import { matrixMax } from "../matrices.js";
import { axisLabel, hoverName } from "../tokens.js";

export const FONT = { family: 'system-ui, -apple-system, "Segoe UI", "Noto Sans CJK JP", "Noto Sans JP", sans-serif', size: 13, color: "#1f2933" };
export const PLOT_CONFIG = { displaylogo: false, responsive: true, scrollZoom: false, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"], toImageButtonOptions: { scale: 2 } };

// Masked (future) cells get a colour no scale uses for a weight, so "masked" never reads as "0".
const MASK_COLOUR = { Greys: "#f3c5b8", default: "#d5d9de" };

export function maskColour(scale) {
  return MASK_COLOUR[scale] ?? MASK_COLOUR.default;
}

// The weight trace and, for causal maps, the mask trace drawn under it. `axes` names the subplot ("", "2", "3");
// `colour.coloraxis` makes subplots share one colour bar.
export function attentionTraces(view, options, axes = "", colour = {}) {
  const z = view.matrix.map((row, i) => row.map((w, j) => (view.masked[i][j] ? null : w)));
  const text = view.matrix.map((row, i) =>
    row.map((w, j) => {
      const query = hoverName(view.rowTokens[i]);
      const key = hoverName(view.colTokens[j]);
      if (view.masked[i][j]) return `query <b>${query}</b><br>key <b>${key}</b><br>masked: a future position`;
      return `query <b>${query}</b><br>key <b>${key}</b><br>weight <b>${w.toFixed(4)}</b>`;
    }),
  );
  const indices = (n) => Array.from({ length: n }, (_, i) => i);
  const x = indices(view.cols.length);
  const y = indices(view.rows.length);
  const weights = {
    type: "heatmap",
    x,
    y,
    z,
    text,
    hovertemplate: "%{text}<extra></extra>",
    hoverongaps: false,
    xaxis: `x${axes}`,
    yaxis: `y${axes}`,
    ...(colour.coloraxis
      ? { coloraxis: colour.coloraxis }
      : {
          colorscale: plotlyScale(options.scale),
          zmin: 0,
          zmax: matrixMax(view.matrix) || 1,
          colorbar: { title: { text: "weight", side: "right" }, thickness: 14, len: 0.9, outlinewidth: 0 },
        }),
  };
  if (!view.causal) return [weights];
  const mask = {
    type: "heatmap",
    x,
    y,
    z: view.masked.map((row) => row.map((m) => (m ? 1 : null))),
    text,
    hovertemplate: "%{text}<extra></extra>",
    hoverongaps: false,
    xaxis: `x${axes}`,
    yaxis: `y${axes}`,
    colorscale: [[0, maskColour(options.scale)], [1, maskColour(options.scale)]],
    showscale: false,
  };
  return [mask, weights];
}

export function tokenAxes(view, options, axes = "") {
  const x = {
    tickmode: "array",
    tickvals: view.colTokens.map((_, j) => j),
    ticktext: view.colTokens.map((t) => axisLabel(t, options.showReadings, "x")),
    side: "top",
    ticks: "",
    showgrid: false,
    zeroline: false,
    fixedrange: true,
    range: [-0.5, view.cols.length - 0.5],
    automargin: true,
  };
  const y = {
    tickmode: "array",
    tickvals: view.rowTokens.map((_, i) => i),
    ticktext: view.rowTokens.map((t) => axisLabel(t, options.showReadings, "y")),
    ticks: "",
    showgrid: false,
    zeroline: false,
    fixedrange: true,
    range: [view.rows.length - 0.5, -0.5],
    automargin: true,
    scaleanchor: `x${axes}`,
    constrain: "domain",
  };
  return { [`xaxis${axes}`]: x, [`yaxis${axes}`]: y };
}

// Outlines around highlighted rows and columns of one subplot.
export function highlightShapes(view, highlight, axes = "") {
  const line = { color: "#ff3b6b", width: 2.5 };
  const common = { type: "rect", xref: `x${axes}`, yref: `y${axes}`, line, fillcolor: "rgba(255,255,255,0.08)", layer: "above" };
  return [
    ...highlight.rows.map((i) => ({ ...common, x0: -0.5, x1: view.cols.length - 0.5, y0: i - 0.5, y1: i + 0.5 })),
    ...highlight.cols.map((j) => ({ ...common, x0: j - 0.5, x1: j + 0.5, y0: -0.5, y1: view.rows.length - 0.5 })),
  ];
}

export function axisTitle(text) {
  return { text, font: { size: 12, color: "#52606d" } };
}
