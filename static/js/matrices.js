// Pure functions over attention matrices: number[][] with rows = queries, columns = keys.
// Nothing here touches the DOM, so each function can be checked on its own.

export function meanOverHeads(heads) {
  const rows = heads[0].length;
  const cols = heads[0][0]?.length ?? 0;
  const out = zeros(rows, cols);
  for (const matrix of heads) {
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) out[i][j] += matrix[i][j] / heads.length;
    }
  }
  return out;
}

export function maxOverHeads(heads) {
  return heads[0].map((row, i) => row.map((_, j) => Math.max(...heads.map((matrix) => matrix[i][j]))));
}

// Attention rollout (Abnar & Zuidema 2020): each layer's head-mean plus the residual identity,
// rows renormalised, multiplied from the first layer up to `lastLayer` (inclusive).
export function rollout(layers, lastLayer) {
  let flow = null;
  for (let layer = 0; layer <= lastLayer; layer++) {
    const mean = meanOverHeads(layers[layer]);
    const withResidual = normaliseRows(mean.map((row, i) => row.map((w, j) => 0.5 * w + (i === j ? 0.5 : 0))));
    flow = flow === null ? withResidual : multiply(withResidual, flow);
  }
  return flow;
}

// The matrix one view shows: a head, the layer's own map ("layer": norms, alti), or an aggregate of a
// layer's heads ("mean", "max") or of layers ("rollout").
export function selectMatrix(map, layer, head) {
  if (head === "layer") return map.layer_weights[layer];
  if (head === "mean") return meanOverHeads(map.weights[layer]);
  if (head === "max") return maxOverHeads(map.weights[layer]);
  if (head === "rollout") return rollout(map.weights, layer);
  return map.weights[layer][head];
}

// Masked (future) cells of a causal map: query i never sees key j > i.
export function isMasked(causal, row, col) {
  return causal && col > row;
}

// Keep the given rows and columns; optionally renormalise each kept row to sum to 1 again
// (what the distribution looks like once the hidden tokens are left out).
export function submatrix(matrix, rows, cols, renormalise) {
  const kept = rows.map((i) => cols.map((j) => matrix[i][j]));
  return renormalise ? normaliseRows(kept) : kept;
}

export function normaliseRows(matrix) {
  return matrix.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total > 0 ? row.map((w) => w / total) : row.slice();
  });
}

export function matrixMax(matrix) {
  let best = 0;
  for (const row of matrix) for (const w of row) if (w > best) best = w;
  return best;
}

// Mean over rows of the Shannon entropy (bits) of each row: 0 = every query looks at one key.
export function meanEntropy(matrix) {
  if (matrix.length === 0) return 0;
  let total = 0;
  for (const row of matrix) {
    const sum = row.reduce((a, b) => a + b, 0) || 1;
    for (const w of row) if (w > 0) total -= (w / sum) * Math.log2(w / sum);
  }
  return total / matrix.length;
}

// Mean over rows of the expected distance, in tokens, between a query and the keys it attends to.
// Self-attention measures |i - j|; cross-attention (different lengths) measures the distance from
// the proportional diagonal, so a monotone alignment scores near 0 either way.
export function meanDistance(matrix, cross) {
  const rows = matrix.length;
  if (rows === 0) return 0;
  const cols = matrix[0].length;
  const scale = cross && rows > 1 ? (cols - 1) / (rows - 1) : 1;
  let total = 0;
  matrix.forEach((row, i) => {
    const sum = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((w, j) => {
      total += (w / sum) * Math.abs(j - i * scale);
    });
  });
  return total / rows;
}

// Per layer × head: entropy and mean distance, from matrices indexed [layer][head].
export function headStatistics(matrices, cross) {
  return {
    entropy: matrices.map((layer) => layer.map(meanEntropy)),
    distance: matrices.map((layer) => layer.map((m) => meanDistance(m, cross))),
  };
}

// Indices of the `count` largest weights of a row, largest first.
export function topIndices(row, count) {
  return row
    .map((w, j) => [w, j])
    .sort((a, b) => b[0] - a[0])
    .slice(0, count)
    .map(([, j]) => j);
}

function zeros(rows, cols) {
  return Array.from({ length: rows }, () => new Array(cols).fill(0));
}

function multiply(a, b) {
  const n = b[0].length;
  return a.map((row) => {
    const out = new Array(n).fill(0);
    row.forEach((w, k) => {
      if (w !== 0) for (let j = 0; j < n; j++) out[j] += w * b[k][j];
    });
    return out;
  });
}
