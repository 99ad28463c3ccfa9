// The result header: translation and both token lists. DOM built with textContent only.

export function drawHeader(elements, response, beam, askedPoliteness) {
  elements.translation.textContent = response.translation || "(empty translation)";
  elements.mode.textContent = response.forced ? "forced target" : beam > 1 ? `beam search (${beam})` : "greedy decoding";
  elements.mode.classList.toggle("forced", response.forced);
  elements.score.textContent = `log-probability ${response.score.toFixed(2)}`;
  elements.politeness.hidden = response.politeness === null;
  elements.politeness.textContent = response.politeness === null ? "" : politenessBadge(response, askedPoliteness);
  elements.sourceTokens.replaceChildren(...response.source_tokens.map((token, i) => chip(token, "source_tokens", i)));
  elements.targetTokens.replaceChildren(...response.target_tokens.map((token, i) => chip(token, "target_tokens", i)));
  const unknown = (tokens) => tokens.filter((t) => t.unknown && t.text !== "<unk>").map((t) => t.text);
  const lists = [
    ["source", unknown(response.source_tokens)],
    ["target", response.forced ? unknown(response.target_tokens) : []],
  ].filter(([, words]) => words.length);
  elements.unknownNote.hidden = lists.length === 0;
  elements.unknownNote.textContent = lists.length
    ? `Unknown to the model (it reads them as <unk>): ${lists.map(([side, words]) => `${side} ${words.join(", ")}`).join("; ")}`
    : "";
}

// "polite (predicted polite 62%)"; where the level came from elsewhere the prediction is still worth seeing.
function politenessBadge({ politeness, politeness_probabilities: probabilities, forced }, asked) {
  const [predicted, p] = Object.entries(probabilities).reduce((best, entry) => (entry[1] > best[1] ? entry : best));
  const prediction = `predicted ${predicted} ${Math.round(p * 100)}%`;
  const origin = asked !== "auto" ? "asked; " : forced ? "the target's; " : "";
  return `${politeness} (${origin}${prediction})`;
}

// A token chip; a target token carries its reading as ruby text, like 例 with "rei" above it.
function chip(token, axis, index) {
  const element = document.createElement("span");
  element.className = ["token", token.special ? "special" : "", token.unknown ? "unknown" : ""].filter(Boolean).join(" ");
  element.dataset.axis = axis;
  element.dataset.index = String(index);
  element.tabIndex = 0;
  if (token.unknown) element.title = "not in the model's vocabulary: the model sees <unk>";
  if (token.reading) {
    const ruby = document.createElement("ruby");
    const reading = document.createElement("rt");
    reading.textContent = token.reading;
    ruby.append(document.createTextNode(token.text), reading);
    element.append(ruby);
  } else {
    element.textContent = token.text;
  }
  return element;
}
