// Per produced token, what each source token and each decoder input gave it (the API's `contributions`:
// ALTI+ composed through the layers, or saliency's gradient attributions). Pure functions: no DOM.

import { isMasked } from "./matrices.js";
import { visibleIndices } from "./tokens.js";

// Two maps sharing their rows (the produced tokens): the source part and the target-prefix part, as
// displayedMap's views are. Rows are renormalised over the shown tokens of both parts together where
// they are distributions (alti) and options.renormalise is set, and where they are not (saliency) only
// with options.normaliseRows.
export function contributionViews(response, options) {
  const { contributions } = response;
  const rows = visibleIndices(response.target_tokens, options.showSpecial);
  const parts = [
    ["source", "source_tokens", contributions.source, false],
    ["prefix", "decoder_input_tokens", contributions.prefix, true],
  ].map(([part, axis, matrix, causal]) => {
    const cols = visibleIndices(response[axis], options.showSpecial);
    return { part, axis, causal, cols, matrix: rows.map((i) => cols.map((j) => matrix[i][j])) };
  });
  const normalise = contributions.normalised ? options.renormalise : options.normaliseRows;
  const totals = rows.map((_, i) => parts.reduce((sum, p) => sum + p.matrix[i].reduce((a, b) => a + b, 0), 0));
  return parts.map(({ part, axis, causal, cols, matrix }) => ({
    kind: part === "source" ? "cross" : "decoder",
    part,
    method: contributions.method,
    layer: null,
    head: null,
    causal,
    queryAxis: "target_tokens",
    keyAxis: axis,
    rows,
    cols,
    rowTokens: rows.map((i) => response.target_tokens[i]),
    colTokens: cols.map((j) => response[axis][j]),
    matrix: normalise ? matrix.map((row, i) => row.map((w) => (totals[i] > 0 ? w / totals[i] : w))) : matrix,
    masked: rows.map((i) => cols.map((j) => isMasked(causal, i, j))),
  }));
}

// The source's share of each shown produced token: [{ token, source, prefix }], shares of the whole row.
export function sourceShares(response, options) {
  return visibleIndices(response.target_tokens, options.showSpecial).map((i) => {
    const source = response.contributions.source_share[i];
    return { token: response.target_tokens[i], source, prefix: 1 - source };
  });
}

// The figure as a table: one line per produced token, its source share, then every cell of both parts.
export function contributionsTable(views, shares, caption) {
  const [source, prefix] = views;
  return {
    caption,
    columns: ["produced \\ input", "source share", ...source.colTokens.map((t) => `source: ${t.text}`), ...prefix.colTokens.map((t) => `prefix: ${t.text}`)],
    rows: source.rowTokens.map((token, i) => [
      token.text,
      shares[i].source,
      ...source.matrix[i],
      ...prefix.matrix[i].map((w, j) => (prefix.masked[i][j] ? null : w)),
    ]),
  };
}
