// The result header: translation, badges, both token lists, unknown words and warnings. DOM built with textContent only.

// `info`: the model's description (control labels); `asked`: the control values the reader chose.
export function drawHeader(elements, response, beam, info, asked) {
  elements.translation.textContent = response.translation || "(empty translation)";
  elements.mode.textContent = response.forced ? "forced target" : beam > 1 ? `beam search (${beam})` : "greedy decoding";
  elements.mode.classList.toggle("forced", response.forced);
  elements.score.textContent = `log-probability ${response.score.toFixed(2)}`;
  for (const badge of elements.badges.querySelectorAll(".control-badge")) badge.remove();
  for (const control of info?.controls ?? []) {
    if (!(control.name in response.controls)) continue;
    const badge = document.createElement("span");
    badge.className = "badge subtle control-badge";
    badge.textContent = controlBadge(control, response, asked);
    elements.badges.append(" ", badge);
  }
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
  elements.warnings.replaceChildren(
    ...response.warnings.map((warning) => {
      const item = document.createElement("li");
      item.dataset.code = warning.code;
      item.textContent = warning.message;
      return item;
    }),
  );
  elements.warnings.hidden = response.warnings.length === 0;
}

// "Label: Value label (predicted value 62%)"; where the value came from elsewhere the
// prediction is still worth seeing.
function controlBadge(control, response, asked) {
  const value = response.controls[control.name];
  const label = control.value_labels[value] ?? value;
  const probabilities = response.predictions[control.name];
  if (!probabilities || Object.keys(probabilities).length === 0) return `${control.label}: ${label}`;
  const [predicted, p] = Object.entries(probabilities).reduce((best, entry) => (entry[1] > best[1] ? entry : best));
  const origin = control.name in asked ? "asked; " : response.forced ? "the target's; " : "";
  return `${control.label}: ${label} (${origin}predicted ${predicted} ${Math.round(p * 100)}%)`;
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
