// The "How it's computed" view: one head's computation of one row of its map, in the model's own numbers
// (an answer of POST /api/v1/explain), step by step from the layer's input to the feed-forward block, then
// the model's positional encoding and efficient attention on the head's own queries, keys and values.
// The numbers come from ../learn/explain.js; this module only draws them.

import { KIND_NAMES } from "../state.js";
import * as A from "../learn/attention.js";
import { element, formatNumber, logPlot, numberTable, row, section, strip } from "../learn/draw.js";
import { MAP_PRECISION, withinPrecision } from "../learn/explain.js";
import { escapePlotly } from "../tokens.js";
import { FONT, PLOT_CONFIG } from "./heatmap.js";

const KEY_NAMES = { source_tokens: "source tokens", target_tokens: "produced tokens", decoder_input_tokens: "decoder inputs" };

export function tokenTexts(e, axis) {
  return e[axis].map((t) => t.text);
}

export function explanationTitle(e) {
  const query = e[e.query_axis][e.query].text;
  return `${KIND_NAMES[e.kind]} · layer ${e.layer}, head ${e.head} · how the row of “${query}” (position ${e.query}) is computed`;
}

// The row as a bar chart: the weights recomputed here, and the head view's row as markers on them.
export function rowFigure(e, steps, mapRow, width) {
  const keys = tokenTexts(e, e.key_axis).map(escapePlotly);
  const x = keys.map((_, j) => j);
  const masked = e.allowed.map((ok) => !ok);
  return {
    traces: [
      { type: "bar", x, y: steps.weights, name: "softmax, recomputed here", marker: { color: masked.map((m) => (m ? "#d5d9de" : "#3b4cca")) }, hovertemplate: "%{customdata}<br>weight %{y:.4f}<extra>recomputed here</extra>", customdata: keys },
      { type: "scatter", mode: "markers", x, y: mapRow, name: "the head view's row", marker: { symbol: "line-ew-open", size: 22, line: { width: 3, color: "#ff3b6b" } }, hovertemplate: "%{customdata}<br>weight %{y:.4f}<extra>head view</extra>", customdata: keys },
    ],
    layout: {
      font: FONT,
      width,
      height: 260,
      margin: { l: 56, r: 12, t: 36, b: 70 },
      title: { text: escapePlotly(`The softmax row of “${e[e.query_axis][e.query].text}”, and the head view's`), x: 0, xanchor: "left", font: { size: 14 } },
      xaxis: { tickmode: "array", tickvals: x, ticktext: keys, fixedrange: true, title: { text: `keys: ${KEY_NAMES[e.key_axis]}`, font: { size: 12 } } },
      yaxis: { range: [0, 1], fixedrange: true, title: { text: "weight", font: { size: 12 } } },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.12 },
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      showlegend: true,
    },
  };
}

// The sentence the view opens with under its title: the row equals the map's, in numbers.
export function checkSentence(e, steps) {
  const { map, weights } = steps.differences;
  const equal = withinPrecision(map, MAP_PRECISION);
  const query = e[e.query_axis][e.query].text;
  return {
    equal,
    text: equal
      ? `The softmax row below is row “${query}” of the head view: they differ by at most ${map.toExponential(1)}, within the ${MAP_PRECISION} decimals the map was sent with (recomputed here from q and K: ${weights.toExponential(1)} from the model's).`
      : `The softmax row differs from row “${query}” of the head view by ${map.toExponential(1)}: the map on screen is not this pass's (translate again).`,
  };
}

// Every step as a section of its own: inputs, projections, scores, softmax, weighted sum, heads and W_O,
// residual and LayerNorm, feed-forward, then positional encoding and efficient attention.
export function explanationSections(e, steps, efficiency, mapRow, options) {
  const keys = tokenTexts(e, e.key_axis);
  const queryToken = e[e.query_axis][e.query].text;
  const d = e.d_model;
  const fromMemory = e.kind === "cross";
  const preLN = e.layer_norm === "pre";
  const sections = [];

  const inputs = section(
    "1. The inputs",
    `Each token arrives as a vector of d_model = ${d} numbers: its embedding plus its position, changed by the layers below. ${preLN ? "This model normalises it (LayerNorm) before the block, so x below is what the projections read." : "This model normalises after the block, so x is the residual stream itself."} ${fromMemory ? "The keys and values of cross-attention come from the encoder's output, one row per source token." : "Keys and values come from the same sequence."}`,
  );
  inputs.append(
    strip({ matrix: [e.query_input], rows: [queryToken], caption: `x: the query token's input` }),
    strip({ matrix: e.key_inputs, rows: keys, caption: fromMemory ? "the encoder's output, one row per key" : "the inputs of the keys" }),
  );
  sections.push(inputs);

  const projections = section(
    "2. Query, keys and values",
    `W_Q, W_K and W_V are each ${d} × ${d}; head ${e.head} uses its own ${e.d_k} of their columns (${d} × ${e.d_k} each, columns ${e.head * e.d_k}–${(e.head + 1) * e.d_k - 1}), so q, each key and each value have d_k = ${d} / ${e.heads} = ${e.d_k} numbers.`,
    "q = x W_Q,   K = X W_K,   V = X W_V",
  );
  projections.append(
    strip({ matrix: [steps.q], rows: [queryToken], caption: "q" }),
    row(strip({ matrix: e.keys, rows: keys, caption: "K" }), strip({ matrix: e.values, rows: keys, caption: "V" })),
  );
  sections.push(projections);

  const scoreTable = keys.map((_, j) => [steps.dot[j], steps.scaled[j], e.allowed[j] ? steps.scaled[j] : -Infinity, steps.weights[j], e.weights[j], mapRow[j]]);
  const masked = keys.map((_, j) => [false, false, !e.allowed[j], false, false, false]);
  const maskWhy = e.kind === "decoder" ? `the keys after “${queryToken}” are the future: their scores become −∞, their weights exactly 0` : "one sentence has no padding, so nothing is masked (the Learn page shows a padded batch)";
  const scores = section(
    "3. Scores, scaling, mask and softmax",
    `Each key is scored by its dot product with q, divided by √d_k = √${e.d_k} = ${formatNumber(steps.scale, 2)}: the spread (standard deviation) of the scores goes from ${formatNumber(steps.spread.before)} to ${formatNumber(steps.spread.after)}; unscaled, the largest weight would be ${formatNumber(steps.largest.unscaled, 3)} instead of ${formatNumber(steps.largest.scaled, 3)}. Then the mask: ${maskWhy}. The softmax turns the row into weights that sum to 1.`,
    "α = softmax(q Kᵀ / √d_k + mask)",
  );
  const comparison = numberTable({
    matrix: scoreTable,
    rows: keys,
    columns: ["q · k", `÷ √${e.d_k}`, "masked", "softmax, recomputed", "softmax, the model's", "the head view's row"],
    caption: `Row “${queryToken}”: its scores and weights per key`,
    digits: 4,
    colour: false,
    masked,
    id: "explain-scores",
  });
  for (const [j, line] of [...comparison.querySelector("tbody").rows].entries()) {
    line.cells[6].classList.add(withinPrecision(Math.abs(e.weights[j] - mapRow[j]), MAP_PRECISION) ? "same" : "differs");
  }
  scores.append(comparison);
  sections.push(scores);

  const sum = section(
    "4. The weighted sum of values",
    `Each value row is multiplied by its weight and the rows are added: the head's output for “${queryToken}”. Recomputed here, it differs from the model's by ${steps.differences.headOutput.toExponential(1)}.`,
    "z = Σ_j α_j v_j",
  );
  sum.append(
    strip({ matrix: steps.contributions, rows: keys, caption: "α_j v_j" }),
    strip({ matrix: [steps.headOutput], rows: [`z, head ${e.head}`], caption: "z = Σ_j α_j v_j" }),
  );
  sections.push(sum);

  const heads = section(
    "5. Every head, concatenated, then W_O",
    `The ${e.heads} heads of this layer each computed their own z the same way. Side by side they make one vector of ${e.heads} × ${e.d_k} = ${d} numbers (head ${e.head}'s outlined), which W_O (${d} × ${d}) mixes into the block's output.`,
    "MultiHead = Concat(z_0, …, z_H−1) W_O",
  );
  heads.append(
    strip({ matrix: e.head_outputs, rows: e.head_outputs.map((_, h) => `head ${h}`), caption: "every head's z" }),
    strip({ matrix: [steps.concatenated], rows: ["concatenated"], caption: "Concat(z_0 … z_H−1)", marks: [[e.head * e.d_k, (e.head + 1) * e.d_k]] }),
    strip({ matrix: [e.attention_output], rows: ["× W_O"], caption: "the attention block's output" }),
  );
  sections.push(heads);

  const residual = section(
    "6. The residual add and the LayerNorm",
    preLN
      ? `The block's output is added to the residual stream it read (pre-LN: LayerNorm(x) went into the block; the stream itself is not normalised, the next block normalises its own input). Recomputed: ${steps.differences.residual.toExponential(1)} from the model's.`
      : "The block's output is added to its input and the sum normalised (post-LN).",
    preLN ? "x ← x + MultiHead(LayerNorm(x))" : "x ← LayerNorm(x + MultiHead(x))",
  );
  residual.append(strip({ matrix: [e.residual_in, e.attention_output, e.residual_out], rows: ["stream in", "+ attention", "= stream out"], caption: "the residual stream at the query" }));
  sections.push(residual);

  const ff = e.feed_forward;
  const feedForward = section(
    "7. The feed-forward block",
    `${e.kind === "decoder" ? "After this block the decoder layer has a cross-attention block, whose output enters here; then the" : "The"} layer ends with a feed-forward block on each position alone: two linear layers (${d} → ${e.d_ff} → ${d}) with a ReLU between, added to the stream again.`,
    "x ← x + W₂ ReLU(W₁ LayerNorm(x) + b₁) + b₂",
  );
  feedForward.append(strip({ matrix: [ff.input, ff.normed, ff.output, ff.result], rows: ["stream in", "LayerNorm", "W₂ ReLU(W₁ · + b₁) + b₂", "= layer output"], caption: "the feed-forward block at the query" }));
  sections.push(feedForward);

  sections.push(positionSection(e));
  sections.push(efficiencySection(e, efficiency, keys, options));
  return sections;
}

function positionSection(e) {
  const table = e.positions.table;
  const sinusoidal = e.positions.encoding === "sinusoidal";
  const used = e.positions.side === "source" ? e.source_tokens.length : e.target_tokens.length;
  const box = section(
    "Positional encoding",
    sinusoidal
      ? `Attention itself ignores order: the model adds a fixed vector to each token's embedding by position, sines in the even dimensions and cosines in the odd ones, each pair at its own wavelength. The first ${table.length} positions (this ${e.positions.side} uses ${used}); on the right, how alike the encoding makes each pair of positions: near positions are alike, far ones less.`
      : `Attention itself ignores order: this model learned a vector per position, added to each token's embedding. The first ${table.length} positions (this ${e.positions.side} uses ${used}); on the right, how alike the learned vectors make each pair of positions.`,
    sinusoidal ? "PE(pos, 2i) = sin(pos / 10000^(2i/d)),   PE(pos, 2i+1) = cos(pos / 10000^(2i/d))" : "x_pos = E[token] · √d + P[pos]",
  );
  const positions = table.map((_, p) => (p % 8 === 0 ? String(p) : ""));
  box.append(
    row(
      strip({ matrix: table, rows: positions, caption: `the ${e.positions.side} position table (position × dimension)`, rowHeight: 4 }),
      strip({ matrix: A.positionSimilarity(table), rows: positions, caption: "P_i · P_j (position × position)", rowHeight: 4 }),
    ),
  );
  return box;
}

function efficiencySection(e, efficiency, keys, options) {
  const n = e.queries.length;
  const counts = A.doublings(8, 4096).map((size) => A.operationCounts(size, e.d_k));
  const queries = tokenTexts(e, e.query_axis);
  const ratio = formatNumber(counts[counts.length - 1].quadratic / counts[counts.length - 1].linear, 0);
  const cost = `Multiply-adds for n queries and keys with d = ${e.d_k}: 2·n²·d for QKᵀ first, 2·n·d² for KᵀV first; equal at n = ${e.d_k}, ${ratio} times fewer for the linear form at n = 4,096.`;
  const box = section(
    "Efficient attention on this head",
    `Softmax attention forms the ${n} × ${e.keys.length} matrix of every query against every key; efficient attention (Shen et al. 2021) normalises Q over its ${e.d_k} features and K over its positions, multiplies ρ_k(K)ᵀ V first (${e.d_k} × ${e.d_k}), and never forms it. Grouped the other way it implies the matrix on the right (largest difference between the groupings: ${efficiency.identity.toExponential(1)}). It is another attention, not this head's: ${efficiency.causal ? "it has no causal form either, so the decoder's future is not masked in it." : "its rows are flatter than the model's."}`,
    "E(Q, K, V) = ρ_q(Q) (ρ_k(K)ᵀ V)",
  );
  box.append(
    row(
      strip({ matrix: efficiency.softmax, rows: queries, caption: "softmax(Q Kᵀ / √d_k), this head", signed: false, scale: options.scale }),
      strip({ matrix: efficiency.implied, rows: queries, caption: "ρ_q(Q) ρ_k(K)ᵀ, implied", signed: false, scale: options.scale }),
    ),
    logPlot({
      series: [
        { name: "QKᵀ first (n²)", points: counts.map((c) => [c.n, c.quadratic]) },
        { name: "KᵀV first (n)", points: counts.map((c) => [c.n, c.linear]) },
      ],
      caption: cost,
      xLabel: "n (tokens)",
      yLabel: "multiply-adds",
    }),
    element("p", "caption", cost),
  );
  return box;
}

// The view as a table (and its CSV): per key, the scores and weights of the row.
export function explanationTable(e, steps, mapRow) {
  const keys = tokenTexts(e, e.key_axis);
  return {
    caption: explanationTitle(e),
    columns: ["key position", "key", "q · k", `q · k / √${e.d_k}`, "masked", "weight recomputed", "weight of the model", "weight in the head view"],
    rows: keys.map((key, j) => [j, key, steps.dot[j], steps.scaled[j], e.allowed[j] ? 0 : 1, steps.weights[j], e.weights[j], mapRow[j]]),
  };
}

export function drawRowFigure(element, e, steps, mapRow) {
  const { traces, layout } = rowFigure(e, steps, mapRow, element.clientWidth || 640);
  return Plotly.react(element, traces, layout, PLOT_CONFIG);
}
