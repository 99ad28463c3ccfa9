// The query form's own checks, made before any request, and the API's field names put in the
// words of the form's labels. Pure except for reading the fields it is given.

// API field -> the form field's element key and its label.
const FIELDS = {
  source: ["source", "the sentence"],
  target: ["target", "Target"],
  beam_size: ["beam", "Beam size"],
  model: ["model", "Model"],
};

// { field, message } for the first field that cannot be sent as it is, or null.
export function checkForm(fields, info) {
  if (!fields.source.value.trim()) return { field: "source", message: `Type a sentence to translate in “${labelText(fields.source)}”.` };
  const most = info?.limits.max_beam_size ?? Number(fields.beam.max);
  const beam = fields.beam.value.trim();
  if (!/^\d+$/.test(beam) || Number(beam) < 1 || Number(beam) > most) {
    return { field: "beam_size", message: `Beam size must be a whole number from 1 to ${most} (1 is greedy decoding); it is “${beam}”.` };
  }
  return null;
}

// The form element an API field names, if the form has one.
export function fieldOf(elements, field) {
  return field in FIELDS ? elements[FIELDS[field][0]] : null;
}

// "beam_size 9 is over the limit: use 1 to 8" -> "Beam size 9 is over the limit: use 1 to 8".
export function labelled(message) {
  let text = message;
  for (const [name, [, label]] of Object.entries(FIELDS)) if (name.includes("_")) text = text.replaceAll(name, label);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function labelText(input) {
  return input.labels?.[0]?.textContent.trim() ?? input.name;
}
