// The line view's maths: a cross map as weighted links between source and target tokens, the way
// tensor2tensor's and BertViz's attention views draw them. Pure functions: no DOM.

// Below this share of its row a link is too faint to see, and is not drawn.
export const MIN_SHARE = 0.02;

// Each shown cell as a link with its share of the row over the source tokens shown, so that a method whose rows
// are not normalised (norms) draws on the same scale; `argmax` marks each target token's strongest link (the
// alignment an argmax reading takes, the first on a tie). Negative values count as none.
export function lineLinks(view) {
  return view.matrix.flatMap((row, i) => {
    const kept = row.map((w) => (Number.isFinite(w) && w > 0 ? w : 0));
    const total = kept.reduce((a, w) => a + w, 0);
    if (total <= 0) return [];
    const best = kept.reduce((b, w, j) => (w > kept[b] ? j : b), 0);
    return kept.map((w, j) => ({ row: i, col: j, share: w / total, argmax: j === best })).filter((link) => link.share >= MIN_SHARE || link.argmax);
  });
}

// Line width in px for a share: proportional to it, at most `widest`, and a hairline for the faintest.
export function lineWidth(share, widest = 8) {
  return Math.max(0.75, share * widest);
}

// Which links light up when a reader points at a token: those of that source column or target row.
export function linksOf(links, axis, index) {
  if (axis === "source") return links.filter((link) => link.col === index);
  if (axis === "target") return links.filter((link) => link.row === index);
  return [];
}

// "Best alignment: layer 1, mean of heads, AER 0.412 against gold; …": what the model card measured for a method, or "".
export function bestAlignmentNote(alignmentLayer, method = "weights") {
  const best = alignmentLayer?.by_method?.[method];
  if (!best) return alignmentLayer?.measured ? `Best alignment layer: ${alignmentLayer.layer} (${alignmentLayer.note}).` : "";
  const head = best.head === "mean" ? "mean of heads" : best.head === "layer" ? "the layer's map" : best.head === "contributions" ? "contributions" : `head ${best.head}`;
  const where = best.layer === null ? head : `layer ${best.layer}, ${head}`;
  const mean = best.mean_layer === null ? "" : `; best layer mean: layer ${best.mean_layer} (AER ${best.mean_aer.toFixed(3)})`;
  return `Best alignment of ${method} in the model card: ${where}, AER ${best.aer.toFixed(3)} against the ${best.reference} alignments${mean}.`;
}
