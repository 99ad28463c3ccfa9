// Talking to /api/v1. Every failure becomes an ApiError whose message can be shown as is, with the
// request field it is about when the API names one.

import { WIRE_ENCODING, unpackAttention } from "./wire.js";

export class ApiError extends Error {
  constructor(message, field = null) {
    super(message);
    this.field = field;
  }
}

// `controls` holds only values the reader chose (the model's defaults are left to the model);
// `kinds`, where given, the only kinds of attention wanted; `ablate`, the heads to switch off. Maps come packed
// and are unpacked here.
// `method` other than weights, and for saliency its `saliency` algorithm ("": the model's default), are sent.
export async function fetchAttention({ model, source, target, beam, controls, granularity, kinds, method = "weights", saliency = "", ablate = [] }) {
  const body = { source, beam_size: beam, granularity, encoding: WIRE_ENCODING };
  if (method !== "weights") body.method = method;
  if (method === "saliency" && saliency) body.saliency = { algorithm: saliency };
  if (kinds) body.kinds = kinds;
  if (Object.keys(controls).length) body.controls = controls;
  if (ablate.length) body.ablate = ablate;
  if (model) body.model = model;
  if (target.trim()) body.target = target;
  const response = await request("/api/v1/attention", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return unpackAttention(response);
}

// `body`: a POST /api/v1/explain request (learn/explain.js explainRequest makes it).
export async function fetchExplanation(body) {
  return request("/api/v1/explain", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

// The model's corpus head table, or null where it has none (its description says: `head_importance`).
export async function fetchHeadImportance(info) {
  if (!info.head_importance) return null;
  return request(`/api/v1/models/${encodeURIComponent(info.name)}/heads`);
}

async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch {
    throw new ApiError("The server cannot be reached. Is it still running?");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(errorMessage(response.status, body), errorField(body));
  return body;
}

export function errorMessage(status, body) {
  if (typeof body?.detail === "string" && body.detail) return body.detail;
  if (status === 413) return "The request is too large.";
  return `The server answered ${status} without an explanation.`;
}

// The first field a refusal names: from its field list, or the word its message starts with.
function errorField(body) {
  const loc = body?.errors?.[0]?.loc?.filter((part) => part !== "body");
  if (loc?.length) return String(loc[0]);
  return /^(\w+)\b/.exec(body?.detail ?? "")?.[1] ?? null;
}
