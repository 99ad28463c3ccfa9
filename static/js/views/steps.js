// View 7: walk through the produced tokens one by one; for each step, the cross-attention row
// shows which source tokens the decoder weighed while producing that token.

import { lookupTable } from "../colors.js";
import { topIndices } from "../matrices.js";
import { displayedMap, selectionName } from "../selection.js";
import { escapePlotly, hoverName, plainName } from "../tokens.js";
import { axisTitle, FONT, PLOT_CONFIG } from "./heatmap.js";

export function stepsView(response, options, layer, head) {
  return displayedMap(response, options, "cross", layer, head === "rollout" ? "mean" : head);
}

// The row of the view that shows `step` (a position in target_tokens), or the nearest shown one.
export function stepRow(view, step) {
  const exact = view.rows.indexOf(step);
  if (exact >= 0) return exact;
  const after = view.rows.findIndex((i) => i > step);
  return after >= 0 ? after : view.rows.length - 1;
}

// `pinnedWeights`: the same step's row of a pinned result (compare.pinnedStep), drawn as hollow bars beside.
export function drawSteps(elements, view, options, step, pinnedWeights = null) {
  const row = stepRow(view, step);
  const weights = view.matrix[row];
  const produced = view.rowTokens[row];
  const best = topIndices(weights, 3).filter((j) => weights[j] > 0);

  elements.slider.max = String(view.rows.length - 1);
  elements.slider.value = String(row);
  elements.slider.setAttribute("aria-valuetext", `step ${row + 1} of ${view.rows.length}: ${plainName(produced)}`);
  elements.position.textContent = `step ${row + 1} of ${view.rows.length}`;
  elements.prefix.replaceChildren(
    ...view.rowTokens.map((token, i) => {
      const chip = document.createElement("span");
      chip.className = i === row ? "step-token current" : i < row ? "step-token done" : "step-token todo";
      chip.textContent = plainName(token);
      return chip;
    }),
  );
  elements.summary.textContent = best.length
    ? `Producing “${plainName(produced)}”, it looks most at ${best.map((j) => `“${view.colTokens[j].text}” (${weights[j].toFixed(2)})`).join(", ")}.`
    : `Producing “${plainName(produced)}”.`;

  const x = view.colTokens.map((_, j) => j);
  const trace = {
    type: "bar",
    x,
    y: weights,
    marker: { color: weights.map((w) => barColour(options.scale, w)), line: { color: x.map((j) => (j === best[0] ? "#ff3b6b" : "rgba(0,0,0,0)")), width: 3 } },
    text: weights.map((w, j) => `source: ${hoverName(view.colTokens[j])}<br>weight: ${w.toFixed(4)}`),
    hovertemplate: "%{text}<extra></extra>",
    textposition: "none",
    name: "this result",
  };
  const traces = [trace];
  if (pinnedWeights) {
    traces.push({
      type: "bar",
      x,
      y: pinnedWeights,
      name: "pinned",
      marker: { color: "rgba(255,255,255,0)", line: { color: "#1f2933", width: 1.5 } },
      text: pinnedWeights.map((w, j) => `pinned result<br>source: ${hoverName(view.colTokens[j])}<br>weight: ${w.toFixed(4)}`),
      hovertemplate: "%{text}<extra></extra>",
      textposition: "none",
    });
  }
  const layout = {
    font: FONT,
    title: { text: escapePlotly(`Cross-attention at step ${row + 1}: producing ${plainName(produced)} · ${selectionName("cross", view.layer, view.head)}`), x: 0, xanchor: "left", font: { size: 15 } },
    height: 360,
    margin: { t: 60, r: 20, b: 80, l: 60 },
    xaxis: { tickmode: "array", tickvals: x, ticktext: view.colTokens.map((t) => escapePlotly(t.text)), fixedrange: true, title: axisTitle("source tokens") },
    yaxis: { range: [0, 1], fixedrange: true, title: axisTitle("weight"), gridcolor: "#e4e7eb" },
    bargap: 0.25,
    barmode: "group",
    showlegend: false, // the note above the figure says which bars are the pinned ones
  };
  return Plotly.react(elements.figure, traces, layout, PLOT_CONFIG);
}

function barColour(scale, weight) {
  const k = Math.max(0, Math.min(255, Math.round(weight * 255))) * 3;
  const table = lookupTable(scale);
  return `rgb(${table[k]},${table[k + 1]},${table[k + 2]})`;
}
