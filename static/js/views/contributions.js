// The contributions view: per produced token, its source part and its target-prefix part side by side on
// one colour scale, and under them a strip of each token's source share (method alti or saliency).

import { plainName } from "../tokens.js";
import { drawLabelledPanels } from "./panels.js";

export function contributionsTitle(response) {
  const how = response.contributions.normalised ? "shares of each row, which sums to 1" : "L2 norms of the attributions, rows not normalised";
  return `What each produced token got from the source and from the target prefix · ${response.method} (${how})`;
}

export function drawContributions(elements, views, shares, options, title) {
  const labels = [
    ["Source tokens", "columns: the source"],
    ["Target prefix", "columns: the decoder inputs (<s>, then the earlier produced tokens)"],
  ];
  drawShares(elements.shares, shares);
  return drawLabelledPanels(elements.figure, views, labels, options, title);
}

// One line per produced token: its name, a meter of the source share, and both shares in words.
function drawShares(element, shares) {
  const rows = shares.map(({ token, source, prefix }) => {
    const row = document.createElement("div");
    row.className = "share-row";
    row.setAttribute("role", "listitem");
    const name = document.createElement("span");
    name.className = "share-token";
    name.textContent = plainName(token);
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = source;
    meter.setAttribute("aria-label", `${plainName(token)}: source share`);
    const words = document.createElement("span");
    words.className = "share-words";
    words.textContent = `source ${source.toFixed(2)} · prefix ${prefix.toFixed(2)}`;
    row.append(name, meter, words);
    return row;
  });
  element.replaceChildren(...rows);
}
