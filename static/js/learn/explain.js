// What the "How it's computed" view derives from an answer of POST /api/v1/explain: each step recomputed
// in the page from the numbers of the step before (q and K give the scores, the scores the weights, the
// weights and V the head's output), and how far each lands from the model's own value and from the row
// of the head view. Pure functions: no DOM.

import * as A from "./attention.js";

// The head view's maps come with 4 decimals (POST /api/v1/attention's default precision), explanations
// with 6: a row equal to the model's is within half a unit of the 4th decimal, plus half of the 6th.
export const MAP_PRECISION = 4;
export const EXPLANATION_PRECISION = 6;

export function withinPrecision(difference, decimals) {
  return difference <= 0.5 * 10 ** -decimals + 0.5 * 10 ** -EXPLANATION_PRECISION;
}

// The request of the explanation of one row of the result on screen: the same request the result came
// from (so the model decodes the same translation), and which kind, layer, head and query.
export function explainRequest(asked, kind, layer, head, query) {
  const body = { source: asked.source, beam_size: asked.beam, kind, layer, head, query };
  if (asked.model) body.model = asked.model;
  if (asked.target.trim()) body.target = asked.target;
  if (Object.keys(asked.controls).length) body.controls = asked.controls;
  return body;
}

export function explanationSteps(e, mapRow) {
  const q = e.queries[e.query];
  const dot = e.keys.map((k) => A.dot(q, k)); // q · k_j
  const scale = Math.sqrt(e.d_k);
  const scaled = dot.map((s) => s / scale);
  const mask = (scores) => scores.map((s, j) => (e.allowed[j] ? s : -Infinity));
  const weights = A.softmax(mask(scaled));
  const unscaled = A.softmax(mask(dot));
  const contributions = e.values.map((v, j) => v.map((x) => weights[j] * x)); // α_j v_j
  const headOutput = contributions.reduce((sum, c) => A.add(sum, c), new Array(e.d_k).fill(0));
  const concatenated = e.head_outputs.flat();
  const residualSum = A.add(e.residual_in, e.attention_output);
  const allowed = (values) => values.filter((_, j) => e.allowed[j]);
  return {
    q,
    dot,
    scale,
    scaled,
    weights,
    contributions,
    headOutput,
    concatenated,
    spread: { before: A.spread(allowed(dot)), after: A.spread(allowed(scaled)) },
    largest: { unscaled: Math.max(...unscaled), scaled: Math.max(...weights) },
    entropy: { unscaled: A.entropy(unscaled), scaled: A.entropy(weights) },
    differences: {
      scores: A.maxAbsDifference(scaled, e.scores), // recomputed here vs the model's
      weights: A.maxAbsDifference(weights, e.weights),
      map: A.maxAbsDifference(e.weights, mapRow), // the model's vs the head view's row
      headOutput: A.maxAbsDifference(headOutput, e.head_outputs[e.head]),
      residual: A.maxAbsDifference(residualSum, e.residual_out),
    },
  };
}

// The head's whole map recomputed from its Q and K (every query, with the kind's mask), and efficient
// attention on the same Q, K, V: the two n × m matrices and the identity of the linear form's groupings.
export function headEfficiency(e) {
  const causal = e.kind === "decoder";
  const allowed = e.queries.map((_, i) => e.keys.map((_, j) => !causal || j <= i));
  const quadratic = A.scaledDotProduct(e.queries, e.keys, e.values, allowed);
  const linear = A.efficientAttention(e.queries, e.keys, e.values);
  return { causal, softmax: quadratic.weights, implied: linear.implied, identity: A.maxAbsDifference(linear.output, linear.impliedOutput) };
}
