// From an API response and the display options to the matrix a figure shows, with its labels.

import { isMasked, selectMatrix, submatrix } from "./matrices.js";
import { visibleIndices } from "./tokens.js";

// head: a head index, or "layer" | "mean" | "max" | "rollout" (rollout exists for the encoder only).
// Rows that are distributions (weights, alti) are renormalised over the shown tokens with
// options.renormalise; rows that are not (norms) are shown raw unless options.normaliseRows.
export function displayedMap(response, options, kind, layer, head) {
  const map = response.attention[kind];
  const queryTokens = response[map.query_axis];
  const keyTokens = response[map.key_axis];
  const rows = visibleIndices(queryTokens, options.showSpecial);
  const cols = visibleIndices(keyTokens, options.showSpecial);
  const full = selectMatrix(map, layer, head);
  const distributions = map.rows_sum_to_one ?? true;
  return {
    kind,
    method: map.method ?? "weights",
    layer,
    head,
    causal: map.causal,
    queryAxis: map.query_axis,
    keyAxis: map.key_axis,
    rows,
    cols,
    rowTokens: rows.map((i) => queryTokens[i]),
    colTokens: cols.map((j) => keyTokens[j]),
    matrix: submatrix(full, rows, cols, distributions ? options.renormalise : options.normaliseRows),
    masked: rows.map((i) => cols.map((j) => isMasked(map.causal, i, j))),
  };
}

export function headName(head) {
  if (head === "mean") return "mean of heads";
  if (head === "max") return "max of heads";
  if (head === "rollout") return "rollout";
  if (head === "layer") return "layer map";
  return `head ${head}`;
}

export function selectionName(kind, layer, head) {
  return head === "rollout" ? `rollout, layers 0–${layer}` : `layer ${layer}, ${headName(head)}`;
}

// Which cells light up when a reader points at a token (a chip in the header or an axis label):
// rows where the token is the query, columns where it is the key. A produced token t is also
// the decoder's input at t + 1.
export function highlightFor(view, axis, index) {
  const positions = (tokenAxis) => {
    if (tokenAxis === axis) return [index];
    if (tokenAxis === "decoder_input_tokens" && axis === "target_tokens") return [index + 1];
    if (tokenAxis === "target_tokens" && axis === "decoder_input_tokens") return [index - 1];
    return [];
  };
  return {
    rows: positions(view.queryAxis).map((i) => view.rows.indexOf(i)).filter((i) => i >= 0),
    cols: positions(view.keyAxis).map((j) => view.cols.indexOf(j)).filter((j) => j >= 0),
  };
}

// The newer map minus the pinned one, where both show the same tokens on both axes; null otherwise.
export function differenceMap(pinned, current) {
  const same = (a, b) => a.length === b.length && a.every((t, i) => t.text === b[i].text);
  if (!same(pinned.rowTokens, current.rowTokens) || !same(pinned.colTokens, current.colTokens)) return null;
  return {
    ...current,
    signed: true,
    matrix: current.matrix.map((row, i) => row.map((w, j) => w - pinned.matrix[i][j])),
    masked: current.masked.map((row, i) => row.map((m, j) => m || pinned.masked[i][j])),
  };
}
