// The page's one state object, its defaults, and its round trip through the URL.

import { formatAblation, parseAblation } from "./ablation.js";
import { DEFAULT_SCALE, SCALES } from "./colors.js";
import { CORPUS_METRICS } from "./corpus.js";

export const KINDS = ["encoder", "decoder", "cross"];
export const KIND_NAMES = { encoder: "Encoder self-attention", decoder: "Decoder masked self-attention", cross: "Cross-attention" };
export const VIEWS = ["head", "grid", "panels", "stats", "steps", "models"];
export const AGGREGATES = ["mean", "max", "rollout"];

export function initialState() {
  return {
    // what was asked
    source: "",
    target: "",
    model: "",
    beam: 1,
    controls: {}, // control name -> value, only where it differs from the model's default
    granularity: "token",
    ablate: [], // heads switched off, { kind, layer, head } in ablation.js's order
    // what is shown
    kind: "cross",
    layer: null, // null: the model's alignment layer (ModelInfo.alignment_layer) for cross-attention, else the last
    head: "mean", // a head index, or one of AGGREGATES
    view: "head",
    step: 0,
    showSpecial: false,
    // Hidden <s> and </s> leave rows that no longer sum to 1: by default they are renormalised, and the legend says so.
    renormalise: true,
    showReadings: true,
    scale: DEFAULT_SCALE,
    pinQuery: "", // the URL query of the pinned result's request, so a shared link restores the comparison
    otherModel: "", // the model the compare view sets beside this one ("": the first other one)
    corpusMetric: CORPUS_METRICS[0], // what the corpus view's per-head heatmap shows
    // what came back
    models: [],
    response: null,
    answeredSource: "", // the source the response is for
    // a result kept for comparison: { response, query } (query: the URL query that reproduces it)
    pinned: null,
    // the other model's answer for the compare view: { key, response } (key: what it was asked, agreement.otherRequest)
    other: null,
    // with heads switched off, the answer to the same request with every head on: { key, response } (key: ablation.baselineKey)
    baseline: null,
    // the model's corpus head table (GET /api/v1/models/{name}/heads): { model, table } (table null where it has none)
    corpus: null,
    loading: false,
    error: "",
  };
}

// URL parameter -> [state key, parse]; a value that does not parse is ignored, not guessed at.
const PARAMETERS = {
  s: ["source", (v) => v],
  t: ["target", (v) => v],
  model: ["model", (v) => v],
  beam: ["beam", positiveInteger],
  units: ["granularity", (v) => (v === "token" || v === "word" ? v : undefined)],
  kind: ["kind", (v) => (KINDS.includes(v) ? v : undefined)],
  layer: ["layer", nonNegativeInteger],
  head: ["head", (v) => (AGGREGATES.includes(v) ? v : nonNegativeInteger(v))],
  view: ["view", (v) => (VIEWS.includes(v) ? v : undefined)],
  step: ["step", nonNegativeInteger],
  special: ["showSpecial", flag],
  renorm: ["renormalise", flag],
  readings: ["showReadings", flag],
  scale: ["scale", (v) => (v in SCALES ? v : undefined)],
  pin: ["pinQuery", (v) => v],
  vs: ["otherModel", (v) => v],
  metric: ["corpusMetric", (v) => (CORPUS_METRICS.includes(v) ? v : undefined)],
};

// Controls travel as c.NAME=value; which names and values are valid is the model's to say (the API checks).
const CONTROL_PREFIX = "c.";

// Switched-off heads travel as off=cross.1.2,encoder.0.3 (ablation.js); which heads exist is the model's to say.
const ABLATE_PARAMETER = "off";

// The parameters that say what was asked (as opposed to what is shown).
const REQUEST_PARAMETERS = ["s", "t", "model", "beam", "units", ABLATE_PARAMETER];

export function stateFromQuery(search) {
  const params = new URLSearchParams(search);
  const found = {};
  for (const [name, [key, parse]] of Object.entries(PARAMETERS)) {
    if (!params.has(name)) continue;
    const value = parse(params.get(name));
    if (value !== undefined) found[key] = value;
  }
  const controls = [...params].filter(([name]) => name.startsWith(CONTROL_PREFIX));
  if (controls.length) found.controls = Object.fromEntries(controls.map(([name, value]) => [name.slice(CONTROL_PREFIX.length), value]));
  if (params.has(ABLATE_PARAMETER)) found.ablate = parseAblation(params.get(ABLATE_PARAMETER));
  return found;
}

// Only what differs from the defaults, so a shared link stays short.
export function queryFromState(state) {
  const defaults = initialState();
  const params = new URLSearchParams();
  for (const [name, [key]] of Object.entries(PARAMETERS)) {
    const value = state[key];
    if (value === defaults[key] || value === "" || value === null) continue;
    params.set(name, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
  }
  for (const [name, value] of Object.entries(state.controls)) params.set(`${CONTROL_PREFIX}${name}`, value);
  if (state.ablate.length) params.set(ABLATE_PARAMETER, formatAblation(state.ablate));
  return params.toString();
}

// The URL query that asks for the same result as `state` (a pinned result's).
export function requestQuery(state) {
  const params = new URLSearchParams(queryFromState(state));
  for (const name of [...params.keys()]) if (!REQUEST_PARAMETERS.includes(name) && !name.startsWith(CONTROL_PREFIX)) params.delete(name);
  return params.toString();
}

// The kind the current view shows: decoding steps and the model comparison always follow cross-attention.
export function shownKind(state) {
  return state.view === "steps" || state.view === "models" ? "cross" : state.kind;
}

// Why a view does not apply to a model (its description's `kinds`), or "" where it does; `others`:
// how many other models it could be compared with.
export function whyNoView(view, info, others) {
  const missing = KINDS.filter((kind) => !(kind in info.kinds));
  if (view === "panels" && missing.length) return `The three panels need every kind of attention; ${info.name} has no ${missing.map((k) => KIND_NAMES[k].toLowerCase()).join(" or ")}.`;
  if (view === "models" && !("cross" in info.kinds)) return `Comparing models needs cross-attention, which ${info.name} does not have.`;
  if (view === "models" && others === 0) return "Comparing models needs a second model with cross-attention; this server serves one.";
  return "";
}

export function layerCount(response, kind) {
  return response.attention[kind].weights.length;
}

export function headCount(response, kind) {
  return response.attention[kind].weights[0].length;
}

// What the head selector offers for a kind: its heads, then the aggregates (rollout is an encoder notion).
export function headChoices(response, kind) {
  const heads = Array.from({ length: headCount(response, kind) }, (_, h) => h);
  return [...heads, ...AGGREGATES.filter((a) => a !== "rollout" || kind === "encoder")];
}

// The choice `delta` steps from `head` among headChoices, wrapping round: arrows reach mean, max and
// rollout too, unless `headsOnly` (the statistics, which are per head).
export function stepHead(response, kind, head, delta, headsOnly = false) {
  const choices = headChoices(response, kind).filter((h) => !headsOnly || typeof h === "number");
  const at = Math.max(0, choices.indexOf(head));
  return choices[(at + delta + choices.length) % choices.length];
}

// The layer to open first: for cross-attention the one the model says aligns best, else the last.
export function firstLayer(response, kind, info) {
  const last = layerCount(response, kind) - 1;
  return kind === "cross" && info?.alignment_layer ? Math.min(info.alignment_layer.layer, last) : last;
}

// Bring the selection inside what the response holds (a shared link may name a layer a smaller model
// lacks, or a view it has no attention for); `others`: how many models it could be compared with.
export function clampSelection(state, info, others) {
  const response = state.response;
  if (!response) return;
  if (info && whyNoView(state.view, info, others)) state.view = "head";
  if (!(state.kind in response.attention)) state.kind = Object.keys(response.attention)[0];
  const kind = shownKind(state);
  state.layer = state.layer === null ? firstLayer(response, kind, info) : Math.min(state.layer, layerCount(response, kind) - 1);
  if (state.head === "rollout" && kind !== "encoder") state.head = "mean";
  if (typeof state.head === "number") state.head = Math.min(state.head, headCount(response, kind) - 1);
  state.step = Math.min(state.step, response.target_tokens.length - 1);
}

function positiveInteger(value) {
  const n = nonNegativeInteger(value);
  return n > 0 ? n : undefined;
}

function nonNegativeInteger(value) {
  return /^\d{1,4}$/.test(value) ? Number(value) : undefined;
}

function flag(value) {
  return value === "1" ? true : value === "0" ? false : undefined;
}
