// View 5: per layer × head entropy and mean attention distance, as two small heatmaps.
// A sharp head (low entropy) that looks far (high distance) stands out at a glance.

import { plotlyScale } from "../colors.js";
import { headStatistics } from "../matrices.js";
import { displayedMap } from "../selection.js";
import { KIND_NAMES } from "../state.js";
import { escapePlotly } from "../tokens.js";
import { axisTitle, FONT, PLOT_CONFIG } from "./heatmap.js";

// Statistics of the matrices as shown (special tokens hidden or not, renormalised or not).
export function statisticsOf(response, options, kind) {
  const matrices = response.attention[kind].weights.map((heads, layer) =>
    heads.map((_, head) => displayedMap(response, options, kind, layer, head).matrix),
  );
  return headStatistics(matrices, kind === "cross");
}

function statisticsTitle(kind) {
  return `${KIND_NAMES[kind]}: how spread out and how far each head looks`;
}

// Two panels side by side, or one above the other on a narrow screen.
export function drawStatistics(element, statistics, options, kind, selected) {
  const { entropy, distance } = statistics;
  const stack = element.clientWidth < 640;
  const layers = entropy.map((_, l) => l);
  const heads = entropy[0].map((_, h) => h);
  // Values are printed in the cells, so no colour bar is needed; 2 px gaps set the cells apart.
  const panel = (z, axes, name, unit) => ({
    type: "heatmap",
    x: heads,
    y: layers,
    z,
    xaxis: `x${axes}`,
    yaxis: `y${axes}`,
    xgap: 2,
    ygap: 2,
    colorscale: plotlyScale(options.scale),
    showscale: false,
    texttemplate: "%{z:.2f}",
    textfont: { size: 12 },
    text: z.map((row, l) => row.map((v, h) => `layer ${l}, head ${h}<br>${name}: ${v.toFixed(2)} ${unit}<br>click to open`)),
    hovertemplate: "%{text}<extra></extra>",
  });
  const axis = (title) => ({ title: axisTitle(title), tickmode: "array", fixedrange: true, showgrid: false, zeroline: false });
  const selection = typeof selected.head === "number" ? selectedShapes(selected) : [];
  const layout = {
    font: FONT,
    title: { text: escapePlotly(statisticsTitle(kind)), x: 0, xanchor: "left", font: { size: 15 } },
    height: stack ? Math.max(420, layers.length * 92 + 260) : Math.max(260, layers.length * 46 + 170),
    margin: { t: 80, r: stack ? 12 : 30, b: 60, l: 70 },
    xaxis: { ...axis("head"), domain: stack ? [0, 1] : [0, 0.45], tickvals: heads },
    yaxis: { ...axis("layer"), autorange: "reversed", tickvals: layers, domain: stack ? [0.58, 1] : [0, 1] },
    xaxis2: { ...axis("head"), domain: stack ? [0, 1] : [0.55, 1], tickvals: heads, anchor: "y2" },
    yaxis2: { ...axis(stack ? "layer" : ""), autorange: "reversed", tickvals: layers, anchor: "x2", domain: stack ? [0, 0.42] : [0, 1] },
    annotations: [
      subtitle(stack ? "Entropy (bits): low = focused" : "Entropy of each query's weights (bits): low = focused", stack ? 0.5 : 0.225, 1),
      subtitle(
        kind === "cross" ? "Mean distance from the diagonal (tokens)" : "Mean attention distance (tokens)",
        stack ? 0.5 : 0.775,
        stack ? 0.42 : 1,
      ),
    ],
    shapes: selection,
  };
  return Plotly.react(element, [panel(entropy, "", "entropy", "bits"), panel(distance, "2", "distance", "tokens")], layout, PLOT_CONFIG);
}

function subtitle(text, x, y) {
  return { text, x, xref: "paper", y: y + 0.02, yref: "paper", yanchor: "bottom", showarrow: false, font: { size: 12, color: "#52606d" } };
}

function selectedShapes({ layer, head }) {
  const box = (axes) => ({
    type: "rect",
    xref: `x${axes}`,
    yref: `y${axes}`,
    x0: head - 0.5,
    x1: head + 0.5,
    y0: layer - 0.5,
    y1: layer + 0.5,
    line: { color: "#ff3b6b", width: 3 },
  });
  return [box(""), box("2")];
}

// Beside the statistics, with a pinned result: each head as a point (entropy, distance), hollow for
// the pinned result and filled for this one, joined by a line, so each head's shift shows.
export function drawStatisticsShift(element, shift, kind) {
  const label = ({ layer, head }) => `L${layer}H${head}`;
  const points = (which, symbol) => ({
    type: "scatter",
    mode: which === "current" ? "markers+text" : "markers",
    x: shift.map((s) => s[which].entropy),
    y: shift.map((s) => s[which].distance),
    text: shift.map(label),
    textposition: "top center",
    textfont: { size: 10, color: "#52606d" },
    customdata: shift.map((s) => `${label(s)} ${which === "current" ? "this result" : "pinned"}: entropy ${s[which].entropy.toFixed(2)} bits, distance ${s[which].distance.toFixed(2)} tokens`),
    hovertemplate: "%{customdata}<extra></extra>",
    marker: { symbol, size: 9, color: "#3b528b", line: { color: "#3b528b", width: 1.5 } },
    name: which,
  });
  const moves = {
    type: "scatter",
    mode: "lines",
    x: shift.flatMap((s) => [s.pinned.entropy, s.current.entropy, null]),
    y: shift.flatMap((s) => [s.pinned.distance, s.current.distance, null]),
    line: { color: "#9aa5b1", width: 1 },
    hoverinfo: "skip",
  };
  const layout = {
    font: FONT,
    title: { text: escapePlotly(`${KIND_NAMES[kind]}: each head's shift from the pinned result (hollow) to this one (filled)`), x: 0, xanchor: "left", font: { size: 15 } },
    height: 380,
    width: element.clientWidth,
    margin: { t: 60, r: 20, b: 60, l: 70 },
    showlegend: false,
    xaxis: { title: axisTitle("entropy (bits): low = focused"), fixedrange: true, zeroline: false, gridcolor: "#e4e7eb" },
    yaxis: { title: axisTitle(kind === "cross" ? "distance from the diagonal (tokens)" : "attention distance (tokens)"), fixedrange: true, zeroline: false, gridcolor: "#e4e7eb" },
  };
  return Plotly.react(element, [moves, points("pinned", "circle-open"), points("current", "circle")], layout, PLOT_CONFIG);
}
