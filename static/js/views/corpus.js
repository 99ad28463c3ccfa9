// The corpus view, under the per-sentence head statistics: one kind's per-head figure over a test set
// (from the model's head table, corpus.js), clickable like the statistics, and the greedy pruning curve.

import { plotlyScale } from "../colors.js";
import { METRIC_NAMES, pruningSeries } from "../corpus.js";
import { KIND_NAMES } from "../state.js";
import { escapePlotly } from "../tokens.js";
import { axisTitle, FONT, PLOT_CONFIG } from "./heatmap.js";

const NARROW = 640; // px: below it a title takes two lines

// `grid`: corpus.corpusGrid of the kind and metric; a BLEU drop is drawn in the diverging scale, centred on 0.
export function drawCorpusGrid(element, grid, table, kind, metric, options) {
  const signed = metric === "bleu_drop";
  const values = grid.z.flat().filter((v) => v !== null);
  const top = Math.max(1e-9, ...values.map(Math.abs));
  const trace = {
    type: "heatmap",
    x: grid.heads,
    y: grid.layers,
    z: grid.z,
    xgap: 2,
    ygap: 2,
    colorscale: plotlyScale(signed ? "diverging" : options.scale),
    ...(signed ? { zmin: -top, zmax: top } : {}),
    showscale: false,
    texttemplate: metric === "importance" ? "%{z:.3g}" : "%{z:.2f}",
    textfont: { size: 12 },
    text: grid.z.map((row, l) => row.map((v, h) => `layer ${l}, head ${h}<br>${METRIC_NAMES[metric]}: ${v === null ? "not measured" : v.toPrecision(3)}<br>click to open`)),
    hovertemplate: "%{text}<extra></extra>",
  };
  const width = Math.min(element.clientWidth || 640, Math.max(600, 120 + grid.heads.length * 90));
  const axis = (title, ticks) => ({ title: axisTitle(title), tickmode: "array", tickvals: ticks, fixedrange: true, showgrid: false, zeroline: false });
  const layout = {
    font: FONT,
    title: { text: lines([`${KIND_NAMES[kind]} over the ${table.data.split} set:`, METRIC_NAMES[metric]], width), x: 0, xanchor: "left", font: { size: 15 } },
    height: Math.max(240, grid.layers.length * 46 + 150),
    width,
    margin: { t: width < NARROW ? 76 : 60, r: 20, b: 60, l: 70 },
    xaxis: axis("head", grid.heads),
    yaxis: { ...axis("layer", grid.layers), autorange: "reversed" },
  };
  return Plotly.react(element, [trace], layout, PLOT_CONFIG);
}

// The title's parts on one line, or one a line where the figure is narrow (a phone).
function lines(parts, width) {
  return parts.map(escapePlotly).join(width < NARROW ? "<br>" : " ");
}

export function drawPruning(element, table) {
  const series = pruningSeries(table);
  const width = element.clientWidth || 640;
  const trace = {
    type: "scatter",
    mode: "lines+markers",
    x: series.x,
    y: series.y,
    text: series.text,
    hovertemplate: "%{text}<extra></extra>",
    line: { color: "#3b4cca", width: 2 },
    marker: { size: 6, color: "#3b4cca" },
  };
  const layout = {
    font: FONT,
    title: { text: lines(["BLEU as heads are switched off one by one,", `least important first (${table.data.corpus} ${table.data.split})`], width), x: 0, xanchor: "left", font: { size: 15 } },
    height: 340,
    width,
    margin: { t: width < NARROW ? 76 : 60, r: 20, b: 60, l: 70 },
    showlegend: false,
    xaxis: { title: axisTitle("heads switched off"), fixedrange: true, zeroline: false, gridcolor: "#e4e7eb" },
    yaxis: { title: axisTitle("BLEU"), fixedrange: true, rangemode: "tozero", gridcolor: "#e4e7eb" },
  };
  return Plotly.react(element, [trace], layout, PLOT_CONFIG);
}
