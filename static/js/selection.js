// From an API response and the display options to the matrix a figure shows, with its labels.

import { isMasked, selectMatrix, submatrix } from "./matrices.js";
import { visibleIndices } from "./tokens.js";

// head: a head index, or "mean" | "max" | "rollout" (rollout exists for the encoder only).
export function displayedMap(response, options, kind, layer, head) {
  const map = response.attention[kind];
  const queryTokens = response[map.query_axis];
  const keyTokens = response[map.key_axis];
  const rows = visibleIndices(queryTokens, options.showSpecial);
  const cols = visibleIndices(keyTokens, options.showSpecial);
  const full = selectMatrix(map, layer, head);
  return {
    kind,
    layer,
    head,
    causal: map.causal,
    queryAxis: map.query_axis,
    keyAxis: map.key_axis,
    rows,
    cols,
    rowTokens: rows.map((i) => queryTokens[i]),
    colTokens: cols.map((j) => keyTokens[j]),
    matrix: submatrix(full, rows, cols, options.renormalise),
    masked: rows.map((i) => cols.map((j) => isMasked(map.causal, i, j))),
  };
}

export function headName(head) {
  if (head === "mean") return "mean of heads";
  if (head === "max") return "max of heads";
  if (head === "rollout") return "rollout";
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

// The matrix as CSV: a header of key tokens, one line per query token. Cells that spreadsheets
// would run as formulas (=, +, -, @) are prefixed with ' so an exported token stays text.
export function matrixCsv(view, digits = 6) {
  const cell = (text) => {
    const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
    return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
  };
  const header = ["query \\ key", ...view.colTokens.map((t) => t.text)].map(cell).join(",");
  const lines = view.matrix.map((row, i) =>
    [cell(view.rowTokens[i].text), ...row.map((w, j) => (view.masked[i][j] ? "" : w.toFixed(digits)))].join(","),
  );
  return [header, ...lines].join("\r\n") + "\r\n";
}
