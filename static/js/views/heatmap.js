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
const BAR_BELOW = 40; // px under the maps for a level colour bar and its ticks

export function maskColour(scale) {
  return MASK_COLOUR[scale] ?? MASK_COLOUR.default;
}

// The weight trace and, for causal maps, the mask trace drawn under it. `axes` names the subplot ("", "2", "3").
export function attentionTraces(view, options, axes, zmax) {
  const valueName = !view.method || view.method === "weights" ? "weight" : view.method;
  const text = view.matrix.map((row, i) =>
    row.map((w, j) => {
      const where = `query: ${hoverName(view.rowTokens[i])}<br>key: ${hoverName(view.colTokens[j])}`;
      return view.masked[i][j] ? `${where}<br>masked (a future position)` : `${where}<br>${valueName}: ${w.toFixed(4)}`;
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
  // A signed map (a difference of two results) gets the diverging scale, centred on 0.
  const weights = {
    ...common,
    z: view.matrix.map((row, i) => row.map((w, j) => (view.masked[i][j] ? null : w))),
    colorscale: plotlyScale(view.signed ? "diverging" : options.scale),
    zmin: view.signed ? -zmax : 0,
    zmax,
  };
  if (!view.causal) return [weights];
  const colour = maskColour(options.scale);
  const mask = { ...common, z: view.masked.map((row) => row.map((m) => (m ? 1 : null))), colorscale: [[0, colour], [1, colour]] };
  return [mask, weights];
}

// Traces and layout of panels side by side (or, with `stack`, one above the other), `width` px wide.
// `xSide` puts the key labels on "top" (the head view, like the classic figure) or "bottom" (under
// titled panels). Cells are at most `maxCell` px high and fit `height` px when it is given; they may be
// up to `maxAspect` times wider than high, so a short sentence still takes the width it has.
// Where cells are smaller than a label, only every few labels are drawn (the hover names every cell).
export function attentionFigure(views, options, { width, height = Infinity, xSide, title, maxCell = 64, maxAspect = 1, stack = false }) {
  const narrow = width < 600;
  // On a phone the head view's colour bar goes under the map, so the map can take the width.
  const barBelow = narrow && xSide === "top";
  const barRegion = barBelow ? 0 : narrow ? 56 : BAR_REGION;
  const yLabel = (t) => plainWidth(axisLabel(t, options.showReadings, "y"));
  const yLabelWidth = (view) => Math.max(20, ...view.rowTokens.map(yLabel)) + 12;
  const sharesRows = (k) => !stack && k > 0 && views[k].queryAxis === views[k - 1].queryAxis && views[k].rows.length === views[k - 1].rows.length;
  const gaps = views.map((view, k) => (k === 0 || stack ? 0 : PANEL_GAP + (sharesRows(k) ? 0 : yLabelWidth(view))));
  const left = Math.max(...(stack ? views : views.slice(0, 1)).map(yLabelWidth)) + (narrow ? 22 : 34); // labels, plus the axis title beside them
  const plotWidth = Math.max(width - left - 12, 120);
  const columns = stack ? Math.max(...views.map((v) => v.cols.length)) : views.reduce((n, v) => n + v.cols.length, 0);
  const maxRows = stack ? views.reduce((n, v) => n + v.rows.length, 0) : Math.max(...views.map((v) => v.rows.length));
  const xLabels = views.map((view) => view.colTokens.map((t) => plainWidth(axisLabel(t, options.showReadings, "x"))));
  const widest = Math.max(...xLabels.flat(), 10);
  const lines = options.showReadings && views.some((v) => v.colTokens.some((t) => t.reading)) ? 2 : 1;
  const labelRoom = (cellWidth) => (widest > cellWidth - 4 ? Math.min(widest, 120) * 0.72 + LINE * lines : LINE * lines + 6);
  const titleHeight = title ? 40 : 0;
  const panelTitles = xSide === "bottom" ? 42 : 0;
  const perPanel = stack ? views.length : 1; // panel titles and key labels repeat for each stacked panel

  const room = (plotWidth - barRegion - gaps.reduce((a, b) => a + b, 0)) / columns;
  const widthCell = Math.max(6, Math.min(maxCell * maxAspect, room));
  const fixed = titleHeight + perPanel * (panelTitles + labelRoom(widthCell) + 16) + 30;
  const cellHeight = Math.max(8, Math.min(maxCell, widthCell, (height - fixed) / maxRows, 760 / maxRows));
  const cellWidth = Math.max(6, Math.min(widthCell, cellHeight * maxAspect));
  const slanted = widest > cellWidth - 4;
  const labelHeight = labelRoom(cellWidth);
  // Every `step`-th label: slanted labels need about a line of spacing, level ones their width.
  const xStep = Math.max(1, Math.ceil((slanted ? LINE : widest + 4) / cellWidth));
  const yStep = Math.max(1, Math.ceil(LINE / cellHeight));

  const bands = views.map((view) => view.rows.length * cellHeight + (stack ? panelTitles + labelHeight + 16 : 0));
  const mapsHeight = stack ? bands.reduce((a, b) => a + b, 0) : maxRows * cellHeight;
  const plotHeight = mapsHeight + (barBelow ? BAR_BELOW : 0);
  const margin = xSide === "top"
    ? { l: left, r: 12, t: titleHeight + labelHeight + 30, b: barBelow ? 34 : 16 }
    : stack
      ? { l: left, r: 12, t: titleHeight, b: 0 }
      : { l: left, r: 12, t: titleHeight + panelTitles, b: labelHeight + 16 };
  const zmax = Math.max(...views.map((v) => matrixMax(v.signed ? v.matrix.map((row) => row.map(Math.abs)) : v.matrix))) || 1;

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
  const every = (values, step) => values.filter((_, k) => k % step === 0);
  const traces = [];
  let x = 0;
  let top = 0;
  views.forEach((view, k) => {
    const axes = k === 0 ? "" : String(k + 1);
    x = stack ? 0 : x + gaps[k];
    const span = view.cols.length * cellWidth;
    const tall = view.rows.length * cellHeight;
    const y0 = stack ? top + panelTitles : 0;
    layout[`xaxis${axes}`] = {
      tickmode: "array",
      tickvals: every(view.cols.map((_, j) => j), xStep),
      ticktext: every(view.colTokens.map((t) => axisLabel(t, options.showReadings, "x")), xStep),
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
      tickvals: every(view.rows.map((_, i) => i), yStep),
      ticktext: every(view.rowTokens.map((t) => axisLabel(t, options.showReadings, "y")), yStep),
      showticklabels: !sharesRows(k),
      ticks: "",
      showgrid: false,
      zeroline: false,
      fixedrange: true,
      range: [view.rows.length - 0.5, -0.5],
      domain: [1 - (y0 + tall) / plotHeight, 1 - y0 / plotHeight],
      anchor: `x${axes}`,
    };
    traces.push(...attentionTraces(view, options, axes, zmax));
    x += span;
    top += bands[k];
  });
  const signed = views.some((v) => v.signed);
  const range = [signed ? -zmax : 0, zmax];
  if (barBelow) {
    const box = { x: [0, Math.min(1, 220 / plotWidth)], y: [(BAR_BELOW - 26) / plotHeight, (BAR_BELOW - 14) / plotHeight] };
    Object.assign(layout, colourBarAxes(box, range, signed, "x"));
  } else {
    const barLeft = (stack ? Math.max(...views.map((v) => v.cols.length)) * cellWidth : x) + 14;
    const barTop = stack ? panelTitles / plotHeight : 0;
    const box = { x: [barLeft / plotWidth, (barLeft + 14) / plotWidth], y: [Math.max(0, 1 - barTop - Math.min(mapsHeight, 320) / plotHeight), 1 - barTop] };
    Object.assign(layout, colourBarAxes(box, range, signed, "y"));
  }
  traces.push(colourBarTrace(options, range, signed, barBelow ? "x" : "y"));
  return { traces, layout };
}

// `along`: the axis the values run along, "y" (upright, right of the maps) or "x" (level, under them).
function colourBarTrace(options, [low, zmax], signed, along) {
  const steps = 96;
  const values = Array.from({ length: steps }, (_, k) => low + ((zmax - low) * (k + 0.5)) / steps);
  return {
    type: "heatmap",
    ...(along === "y" ? { x: [0], y: values, z: values.map((v) => [v]) } : { x: values, y: [0], z: [values] }),
    colorscale: plotlyScale(signed ? "diverging" : options.scale),
    zmin: low,
    zmax,
    zsmooth: "fast",
    showscale: false,
    hoverinfo: "skip",
    xaxis: `x${BAR_AXES}`,
    yaxis: `y${BAR_AXES}`,
  };
}

function colourBarAxes(box, range, signed, along) {
  const across = along === "y" ? "x" : "y";
  return {
    [`${across}axis${BAR_AXES}`]: { domain: box[across], visible: false, fixedrange: true, range: [-0.5, 0.5], anchor: `${along}${BAR_AXES}` },
    [`${along}axis${BAR_AXES}`]: {
      domain: box[along],
      range,
      side: along === "y" ? "right" : "bottom",
      anchor: `${across}${BAR_AXES}`,
      ticks: "outside",
      ticklen: 4,
      nticks: 6,
      showgrid: false,
      zeroline: false,
      fixedrange: true,
      title: { text: signed ? "difference" : "weight", font: { size: 12, color: "#52606d" } },
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
