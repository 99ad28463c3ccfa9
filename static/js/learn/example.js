// The worked example's starting numbers: three tokens with embeddings of size 3, projected to
// queries, keys and values of size 4, the size of the usual textbook example. Every number is
// editable in the page; these are only where it starts (small integers, so the first steps can be
// followed by hand).

export const TOKENS = ["the", "cat", "sat"];

export function defaultExample() {
  return {
    X: [
      [1, 0, 1],
      [0, 2, 0],
      [1, 1, 1],
    ],
    WQ: [
      [1, 0, 1, 0],
      [0, 1, 0, 1],
      [1, 1, 0, 0],
    ],
    WK: [
      [0, 1, 1, 0],
      [1, 0, 0, 1],
      [0, 1, 0, 1],
    ],
    WV: [
      [1, 0, 0, 1],
      [0, 2, 1, 0],
      [1, 0, 3, 0],
    ],
    // additive (Bahdanau) scoring: vᵀ tanh(W₁ q + W₂ k), hidden size 3
    W1: [
      [0.5, -0.5, 0, 0.5],
      [0, 0.5, 0.5, -0.5],
      [-0.5, 0, 0.5, 0.5],
    ],
    W2: [
      [0.5, 0, -0.5, 0],
      [0, -0.5, 0, 0.5],
      [0.5, 0.5, 0, 0],
    ],
    v: [1, -1, 0.5],
    // the output projection after two heads of size 2 are concatenated
    WO: [
      [1, 0, 0, 0.5],
      [0, 1, 0.5, 0],
      [0, 0.5, 1, 0],
      [0.5, 0, 0, 1],
    ],
  };
}

// The masks panel: a batch of three sentences of different lengths, padded to the longest.
export const BATCH_LENGTHS = [5, 8, 3];

// The masks panel's scores: a fixed pattern over the batch's positions, so that only the masks change what is shown.
export function maskPanelScores(n) {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.round(200 * Math.sin(1.7 * i + 0.9 * j + 0.3)) / 100));
}
