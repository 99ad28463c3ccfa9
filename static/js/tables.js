// Each view's figure as data: one table per view, for the CSV export and for the data-table
// alternative a screen reader reads. Pure functions: no DOM.
//
// A table is { caption, columns: [string], rows: [[cell]] }; a cell is a string, a number (a weight
// or a statistic), null (a masked cell), or { open: [layer, head], value } (a statistics cell that
// opens its head in the head view).

import { meanEntropy } from "./matrices.js";
import { displayedMap, headName, selectionName } from "./selection.js";
import { headChoices, headCount, KIND_NAMES, layerCount } from "./state.js";

// One map as shown: a header of key tokens, one line per query token.
export function matrixTable(view, caption) {
  return {
    caption,
    columns: ["query \\ key", ...view.colTokens.map((t) => t.text)],
    rows: view.matrix.map((row, i) => [view.rowTokens[i].text, ...row.map((w, j) => (view.masked[i][j] ? null : w))]),
  };
}

// Every map of a figure of several maps, one line per cell: what the overview and the three panels draw.
export function longTable(views, caption) {
  return {
    caption,
    columns: ["kind", "layer", "head", "query position", "query", "key position", "key", "weight"],
    rows: views.flatMap((view) =>
      view.matrix.flatMap((row, i) =>
        row.map((w, j) => [view.kind, view.layer, String(view.head), view.rows[i], view.rowTokens[i].text, view.cols[j], view.colTokens[j].text, view.masked[i][j] ? null : w]),
      ),
    ),
  };
}

// The overview's maps: every head of every layer of one kind, then the layer's own map (norms, alti)
// and each layer's mean and max.
export function gridViews(response, options, kind) {
  const heads = headChoices(response, kind).filter((head) => head !== "rollout");
  return Array.from({ length: layerCount(response, kind) }, (_, layer) => heads.map((head) => displayedMap(response, options, kind, layer, head)));
}

// The overview for a screen reader: per layer and head, how focused the map is; each cell opens its head.
export function gridSummaryTable(layers, kind) {
  return {
    caption: `${KIND_NAMES[kind]}: every layer and head, as the mean entropy of each query's weights (bits; low = focused)`,
    columns: ["layer", ...layers[0].map((view) => headName(view.head))],
    rows: layers.map((views, layer) => [`layer ${layer}`, ...views.map((view) => ({ open: [layer, view.head], value: meanEntropy(view.matrix) }))]),
  };
}

export function statisticsTable({ entropy, distance }, kind) {
  return {
    caption: `${KIND_NAMES[kind]}: entropy (bits) and mean distance (tokens) of each head`,
    columns: ["layer", "head", "entropy (bits)", "distance (tokens)"],
    rows: entropy.flatMap((heads, layer) =>
      heads.map((value, head) => [layer, head, { open: [layer, head], value }, { open: [layer, head], value: distance[layer][head] }]),
    ),
  };
}

// The decoding-steps view: the cross-attention row of one produced token.
export function stepTable(view, row) {
  const produced = view.rowTokens[row].text;
  return {
    caption: `Cross-attention at step ${row + 1} (producing ${produced}), ${selectionName("cross", view.layer, view.head)}`,
    columns: ["step", "produced", "source token", "weight"],
    rows: view.colTokens.map((token, j) => [row + 1, produced, token.text, view.matrix[row][j]]),
  };
}

// The table as CSV. Cells that spreadsheets would run as formulas (=, +, -, @) are prefixed with ' so
// an exported token stays text; masked cells are empty.
export function tableCsv(table, digits = 6) {
  const text = (cell) => {
    const value = cell !== null && typeof cell === "object" ? cell.value : cell;
    if (value === null) return "";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits);
    const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
    return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
  };
  return [table.columns, ...table.rows].map((line) => line.map(text).join(",")).join("\r\n") + "\r\n";
}
