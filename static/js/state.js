// The page's one state object, its defaults, and its round trip through the URL.

import { DEFAULT_SCALE, SCALES } from "./colors.js";

export const KINDS = ["encoder", "decoder", "cross"];
export const KIND_NAMES = { encoder: "Encoder self-attention", decoder: "Decoder masked self-attention", cross: "Cross-attention" };
export const VIEWS = ["head", "grid", "panels", "stats", "steps", "explain", "models", "contributions", "lines"];
// The views that draw per-layer maps (method saliency has none).
const MAP_VIEWS = ["head", "grid", "panels", "stats", "steps", "models", "explain"];
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
    method: "weights", // one of the model's methods (ModelInfo.methods)
    saliency: "", // method saliency's algorithm ("": the model's default, the first it lists)
    // what is shown
    kind: "cross",
    layer: null, // null: the model's alignment layer (ModelInfo.alignment_layer) for cross-attention, else the last
    head: "mean", // a head index, or one of AGGREGATES
    view: "head",
    step: 0,
    query: 0, // the row "How it's computed" explains: a position on the kind's query axis, special tokens included
    showSpecial: false,
    // Hidden <s> and </s> leave rows that no longer sum to 1: by default they are renormalised, and the legend says so.
    renormalise: true,
    // Maps whose rows are not distributions (method norms, saliency's contributions) are shown raw unless this is set.
    normaliseRows: false,
    showReadings: true,
    scale: DEFAULT_SCALE,
    pinQuery: "", // the URL query of the pinned result's request, so a shared link restores the comparison
    otherModel: "", // the model the compare view sets beside this one ("": the first other one)
    // what came back
    models: [],
    response: null,
    answeredSource: "", // the source the response is for
    asked: null, // what the response was asked with: { model, source, target, beam, controls }
    // the explanation the "How it's computed" view shows: { key, response } (key: its request, learn/explain.js)
    explanation: null,
    // a result kept for comparison: { response, query } (query: the URL query that reproduces it)
    pinned: null,
    // the other model's answer for the compare view: { key, response } (key: what it was asked, agreement.otherRequest)
    other: null,
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
  // which methods and algorithms exist is the model's to say (the API checks); these only keep the URL tidy
  method: ["method", name],
  grad: ["saliency", name],
  kind: ["kind", (v) => (KINDS.includes(v) ? v : undefined)],
  layer: ["layer", nonNegativeInteger],
  head: ["head", (v) => (AGGREGATES.includes(v) ? v : nonNegativeInteger(v))],
  view: ["view", (v) => (VIEWS.includes(v) ? v : undefined)],
  step: ["step", nonNegativeInteger],
  q: ["query", nonNegativeInteger],
  special: ["showSpecial", flag],
  renorm: ["renormalise", flag],
  rows: ["normaliseRows", flag],
  readings: ["showReadings", flag],
  scale: ["scale", (v) => (v in SCALES ? v : undefined)],
  pin: ["pinQuery", (v) => v],
  vs: ["otherModel", (v) => v],
};

// Controls travel as c.NAME=value; which names and values are valid is the model's to say (the API checks).
const CONTROL_PREFIX = "c.";

// The parameters that say what was asked (as opposed to what is shown).
const REQUEST_PARAMETERS = ["s", "t", "model", "beam", "units", "method", "grad"];

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
  return params.toString();
}

// The URL query that asks for the same result as `state` (a pinned result's).
export function requestQuery(state) {
  const params = new URLSearchParams(queryFromState(state));
  for (const name of [...params.keys()]) if (!REQUEST_PARAMETERS.includes(name) && !name.startsWith(CONTROL_PREFIX)) params.delete(name);
  return params.toString();
}

// The kind the current view shows: decoding steps, the model comparison and the line view always follow cross-attention.
export function shownKind(state) {
  return state.view === "steps" || state.view === "models" || state.view === "lines" ? "cross" : state.kind;
}

// Why a view does not apply to a model (its description's `kinds`) or to the result on screen (its
// method's maps), or "" where it does; `others`: how many other models it could be compared with.
export function whyNoView(view, info, others, response = null) {
  const why = response ? whyNotForResult(view, response) : "";
  if (why || !info) return why;
  const missing = KINDS.filter((kind) => !(kind in info.kinds));
  if (view === "panels" && missing.length) return `The three panels need every kind of attention; ${info.name} has no ${missing.map((k) => KIND_NAMES[k].toLowerCase()).join(" or ")}.`;
  if (view === "models" && !("cross" in info.kinds)) return `Comparing models needs cross-attention, which ${info.name} does not have.`;
  if (view === "lines" && !("cross" in info.kinds)) return `The line view draws cross-attention, which ${info.name} does not have.`;
  if (view === "models" && others === 0) return "Comparing models needs a second model with cross-attention; this server serves one.";
  if (view === "explain" && !info.explains) return `${info.name} does not show how its attention is computed step by step (its description says explains: false); the Learn page works the steps through by hand.`;
  return "";
}

function whyNotForResult(view, response) {
  const method = response.method ?? "weights";
  const maps = Object.values(response.attention);
  if (MAP_VIEWS.includes(view) && maps.length === 0) return `Method ${method} attributes each produced token to the input tokens as a whole: it has no per-layer maps. See Contributions.`;
  if (view === "stats" && maps.every((map) => map.heads.length === 0)) return `Head statistics need heads; method ${method} gives one map per layer.`;
  if (view === "models" && method !== "weights") return `Comparing models uses attention weights; this result shows method ${method}.`;
  if (view === "explain" && method !== "weights") return `How it's computed works through the softmax weights of one head; this result shows method ${method}.`;
  if (view === "contributions" && !response.contributions) return `Contributions per produced token come with methods alti and saliency; this result shows method ${method}.`;
  return "";
}

export function layerCount(response, kind) {
  return response.attention[kind].weights.length;
}

export function headCount(response, kind) {
  return response.attention[kind].heads.length;
}

// What the head selector offers for a kind: its heads; "layer", the layer's own map where the method
// has one (norms, alti); then the aggregates of heads (rollout is an encoder notion, over weights).
// `headsOnly` for the views that are per head.
export function headChoices(response, kind, headsOnly = false) {
  const map = response.attention[kind];
  const heads = Array.from({ length: headCount(response, kind) }, (_, h) => h);
  if (headsOnly) return heads;
  const layer = map.layer_weights ? ["layer"] : [];
  const rollout = kind === "encoder" && (map.method ?? "weights") === "weights";
  return [...heads, ...layer, ...(heads.length ? AGGREGATES.filter((a) => a !== "rollout" || rollout) : [])];
}

// The choice `delta` steps from `head` among headChoices, wrapping round: arrows reach mean, max and
// rollout too, unless `headsOnly` (the statistics, which are per head).
export function stepHead(response, kind, head, delta, headsOnly = false) {
  const choices = headChoices(response, kind, headsOnly);
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
  if (whyNoView(state.view, info, others, response)) state.view = VIEWS.find((view) => !whyNoView(view, info, others, response)) ?? "head";
  state.step = Math.min(state.step, response.target_tokens.length - 1);
  if (Object.keys(response.attention).length === 0) return; // saliency: only contributions
  if (!(state.kind in response.attention)) state.kind = Object.keys(response.attention)[0];
  const kind = shownKind(state);
  state.layer = state.layer === null ? firstLayer(response, kind, info) : Math.min(state.layer, layerCount(response, kind) - 1);
  const explaining = state.view === "explain"; // one head's computation, not an aggregate's
  const choices = headChoices(response, kind, explaining);
  if (typeof state.head === "number" && headCount(response, kind) > 0) state.head = Math.min(state.head, headCount(response, kind) - 1);
  else if (!choices.includes(state.head)) state.head = explaining ? 0 : choices.includes("mean") ? "mean" : choices[0];
  state.query = Math.min(state.query, response[response.attention[kind].query_axis].length - 1);
}

function positiveInteger(value) {
  const n = nonNegativeInteger(value);
  return n > 0 ? n : undefined;
}

function nonNegativeInteger(value) {
  return /^\d{1,4}$/.test(value) ? Number(value) : undefined;
}

function name(value) {
  return /^[a-z_]{1,40}$/.test(value) ? value : undefined;
}

function flag(value) {
  return value === "1" ? true : value === "0" ? false : undefined;
}
