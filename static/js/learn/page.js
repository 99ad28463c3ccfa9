// The Learn page (/learn): attention worked through on numbers small enough to follow by hand, every
// one editable, every later step recomputed in the browser at once. No model and no request: the maths
// is ./attention.js, the drawing ./draw.js; this module only wires inputs to outputs.

import * as A from "./attention.js";
import { BATCH_LENGTHS, defaultExample, maskPanelScores, TOKENS } from "./example.js";
import { element, formatNumber, logPlot, numberTable, row, section } from "./draw.js";

const example = defaultExample();
const batch = { lengths: [...BATCH_LENGTHS], sentence: 2, causal: false };
const DIMS = (n, letter) => Array.from({ length: n }, (_, k) => `${letter}${k + 1}`);
const KEYS = TOKENS.map((t) => `k: ${t}`);
const $ = (id) => document.getElementById(id);

// Each editable matrix is drawn once (re-drawing would take the focus from the cell being typed in);
// a change recomputes and redraws every output.
function editable(key, caption, rows, columns) {
  return numberTable({
    matrix: example[key].map((r) => (Array.isArray(r) ? r : [r])),
    rows,
    columns,
    caption,
    name: caption,
    edit: (i, j, value) => {
      if (Array.isArray(example[key][i])) example[key][i][j] = value;
      else example[key][j] = value;
      renderOutputs();
    },
    colour: false,
  });
}

function drawInputs() {
  $("worked-inputs").replaceChildren(
    row(
      editable("X", "X: the three tokens' embeddings (3 × 3)", TOKENS, DIMS(3, "e")),
      editable("WQ", "W_Q (3 × 4)", DIMS(3, "e"), DIMS(4, "q")),
      editable("WK", "W_K (3 × 4)", DIMS(3, "e"), DIMS(4, "k")),
      editable("WV", "W_V (3 × 4)", DIMS(3, "e"), DIMS(4, "v")),
    ),
  );
  $("scores-inputs").replaceChildren(
    row(
      editable("W1", "W₁, applied to q (3 × 4)", DIMS(3, "h"), DIMS(4, "q")),
      editable("W2", "W₂, applied to k (3 × 4)", DIMS(3, "h"), DIMS(4, "k")),
      numberTable({
        matrix: [example.v],
        rows: ["v"],
        columns: DIMS(3, "h"),
        caption: "v (3)",
        colour: false,
        edit: (_, j, value) => {
          example.v[j] = value;
          renderOutputs();
        },
      }),
    ),
  );
  $("heads-inputs").replaceChildren(row(editable("WO", "W_O, mixing the concatenated heads (4 × 4)", DIMS(4, "z"), DIMS(4, "o"))));
  const lengths = $("mask-lengths");
  lengths.replaceChildren(
    ...batch.lengths.map((length, b) => {
      const label = element("label", "control", `Sentence ${b + 1}: `);
      const input = element("input");
      Object.assign(input, { type: "number", min: "1", max: "8", step: "1", value: String(length), id: `mask-length-${b}` });
      input.addEventListener("input", () => {
        const value = Number(input.value);
        if (Number.isInteger(value) && value >= 1 && value <= 8) {
          batch.lengths[b] = value;
          renderMasks();
        }
      });
      label.append(input, document.createTextNode(" tokens"));
      return label;
    }),
  );
}

function worked() {
  return A.selfAttention(example.X, example.WQ, example.WK, example.WV);
}

function renderWorked(steps) {
  const queries = TOKENS.map((t) => `q: ${t}`);
  const box = $("worked-outputs");
  const projections = section(
    "1. Queries, keys and values",
    "Each token's embedding is multiplied by three matrices: its query says what it looks for, its key what it offers, its value what it passes on.",
    "Q = X W_Q,   K = X W_K,   V = X W_V",
  );
  projections.append(
    row(
      numberTable({ matrix: steps.Q, rows: TOKENS, columns: DIMS(4, "q"), caption: "Q (3 × 4)" }),
      numberTable({ matrix: steps.K, rows: TOKENS, columns: DIMS(4, "k"), caption: "K (3 × 4)" }),
      numberTable({ matrix: steps.V, rows: TOKENS, columns: DIMS(4, "v"), caption: "V (3 × 4)" }),
    ),
  );
  const scores = section(
    "2. Scores, then scaling",
    `Every query is compared with every key by a dot product. With d_k = ${steps.dK}, the scores are divided by √${steps.dK} = ${formatNumber(Math.sqrt(steps.dK), 0)}: their spread (standard deviation) goes from ${formatNumber(A.spread(steps.scores.flat()))} to ${formatNumber(A.spread(steps.scaled.flat()))}, so the softmax does not saturate as d_k grows.`,
    "scores = Q Kᵀ / √d_k",
  );
  scores.append(
    row(
      numberTable({ matrix: steps.scores, rows: queries, columns: KEYS, caption: "Q Kᵀ (3 × 3)" }),
      numberTable({ matrix: steps.scaled, rows: queries, columns: KEYS, caption: `Q Kᵀ / √${steps.dK}` }),
    ),
  );
  const softmax = section(
    "3. Softmax, row by row",
    "Each row of scores becomes weights that are positive and sum to 1: how much each query token takes from each key token.",
    "α_ij = exp(s_ij) / Σ_k exp(s_ik)",
  );
  softmax.append(numberTable({ matrix: steps.weights, rows: queries, columns: KEYS, caption: "weights α (each row sums to 1)", signed: false, digits: 3 }));
  const output = section(
    "4. The weighted sum of values",
    "Each token's output is the average of the value vectors, weighted by its row of α: the head's output, one row per token.",
    "Z = softmax(Q Kᵀ / √d_k) V",
  );
  output.append(numberTable({ matrix: steps.output, rows: TOKENS, columns: DIMS(4, "z"), caption: "Z (3 × 4)", id: "worked-z" }));
  box.replaceChildren(projections, scores, softmax, output);
}

function renderScores(steps) {
  const queries = TOKENS.map((t) => `q: ${t}`);
  const additive = A.additiveScores(steps.Q, steps.K, example.W1, example.W2, example.v);
  const kinds = [
    ["Dot product", "q · k", steps.scores],
    ["Scaled dot product", "q · k / √d_k", steps.scaled],
    ["Additive (Bahdanau)", "vᵀ tanh(W₁ q + W₂ k)", additive],
  ];
  $("scores-outputs").replaceChildren(
    row(
      ...kinds.map(([name, formula, scores]) => {
        const column = element("div", "score-kind");
        column.append(
          element("h3", "", name),
          element("p", "equation", formula),
          numberTable({ matrix: scores, rows: queries, columns: KEYS, caption: `${name}: scores` }),
          numberTable({ matrix: A.softmaxRows(scores), rows: queries, columns: KEYS, caption: `${name}: weights`, signed: false, digits: 3 }),
        );
        return column;
      }),
    ),
  );
}

function renderHeads(steps) {
  const heads = A.multiHead(steps.Q, steps.K, steps.V, 2, example.WO);
  const queries = TOKENS.map((t) => `q: ${t}`);
  const perHead = heads.heads.map((head, h) => {
    const column = element("div", "score-kind");
    const cols = [2 * h + 1, 2 * h + 2];
    column.append(
      element("h3", "", `Head ${h + 1}: columns ${cols.join(" and ")} of Q, K and V`),
      row(
        numberTable({ matrix: head.Q, rows: TOKENS, columns: cols.map((c) => `q${c}`), caption: `Q${h + 1}` }),
        numberTable({ matrix: head.K, rows: TOKENS, columns: cols.map((c) => `k${c}`), caption: `K${h + 1}` }),
        numberTable({ matrix: head.V, rows: TOKENS, columns: cols.map((c) => `v${c}`), caption: `V${h + 1}` }),
      ),
      numberTable({ matrix: head.weights, rows: queries, columns: KEYS, caption: `head ${h + 1} weights: softmax(Q${h + 1}K${h + 1}ᵀ / √2)`, signed: false, digits: 3 }),
      numberTable({ matrix: head.output, rows: TOKENS, columns: cols.map((c) => `z${c}`), caption: `head ${h + 1} output` }),
    );
    return column;
  });
  const joined = element("div", "score-kind");
  joined.append(
    element("h3", "", "Concatenated, then W_O"),
    numberTable({ matrix: heads.concat, rows: TOKENS, columns: DIMS(4, "z"), caption: "[head 1 | head 2] (3 × 4)" }),
    numberTable({ matrix: heads.output, rows: TOKENS, columns: DIMS(4, "o"), caption: "[head 1 | head 2] W_O (3 × 4)" }),
  );
  $("heads-outputs").replaceChildren(row(...perHead, joined));
}

function renderMasks() {
  const padding = A.paddingMask(batch.lengths);
  const width = padding[0].length;
  const positions = Array.from({ length: width }, (_, j) => String(j + 1));
  const sentence = Math.min(batch.sentence, batch.lengths.length - 1);
  const select = $("mask-sentence");
  select.replaceChildren(...batch.lengths.map((length, b) => Object.assign(element("option", "", `Sentence ${b + 1} (${length} tokens)`), { value: String(b) })));
  select.value = String(sentence);
  const causal = A.causalMask(width);
  const keys = A.keyMaskRows(padding[sentence], width);
  const allowed = batch.causal ? A.bothMasks(keys, causal) : keys;
  const scores = maskPanelScores(width);
  const masked = A.maskScores(scores, allowed);
  const cells = (mask) => mask.map((r) => r.map((ok) => (ok ? 1 : 0)));
  const notAllowed = allowed.map((r) => r.map((ok) => !ok));
  const padded = width - batch.lengths[sentence];
  const what = batch.causal
    ? `With both masks, query i sees the real keys up to itself: ${padded ? `columns ${batch.lengths[sentence] + 1}–${width} are padding, and ` : ""}every cell above the diagonal is the future.`
    : padded
      ? `Sentence ${sentence + 1} has ${batch.lengths[sentence]} tokens, so its columns ${batch.lengths[sentence] + 1}–${width} are padding: their scores become −∞ and their weights exactly 0.`
      : `Sentence ${sentence + 1} is the longest: nothing of it is padding.`;
  const batchBox = section("The batch's padding mask", `A batch is padded to its longest sentence (${width} tokens). 1: a real token, 0: padding; keys that are padding are masked for every query.`);
  batchBox.append(numberTable({ matrix: cells(padding), rows: batch.lengths.map((_, b) => `sentence ${b + 1}`), columns: positions, caption: "padding mask (batch × position)", digits: 0, signed: false }));
  const causalBox = section("The causal mask", "A decoder predicting token i + 1 may look only at tokens 1 … i: every key after the query is masked.");
  causalBox.append(numberTable({ matrix: cells(causal), rows: positions.map((p) => `q${p}`), columns: positions.map((p) => `k${p}`), caption: "causal mask (query × key)", digits: 0, signed: false }));
  const effect = section("What a mask does to the scores", `${what} The softmax of a row then spreads its weight over the keys that remain.`, "softmax(scores + M),  M_ij = 0 where allowed, −∞ where masked");
  effect.append(
    row(
      numberTable({ matrix: scores, rows: positions.map((p) => `q${p}`), columns: positions.map((p) => `k${p}`), caption: "scores before the mask" }),
      numberTable({ matrix: masked, rows: positions.map((p) => `q${p}`), columns: positions.map((p) => `k${p}`), caption: "scores after the mask", masked: notAllowed }),
      numberTable({ matrix: A.softmaxRows(masked), rows: positions.map((p) => `q${p}`), columns: positions.map((p) => `k${p}`), caption: "weights", signed: false, digits: 2, masked: notAllowed, maskedText: "0" }),
    ),
  );
  $("mask-outputs").replaceChildren(row(batchBox, causalBox), effect);
}

function renderEfficient(steps) {
  const { Q, K, V } = steps;
  const linear = A.efficientAttention(Q, K, V);
  const quadratic = A.scaledDotProduct(Q, K, V);
  const queries = TOKENS.map((t) => `q: ${t}`);
  const identity = A.maxAbsDifference(linear.output, linear.impliedOutput);
  const d = Number($("efficient-d").value);
  const counts = A.doublings(8, 4096).map((n) => A.operationCounts(n, d));
  const box = $("efficient-outputs");
  const forms = section(
    "Two groupings of one product",
    `Softmax attention must form the n × n matrix Q Kᵀ before it can multiply by V. Efficient attention normalises Q over its features and K over its positions, then multiplies ρ_k(K)ᵀ V first: a d × d_v matrix, whatever n is. Grouped the other way, (ρ_q(Q) ρ_k(K)ᵀ) V, it gives the same output (largest difference here ${identity.toExponential(1)}) and shows the n × n matrix it implies.`,
    "E(Q, K, V) = ρ_q(Q) (ρ_k(K)ᵀ V)   (Shen et al. 2021)",
  );
  forms.append(
    row(
      numberTable({ matrix: linear.rhoQ, rows: TOKENS, columns: DIMS(4, "q"), caption: "ρ_q(Q): each row a softmax over features", signed: false, digits: 3 }),
      numberTable({ matrix: linear.rhoK, rows: TOKENS, columns: DIMS(4, "k"), caption: "ρ_k(K): each column a softmax over positions", signed: false, digits: 3 }),
      numberTable({ matrix: linear.context, rows: DIMS(4, "k"), columns: DIMS(4, "v"), caption: "ρ_k(K)ᵀ V: the d × d_v context" }),
    ),
    row(
      numberTable({ matrix: quadratic.weights, rows: queries, columns: KEYS, caption: "softmax(Q Kᵀ / √d_k): n × n", signed: false, digits: 3 }),
      numberTable({ matrix: linear.implied, rows: queries, columns: KEYS, caption: "ρ_q(Q) ρ_k(K)ᵀ: the n × n it implies", signed: false, digits: 3 }),
      numberTable({ matrix: quadratic.output, rows: TOKENS, columns: DIMS(4, "z"), caption: "softmax attention's output" }),
      numberTable({ matrix: linear.output, rows: TOKENS, columns: DIMS(4, "z"), caption: "efficient attention's output" }),
    ),
  );
  const cost = section(
    "Cost as n grows",
    `Multiply-adds for n queries and n keys with d = d_v = ${d}: the quadratic grouping costs 2·n²·d and keeps an n × n matrix; the linear one costs 2·n·d² and keeps a d × d one. They cross at n = d; at n = 4,096 the linear one is ${formatNumber(counts[counts.length - 1].quadratic / counts[counts.length - 1].linear, 0)} times cheaper.`,
  );
  cost.append(
    row(
      logPlot({
        series: [
          { name: "QKᵀ first (n²)", points: counts.map((c) => [c.n, c.quadratic]) },
          { name: "KᵀV first (n)", points: counts.map((c) => [c.n, c.linear]) },
        ],
        caption: `Multiply-adds of both groupings for n = 8 to 4,096, d = ${d}`,
        xLabel: "n (tokens)",
        yLabel: "multiply-adds",
      }),
      numberTable({
        matrix: counts.map((c) => [c.quadratic, c.linear]),
        rows: counts.map((c) => `n = ${c.n}`),
        columns: ["QKᵀ first", "KᵀV first"],
        caption: "multiply-adds",
        digits: 0,
        colour: false,
      }),
    ),
  );
  box.replaceChildren(forms, cost);
}

function renderOutputs() {
  const steps = worked();
  renderWorked(steps);
  renderScores(steps);
  renderHeads(steps);
  renderEfficient(steps);
}

function start() {
  drawInputs();
  $("mask-sentence").addEventListener("change", (event) => {
    batch.sentence = Number(event.target.value);
    renderMasks();
  });
  $("mask-causal").addEventListener("change", (event) => {
    batch.causal = event.target.checked;
    renderMasks();
  });
  $("efficient-d").addEventListener("change", () => renderEfficient(worked()));
  $("reset-example").addEventListener("click", () => {
    Object.assign(example, defaultExample());
    drawInputs();
    renderOutputs();
  });
  renderOutputs();
  renderMasks();
}

start();
