// The arithmetic of attention, step by step, on plain arrays: matrices are number[][] (one array per
// row), vectors number[]. Nothing here touches the DOM, so the worked example, the masks panel, the
// efficient-attention panel and the check of a model's own numbers share one definition of each step,
// and the tests compare each against a Python reference.
//
// The equations are those of "Attention Is All You Need" (Vaswani et al. 2017), additive scoring of
// Bahdanau et al. 2015, and "Efficient Attention: Attention with Linear Complexities" (Shen et al. 2021).

export function dot(u, v) {
  let total = 0;
  for (let k = 0; k < u.length; k++) total += u[k] * v[k];
  return total;
}

export function transpose(m) {
  return m.length === 0 ? [] : m[0].map((_, j) => m.map((row) => row[j]));
}

// (n × k) · (k × m) -> (n × m)
export function matmul(a, b) {
  const columns = transpose(b);
  return a.map((row) => columns.map((column) => dot(row, column)));
}

// M v for M (n × k), v (k) -> (n)
export function matvec(m, v) {
  return m.map((row) => dot(row, v));
}

export function add(u, v) {
  return u.map((x, k) => x + v[k]);
}

export function scaleMatrix(m, factor) {
  return m.map((row) => row.map((x) => x * factor));
}

// softmax(z)_j = exp(z_j − max z) / Σ_k exp(z_k − max z). A −∞ score (a masked key) gets weight exactly 0;
// a row with every key masked has nothing to attend to and gets all zeros rather than NaN.
export function softmax(row) {
  const top = Math.max(...row);
  if (top === -Infinity) return row.map(() => 0);
  const exps = row.map((z) => (z === -Infinity ? 0 : Math.exp(z - top)));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

export function softmaxRows(m) {
  return m.map(softmax);
}

// Each column through a softmax: over positions rather than features (the keys of efficient attention).
export function softmaxColumns(m) {
  return transpose(softmaxRows(transpose(m)));
}

// Scores where `allowed` is false become −∞, so the softmax gives them weight 0.
export function maskScores(scores, allowed) {
  return scores.map((row, i) => row.map((s, j) => (allowed[i][j] ? s : -Infinity)));
}

// softmax(QKᵀ/√d_k + mask) V, every intermediate kept: the raw dot products, the scaled scores, the
// masked scores, the weights (rows sum to 1) and the output rows Σ_j α_ij v_j.
export function scaledDotProduct(Q, K, V, allowed = null) {
  const dK = Q[0].length;
  const scores = matmul(Q, transpose(K)); // (n × m)
  const scaled = scaleMatrix(scores, 1 / Math.sqrt(dK));
  const masked = allowed ? maskScores(scaled, allowed) : scaled;
  const weights = softmaxRows(masked);
  return { dK, scores, scaled, masked, weights, output: matmul(weights, V) };
}

// One self-attention head on inputs X (n × d_model): Q = X W_Q, K = X W_K, V = X W_V, then as above.
export function selfAttention(X, WQ, WK, WV, allowed = null) {
  const Q = matmul(X, WQ);
  const K = matmul(X, WK);
  const V = matmul(X, WV);
  return { Q, K, V, ...scaledDotProduct(Q, K, V, allowed) };
}

// The three scores of query i and key j side by side:
//   dot product      q·k
//   scaled           q·k / √d_k
//   additive         vᵀ tanh(W₁ q + W₂ k)      (W₁, W₂: h × d_k; v: h)
export function dotScores(Q, K) {
  return matmul(Q, transpose(K));
}

export function scaledScores(Q, K) {
  return scaleMatrix(dotScores(Q, K), 1 / Math.sqrt(Q[0].length));
}

export function additiveScores(Q, K, W1, W2, v) {
  const queries = Q.map((q) => matvec(W1, q)); // (n × h)
  const keys = K.map((k) => matvec(W2, k)); // (m × h)
  return queries.map((wq) => keys.map((wk) => dot(v, add(wq, wk).map(Math.tanh))));
}

// The columns of head h of `heads` equal slices: (n × d) -> [(n × d / heads)].
export function splitHeads(m, heads) {
  const width = m[0].length / heads;
  return Array.from({ length: heads }, (_, h) => m.map((row) => row.slice(h * width, (h + 1) * width)));
}

export function concatHeads(parts) {
  return parts[0].map((_, i) => parts.flatMap((part) => part[i]));
}

// Multi-head attention over already projected Q, K, V: each head attends within its own slice of
// the columns (scaled by its own √d_head), the outputs are concatenated back and mixed by W_O.
export function multiHead(Q, K, V, heads, WO, allowed = null) {
  const [qs, ks, vs] = [Q, K, V].map((m) => splitHeads(m, heads));
  const perHead = qs.map((q, h) => ({ Q: q, K: ks[h], V: vs[h], ...scaledDotProduct(q, ks[h], vs[h], allowed) }));
  const concat = concatHeads(perHead.map((head) => head.output));
  return { heads: perHead, concat, output: matmul(concat, WO) };
}

// ---- masks ------------------------------------------------------------------------------------

// A batch padded to its longest sentence: allowed[b][j] is true where sentence b has a real token j.
export function paddingMask(lengths) {
  const width = Math.max(...lengths);
  return lengths.map((length) => Array.from({ length: width }, (_, j) => j < length));
}

// Query i may see keys 0 … i (a decoder predicting token i + 1 from the tokens before it).
export function causalMask(n) {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => j <= i));
}

// One sentence's key mask as a (rows × n) matrix: every query row sees the same real keys.
export function keyMaskRows(keyAllowed, rows) {
  return Array.from({ length: rows }, () => keyAllowed.slice());
}

export function bothMasks(a, b) {
  return a.map((row, i) => row.map((x, j) => x && b[i][j]));
}

// ---- efficient attention (Shen et al. 2021) ----------------------------------------------------

// E(Q, K, V) = ρ_q(Q) (ρ_k(K)ᵀ V): ρ_q a softmax over each query's features (rows of Q), ρ_k a softmax
// over positions (columns of K). Kᵀ V first is a d_k × d_v "global context", so the cost grows with n,
// not n². The same product grouped the other way, (ρ_q(Q) ρ_k(K)ᵀ) V, shows the n × n matrix the linear
// form implies: its rows sum to 1 like softmax attention's (each row of ρ_q(Q) and each column of ρ_k(K)
// sums to 1), but it is a product of two low-rank factors rather than a softmax of QKᵀ.
export function efficientAttention(Q, K, V) {
  const rhoQ = softmaxRows(Q); // (n × d_k)
  const rhoK = softmaxColumns(K); // (m × d_k)
  const context = matmul(transpose(rhoK), V); // (d_k × d_v)
  const implied = matmul(rhoQ, transpose(rhoK)); // (n × m)
  return { rhoQ, rhoK, context, output: matmul(rhoQ, context), implied, impliedOutput: matmul(implied, V) };
}

// Multiply-adds of each grouping for n queries and n keys of size d (values of size dv):
//   quadratic  QKᵀ (n·n·d) then the weights times V (n·n·dv), and an n × n matrix in memory;
//   linear     ρ_k(K)ᵀ V (n·d·dv) then ρ_q(Q) times it (n·d·dv), and a d × dv matrix.
// The softmaxes (n² exponentials against 2·n·d) are left out of both: they do not change the order.
export function operationCounts(n, d, dv = d) {
  return { n, quadratic: n * n * d + n * n * dv, linear: 2 * n * d * dv, quadraticMemory: n * n, linearMemory: d * dv };
}

// n = 8, 16, … up to `largest`.
export function doublings(smallest = 8, largest = 4096) {
  const sizes = [];
  for (let n = smallest; n <= largest; n *= 2) sizes.push(n);
  return sizes;
}

// ---- positional encoding and summaries ---------------------------------------------------------

// P_i · P_j for every pair of rows of a position table (P × D): how alike the encoding makes two positions.
export function positionSimilarity(table) {
  return matmul(table, transpose(table));
}

// Standard deviation of the finite values: how spread out a row of scores is.
export function spread(values) {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return 0;
  const mean = finite.reduce((a, b) => a + b, 0) / finite.length;
  return Math.sqrt(finite.reduce((a, b) => a + (b - mean) ** 2, 0) / finite.length);
}

// Shannon entropy of a distribution, in bits.
export function entropy(weights) {
  return weights.reduce((total, w) => (w > 0 ? total - w * Math.log2(w) : total), 0);
}

export function maxAbsDifference(a, b) {
  const flat = (x) => (Array.isArray(x) ? x.flat(Infinity) : [x]);
  const [u, v] = [flat(a), flat(b)];
  if (u.length !== v.length) return Infinity;
  return u.reduce((worst, x, k) => Math.max(worst, x === v[k] ? 0 : Math.abs(x - v[k])), 0);
}
