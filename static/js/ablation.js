// Switching heads off: the list of heads in its one order, its URL form, the request it leaves out,
// and which target tokens changed. Pure functions: no DOM.

const KIND_ORDER = ["encoder", "decoder", "cross"];
const HEAD_PATTERN = /^(encoder|decoder|cross)\.(\d{1,4})\.(\d{1,4})$/;

// Kinds in encoder, decoder, cross order, then by layer and head; each head once. The API answers in this order.
export function sortHeads(heads) {
  const key = (h) => `${h.kind}.${h.layer}.${h.head}`;
  const unique = [...new Map(heads.map((h) => [key(h), { kind: h.kind, layer: h.layer, head: h.head }])).values()];
  return unique.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.layer - b.layer || a.head - b.head);
}

export function isOff(heads, kind, layer, head) {
  return heads.some((h) => h.kind === kind && h.layer === layer && h.head === head);
}

// The list with that head switched off, or back on where it was off.
export function toggleHead(heads, kind, layer, head) {
  return isOff(heads, kind, layer, head) ? heads.filter((h) => !(h.kind === kind && h.layer === layer && h.head === head)) : sortHeads([...heads, { kind, layer, head }]);
}

// "cross.1.2,encoder.0.3" <-> heads; entries that do not parse are left out, not guessed at.
export function parseAblation(text) {
  const heads = text.split(",").map((part) => HEAD_PATTERN.exec(part.trim())).filter(Boolean);
  return sortHeads(heads.map(([, kind, layer, head]) => ({ kind, layer: Number(layer), head: Number(head) })));
}

export function formatAblation(heads) {
  return sortHeads(heads).map((h) => `${h.kind}.${h.layer}.${h.head}`).join(",");
}

export function headLabel({ kind, layer, head }) {
  return `${kind} L${layer} H${head}`;
}

// What the unablated answer to a request is filed under: the request less its ablation.
export function baselineKey(asked) {
  const { model, source, target, beam, controls, granularity, method, saliency } = asked;
  return JSON.stringify({ model, source, target: target.trim(), beam, controls, granularity, method, saliency });
}

// Which tokens of `after` (produced with heads off) are not in `before` (every head on), matched in
// order by a longest common subsequence: { after: [{ text, changed }], before: [{ text, removed }], changed }.
export function tokenChanges(before, after) {
  const n = before.length;
  const m = after.length;
  const common = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i][j] = before[i] === after[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const kept = { before: new Array(n).fill(false), after: new Array(m).fill(false) };
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (before[i] === after[j]) {
      kept.before[i++] = true;
      kept.after[j++] = true;
    } else if (common[i + 1][j] >= common[i][j + 1]) i++;
    else j++;
  }
  return {
    before: before.map((text, i) => ({ text, removed: !kept.before[i] })),
    after: after.map((text, j) => ({ text, changed: !kept.after[j] })),
    changed: kept.after.filter((k) => !k).length,
  };
}
