// The page's one state object, its defaults, and its round trip through the URL.

import { DEFAULT_SCALE, SCALES } from "./colors.js";

export const KINDS = ["encoder", "decoder", "cross"];
export const KIND_NAMES = { encoder: "Encoder self-attention", decoder: "Decoder masked self-attention", cross: "Cross-attention" };
export const VIEWS = ["head", "grid", "panels", "stats", "steps"];
export const AGGREGATES = ["mean", "max", "rollout"];
export const POLITENESS = ["auto", "plain", "polite"];

export function initialState() {
  return {
    // what was asked
    source: "",
    target: "",
    model: "",
    beam: 1,
    politeness: "auto",
    // what is shown
    kind: "cross",
    layer: 0,
    head: 0, // a head index, or one of AGGREGATES
    view: "head",
    step: 0,
    showSpecial: false,
    renormalise: false,
    showReadings: true,
    scale: DEFAULT_SCALE,
    // what came back
    models: [],
    response: null,
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
  politeness: ["politeness", (v) => (POLITENESS.includes(v) ? v : undefined)],
  kind: ["kind", (v) => (KINDS.includes(v) ? v : undefined)],
  layer: ["layer", nonNegativeInteger],
  head: ["head", (v) => (AGGREGATES.includes(v) ? v : nonNegativeInteger(v))],
  view: ["view", (v) => (VIEWS.includes(v) ? v : undefined)],
  step: ["step", nonNegativeInteger],
  special: ["showSpecial", flag],
  renorm: ["renormalise", flag],
  readings: ["showReadings", flag],
  scale: ["scale", (v) => (v in SCALES ? v : undefined)],
};

export function stateFromQuery(search) {
  const params = new URLSearchParams(search);
  const found = {};
  for (const [name, [key, parse]] of Object.entries(PARAMETERS)) {
    if (!params.has(name)) continue;
    const value = parse(params.get(name));
    if (value !== undefined) found[key] = value;
  }
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
  return params.toString();
}

export function layerCount(response, kind) {
  return response.attention[kind].weights.length;
}

export function headCount(response, kind) {
  return response.attention[kind].weights[0].length;
}

// Bring the selection inside what the response holds (a shared link may name a layer a smaller model lacks).
export function clampSelection(state) {
  const response = state.response;
  if (!response) return;
  if (!(state.kind in response.attention)) state.kind = Object.keys(response.attention)[0];
  state.layer = Math.min(state.layer, layerCount(response, state.kind) - 1);
  if (state.head === "rollout" && state.kind !== "encoder") state.head = "mean";
  if (typeof state.head === "number") state.head = Math.min(state.head, headCount(response, state.kind) - 1);
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
