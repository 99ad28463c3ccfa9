// Plotly pieces shared by the attention figures (head view, three panels): traces, axes, and a
// layout computed in pixels so that every cell is square and panels sharing rows line up.
//
// Two constraints shape this code. Axes are numeric with token tick labels, so a sentence with a
// repeated word keeps both columns. And the page runs under a Content-Security-Policy without
// 'unsafe-inline', which refuses the style attributes some Plotly paths write: the colour bar
// (replaced by a one-column heatmap on its own axis) and <b>/<i> in labels (not used).
//
// Heatmaps are drawn with zsmooth "fast": Plotly paints one pixel per cell and the browser scales
// the image up, crisp by the `image-rendering: pixelated` rule in app.css (Plotly's own way to ask
// for that is a style attribute, which the policy refuses). A 40×40 map then costs a 40×40 PNG
// instead of one the size of the figure, a fifth of the head view's drawing time.

import { plotlyScale } from "../colors.js";
import { matrixMax } from "../matrices.js";
import { axisLabel, hoverName } from "../tokens.js";

export const FONT = { family: 'system-ui, -apple-system, "Segoe UI", "Noto Sans CJK JP", "Noto Sans JP", sans-serif', size: 13, color: "#1f2933" };
// No mode bar: the page's own export buttons (exporting.js) draw the figures crisp, which Plotly's camera cannot.
export const PLOT_CONFIG = { displayModeBar: false, responsive: false, scrollZoom: false };

// Masked (future) cells get a colour no scale uses for a weight, so "masked" never reads as "0".
const MASK_COLOUR = { Greys: "#f3c5b8", default: "#d5d9de" };
const BAR_AXES = "9"; // the colour bar's subplot
const BAR_REGION = 78; // px at the right of the plot area: bar, ticks and title
const PANEL_GAP = 30; // px between panels
const LINE = 17; // px per line of tick label

export function maskColour(scale) {
  return MASK_COLOUR[scale] ?? MASK_COLOUR.default;
}

// The weight trace and, for causal maps, the mask trace drawn under it. `axes` names the subplot ("", "2", "3").
export function attentionTraces(view, options, axes, zmax) {
  const text = view.matrix.map((row, i) =>
    row.map((w, j) => {
      const where = `query: ${hoverName(view.rowTokens[i])}<br>key: ${hoverName(view.colTokens[j])}`;
      return view.masked[i][j] ? `${where}<br>masked (a future position)` : `${where}<br>weight: ${w.toFixed(4)}`;
    }),
  );
  const common = {
    type: "heatmap",
    x: view.cols.map((_, j) => j),
    y: view.rows.map((_, i) => i),
    text,
    hovertemplate: "%{text}<extra></extra>",
    hoverongaps: false,
    xaxis: `x${axes}`,
    yaxis: `y${axes}`,
    zsmooth: "fast",
    showscale: false,
  };
  const weights = {
    ...common,
    z: view.matrix.map((row, i) => row.map((w, j) => (view.masked[i][j] ? null : w))),
    colorscale: plotlyScale(options.scale),
    zmin: 0,
    zmax,
  };
  if (!view.causal) return [weights];
  const colour = maskColour(options.scale);
  const mask = { ...common, z: view.masked.map((row) => row.map((m) => (m ? 1 : null))), colorscale: [[0, colour], [1, colour]] };
  return [mask, weights];
}

// Traces and layout of panels side by side, `width` px wide. `xSide` puts the key labels on
// "top" (the head view, like the classic figure) or "bottom" (under titled panels).
export function attentionFigure(views, options, { width, xSide, title, maxCell = 64 }) {
  const yLabel = (t) => plainWidth(axisLabel(t, options.showReadings, "y"));
  const yLabelWidth = (view) => Math.max(20, ...view.rowTokens.map(yLabel)) + 12;
  const sharesRows = (k) => k > 0 && views[k].queryAxis === views[k - 1].queryAxis && views[k].rows.length === views[k - 1].rows.length;
  const gaps = views.map((view, k) => (k === 0 ? 0 : PANEL_GAP + (sharesRows(k) ? 0 : yLabelWidth(view))));
  const left = yLabelWidth(views[0]) + 34; // labels, plus the axis title beside them
  const plotWidth = Math.max(width - left - 12, 200);
  const totalCols = views.reduce((n, v) => n + v.cols.length, 0);
  const maxRows = Math.max(...views.map((v) => v.rows.length));
  const room = (plotWidth - BAR_REGION - gaps.reduce((a, b) => a + b, 0)) / totalCols;
  const cell = Math.max(8, Math.min(maxCell, room, 760 / maxRows));

  // Key labels: level if they fit their cell, else slanted.
  const xLabels = views.map((view) => view.colTokens.map((t) => plainWidth(axisLabel(t, options.showReadings, "x"))));
  const widest = Math.max(...xLabels.flat(), 10);
  const slanted = widest > cell - 4;
  const lines = options.showReadings && views.some((v) => v.colTokens.some((t) => t.reading)) ? 2 : 1;
  const labelHeight = slanted ? widest * 0.72 + LINE * lines : LINE * lines + 6;

  const plotHeight = maxRows * cell;
  const titleHeight = title ? 40 : 0;
  const panelTitles = xSide === "bottom" ? 42 : 0;
  const margin = xSide === "top"
    ? { l: left, r: 12, t: titleHeight + labelHeight + 30, b: 16 }
    : { l: left, r: 12, t: titleHeight + panelTitles, b: labelHeight + 16 };
  const zmax = Math.max(...views.map((v) => matrixMax(v.matrix))) || 1;

  const layout = {
    font: FONT,
    width,
    height: Math.round(plotHeight + margin.t + margin.b),
    margin,
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    hoverlabel: { font: { family: FONT.family, size: 13 } },
    annotations: [],
    shapes: [],
  };
  if (title) layout.title = { text: title, x: 0, xanchor: "left", y: 1, yanchor: "top", yref: "container", pad: { t: 10 }, font: { size: 15 } };
  const traces = [];
  let x = 0;
  views.forEach((view, k) => {
    const axes = k === 0 ? "" : String(k + 1);
    x += gaps[k];
    const span = view.cols.length * cell;
    const tall = view.rows.length * cell;
    layout[`xaxis${axes}`] = {
      tickmode: "array",
      tickvals: view.cols.map((_, j) => j),
      ticktext: view.colTokens.map((t) => axisLabel(t, options.showReadings, "x")),
      tickangle: slanted ? -45 : 0,
      side: xSide,
      ticks: "",
      showgrid: false,
      zeroline: false,
      fixedrange: true,
      range: [-0.5, view.cols.length - 0.5],
      domain: [x / plotWidth, (x + span) / plotWidth],
      anchor: `y${axes}`,
    };
    layout[`yaxis${axes}`] = {
      tickmode: "array",
      tickvals: view.rows.map((_, i) => i),
      ticktext: view.rowTokens.map((t) => axisLabel(t, options.showReadings, "y")),
      showticklabels: !sharesRows(k),
      ticks: "",
      showgrid: false,
      zeroline: false,
      fixedrange: true,
      range: [view.rows.length - 0.5, -0.5],
      domain: [1 - tall / plotHeight, 1],
      anchor: `x${axes}`,
    };
    traces.push(...attentionTraces(view, options, axes, zmax));
    x += span;
  });
  const barLeft = x + 14;
  Object.assign(layout, colourBarAxes(barLeft / plotWidth, (barLeft + 14) / plotWidth, Math.min(plotHeight, 320) / plotHeight, zmax));
  traces.push(colourBarTrace(options, zmax));
  return { traces, layout, cell };
}

function colourBarTrace(options, zmax) {
  const steps = 96;
  const values = Array.from({ length: steps }, (_, k) => (zmax * (k + 0.5)) / steps);
  return {
    type: "heatmap",
    x: [0],
    y: values,
    z: values.map((v) => [v]),
    colorscale: plotlyScale(options.scale),
    zmin: 0,
    zmax,
    zsmooth: "fast",
    showscale: false,
    hoverinfo: "skip",
    xaxis: `x${BAR_AXES}`,
    yaxis: `y${BAR_AXES}`,
  };
}

function colourBarAxes(x0, x1, height, zmax) {
  return {
    [`xaxis${BAR_AXES}`]: { domain: [x0, x1], visible: false, fixedrange: true, range: [-0.5, 0.5], anchor: `y${BAR_AXES}` },
    [`yaxis${BAR_AXES}`]: {
      domain: [1 - height, 1],
      range: [0, zmax],
      side: "right",
      anchor: `x${BAR_AXES}`,
      ticks: "outside",
      ticklen: 4,
      nticks: 6,
      showgrid: false,
      zeroline: false,
      fixedrange: true,
      title: { text: "weight", font: { size: 12, color: "#52606d" } },
    },
  };
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

let measuring = null;

// Width in px of the widest line of a Plotly label (entities decoded, <br> splits lines).
function plainWidth(label) {
  measuring ??= document.createElement("canvas").getContext("2d");
  measuring.font = `${FONT.size}px ${FONT.family}`;
  const decode = (line) => line.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&#34;/g, '"').replace(/&amp;/g, "&");
  return Math.max(...label.split("<br>").map((line) => measuring.measureText(decode(line)).width));
}
