// The corpus head table (GET /api/v1/models/{name}/heads, written by `attnscope heads`) as the corpus
// view draws it: one kind's per-head grid of a figure, its table, the pruning curve. Pure functions: no DOM.

export const CORPUS_METRICS = ["bleu_drop", "importance", "confidence", "entropy", "distance"];
export const METRIC_NAMES = {
  bleu_drop: "BLEU drop with the head off",
  importance: "gradient importance (Michel et al. 2019)",
  confidence: "confidence (Voita et al. 2019)",
  entropy: "entropy (bits)",
  distance: "distance (tokens)",
};
// A head "hardly matters" alone when switching it off moves BLEU by less than this.
export const SMALL_DROP = 0.5;

function rowsOf(table, kind) {
  return table.heads.filter((row) => row.kind === kind);
}

// { z: [layer][head] (null where not measured), layers, heads } for one kind, or null where the table lacks it.
export function corpusGrid(table, kind, metric) {
  const shape = table.kinds[kind];
  if (!shape) return null;
  const z = Array.from({ length: shape.layers }, () => new Array(shape.heads).fill(null));
  for (const row of rowsOf(table, kind)) z[row.layer][row.head] = row[metric];
  return { z, layers: [...Array(shape.layers).keys()], heads: [...Array(shape.heads).keys()] };
}

// The table under the figure (views/table.js): one line per head of the kind, its figures opening the head.
export function corpusTable(table, kind) {
  const open = (row, value) => (value === null ? "not measured" : { open: [row.layer, row.head], value });
  return {
    caption: `${kind} heads over ${table.data.corpus} ${table.data.split} (${table.data.sentences} sentences): BLEU ${table.bleu.toFixed(2)} with every head on`,
    columns: ["layer", "head", "BLEU with it off", "BLEU drop", "importance", "confidence", "entropy (bits)", "distance (tokens)", ...(kind === "cross" ? ["AER"] : [])],
    rows: rowsOf(table, kind).map((row) => [
      row.layer,
      row.head,
      open(row, row.bleu),
      open(row, row.bleu_drop),
      open(row, row.importance),
      open(row, row.confidence),
      open(row, row.entropy),
      open(row, row.distance),
      ...(kind === "cross" ? [row.aer === null ? "no gold alignments" : open(row, row.aer)] : []),
    ]),
  };
}

// One sentence on the whole table: the full model's BLEU, how many heads hardly matter alone, the one that matters most.
export function corpusSummary(table) {
  const where = `${table.data.corpus} ${table.data.split}, ${table.data.sentences} sentences, ${table.decoding}`;
  const rated = table.heads.filter((row) => row.bleu_drop !== null);
  if (!rated.length) return `BLEU ${table.bleu.toFixed(2)} (${where}); this model cannot switch heads off, so only the attention figures were measured.`;
  const small = rated.filter((row) => Math.abs(row.bleu_drop) < SMALL_DROP).length;
  const worst = rated.reduce((a, b) => (b.bleu_drop > a.bleu_drop ? b : a));
  return `BLEU ${table.bleu.toFixed(2)} with every head on (${where}). ${small} of ${rated.length} heads alone move it by less than ${SMALL_DROP}; switching off ${worst.kind} layer ${worst.layer}, head ${worst.head} costs the most (${worst.bleu_drop.toFixed(2)}).`;
}

// The pruning curve: BLEU after each removal, with the head removed; null where it was not measured.
export function pruningSeries(table) {
  if (!table.pruning) return null;
  const steps = table.pruning.steps;
  return {
    x: steps.map((step) => step.removed),
    y: steps.map((step) => step.bleu),
    text: steps.map((step) => (step.head ? `${step.removed} removed, the last ${step.head.kind} layer ${step.head.layer}, head ${step.head.head}: BLEU ${step.bleu.toFixed(2)}` : `every head on: BLEU ${step.bleu.toFixed(2)}`)),
  };
}

// The figures the table has numbers for (a model that cannot switch heads off has no BLEU drop or importance).
export function measuredMetrics(table) {
  return CORPUS_METRICS.filter((metric) => table.heads.some((row) => row[metric] !== null));
}

// The pruning curve in words, for a screen reader: BLEU at the start, after each quarter of the heads, at the end.
export function pruningSentence(table) {
  const steps = table.pruning.steps;
  const last = steps.length - 1;
  const marks = [...new Set([0, Math.round(last / 4), Math.round(last / 2), Math.round((3 * last) / 4), last])];
  return `BLEU as heads are switched off one by one, least important first: ${marks.map((k) => `${steps[k].bleu.toFixed(1)} with ${k} off`).join(", ")}.`;
}
