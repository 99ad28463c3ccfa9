// What the page says about the chosen model, all from its description (GET /api/v1/models): the
// header line, the form's language labels, placeholders and examples, its decoding controls and
// whether word units apply. DOM built with textContent only.

import { KINDS } from "../state.js";

export function modelLine(info) {
  const kinds = KINDS.filter((kind) => kind in info.kinds).map((kind) => `${kind} ${info.kinds[kind].layers}×${info.kinds[kind].heads}`).join(", ");
  const parameters = `${(info.parameters / 1e6).toFixed(1)} M parameters`;
  const bleu = info.test_bleu ? Object.entries(info.test_bleu).map(([how, score]) => `${how} ${score.toFixed(1)}`).join(", ") : "";
  return [info.name, `layers × heads: ${kinds}`, parameters, bleu && `test BLEU ${bleu}`].filter(Boolean).join(" · ");
}

// Languages, placeholders and examples. `onExample(text)` runs when an example is picked.
export function describeLanguages(elements, info, onExample) {
  const source = info.source_language;
  const target = info.target_language;
  elements.tagline.textContent = `What ${info.name} attends to when it translates ${source.name} into ${target.name}`;
  elements.sourceLabel.textContent = `${source.name} sentence`;
  elements.source.lang = source.code;
  elements.source.placeholder = info.examples[0] ?? "";
  for (const element of elements.targetText) element.lang = target.code;
  elements.target.placeholder = info.target_example ?? "";
  elements.sourceTokens.lang = source.code;
  const buttons = info.examples.map((text) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.lang = source.code;
    button.textContent = text;
    button.addEventListener("click", () => onExample(text));
    return button;
  });
  elements.examples.replaceChildren(elements.examples.firstElementChild, ...buttons);
  elements.examples.hidden = buttons.length === 0;
}

// One labelled select per control the model declares; `chosen` holds the reader's non-default values.
export function drawControls(element, info, chosen, onChange) {
  const fields = info.controls.map((control) => {
    const field = document.createElement("div");
    field.className = "field field-control";
    const label = document.createElement("label");
    const id = `control-${control.name}`;
    label.htmlFor = id;
    label.textContent = control.label;
    const select = document.createElement("select");
    select.id = id;
    select.name = control.name;
    select.title = control.help;
    select.dataset.control = control.name;
    for (const value of control.values) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = control.value_labels[value] ?? value;
      select.append(option);
    }
    select.value = control.values.includes(chosen[control.name]) ? chosen[control.name] : control.default;
    select.addEventListener("change", () => onChange(control, select.value));
    field.append(label, select);
    return field;
  });
  element.replaceChildren(...fields);
}

// Only what differs from each control's default, and only controls this model has.
export function chosenControls(info, chosen) {
  return Object.fromEntries(
    info.controls.filter((c) => c.name in chosen && chosen[c.name] !== c.default && c.values.includes(chosen[c.name])).map((c) => [c.name, chosen[c.name]]),
  );
}

// The methods the model computes (ModelInfo.methods), and for saliency its algorithms; the chosen ones where
// the model has them, else weights and the first algorithm. Returns { method, saliency } as selected.
export function describeMethods(elements, info, method, saliency) {
  const option = (value, text) => {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    return element;
  };
  elements.method.replaceChildren(...info.methods.map((m) => option(m.name, m.label)));
  elements.method.value = info.methods.some((m) => m.name === method) ? method : "weights";
  const algorithms = info.methods.find((m) => m.name === "saliency")?.saliency_algorithms ?? [];
  elements.saliency.replaceChildren(...algorithms.map((name) => option(name, name.replaceAll("_", " "))));
  elements.saliency.value = algorithms.includes(saliency) ? saliency : (algorithms[0] ?? "");
  elements.saliencyField.hidden = elements.method.value !== "saliency";
  const one = info.methods.length === 1;
  elements.method.disabled = one;
  elements.why.textContent = one ? "This model offers attention weights only." : "";
  elements.why.hidden = !one;
  return { method: elements.method.value, saliency: elements.saliency.value };
}

// Word units merge subword pieces; a word-level model has nothing to merge, and the page says so.
export function describeGranularity(select, why, info, granularity) {
  const words = info.granularities.includes("word");
  select.disabled = !words;
  select.value = words ? granularity : "token";
  why.textContent = words ? "" : "Word-level model: nothing to merge.";
  why.hidden = words;
}
