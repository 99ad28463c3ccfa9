// Comparing the result on screen with a pinned one, in every view. Pure functions: no DOM.
// Two maps are subtracted only where their axes are the same token lists; elsewhere the pinned
// result is shown beside the current one, and the reason there is no difference is said.

import { differenceMap, displayedMap } from "./selection.js";
import { headChoices, layerCount } from "./state.js";

// The pinned result's counterpart of (kind, layer, head): the layer clamped to its depth, a head it
// lacks replaced by the mean; null where it has no such kind (a model without a decoder map, say).
export function pinnedSelection(response, kind, layer, head) {
  if (!(kind in response.attention)) return null;
  return {
    layer: Math.min(layer, layerCount(response, kind) - 1),
    head: headChoices(response, kind).includes(head) ? head : fallbackHead(headChoices(response, kind)),
  };
}

function fallbackHead(choices) {
  return choices.includes("mean") ? "mean" : choices[0];
}

// The pinned map matching `current` (a displayedMap), or null where the pinned result has no such kind.
export function pinnedMap(pinnedResponse, options, current) {
  const selection = pinnedSelection(pinnedResponse, current.kind, current.layer, current.head);
  return selection && displayedMap(pinnedResponse, options, current.kind, selection.layer, selection.head);
}

// Map by map, the current minus the pinned, for figures of several maps (the overview's layers × heads,
// the three panels): all of them, or null when any pair's tokens (or the number of maps) differ, so
// that one figure never mixes differences with weights.
export function differences(currentMaps, pinnedMaps) {
  if (currentMaps.length !== pinnedMaps.length) return null;
  const maps = currentMaps.map((view, k) => (pinnedMaps[k].kind === view.kind ? differenceMap(pinnedMaps[k], view) : null));
  return maps.every(Boolean) ? maps : null;
}

// The overview's layers ([layer][map], tables.gridViews) as differences, or null.
export function gridDifferences(currentLayers, pinnedLayers) {
  if (currentLayers.length !== pinnedLayers.length) return null;
  const layers = currentLayers.map((maps, l) => differences(maps, pinnedLayers[l]));
  return layers.every(Boolean) ? layers : null;
}

// Why two results' maps of one kind cannot be subtracted, in the reader's words ("" where they can).
export function whyNoDifference(current, pinned) {
  const same = (a, b) => a.length === b.length && a.every((t, i) => t.text === b[i].text);
  if (!same(current.colTokens, pinned.colTokens) && !same(current.rowTokens, pinned.rowTokens)) return "both token lists differ";
  if (!same(current.colTokens, pinned.colTokens)) return `its ${AXIS_WORDS[current.keyAxis]} differ`;
  if (!same(current.rowTokens, pinned.rowTokens)) return `its ${AXIS_WORDS[current.queryAxis]} differ`;
  return "";
}

const AXIS_WORDS = { source_tokens: "source tokens", target_tokens: "produced tokens", decoder_input_tokens: "decoder inputs" };

// Each head's move in (entropy, distance) from the pinned result to the current one, for the heads
// both results have: [{ layer, head, pinned: { entropy, distance }, current: { entropy, distance } }].
export function statisticsShift(current, pinned) {
  const shift = [];
  current.entropy.forEach((heads, layer) =>
    heads.forEach((entropy, head) => {
      const before = pinned.entropy[layer]?.[head];
      if (before === undefined) return;
      shift.push({
        layer,
        head,
        pinned: { entropy: before, distance: pinned.distance[layer][head] },
        current: { entropy, distance: current.distance[layer][head] },
      });
    }),
  );
  return shift;
}

// The pinned weights of the same decoding step (row `row` of the current cross map), where both
// results produced the same tokens from the same source tokens: { weights } or { reason }.
export function pinnedStep(current, pinned, row) {
  const reason = whyNoDifference(current, pinned);
  return reason ? { reason } : { weights: pinned.matrix[row] };
}

// Several tables of the same columns as one, with a first column naming the result each line is of.
export function comparisonTable(caption, parts) {
  return {
    caption,
    columns: ["result", ...parts[0].table.columns],
    rows: parts.flatMap(({ name, table }) => table.rows.map((row) => [name, ...row])),
  };
}
