// Comparing two models' cross-attention on one sentence: the second model forced on the first's
// translation, so both maps share their axes, and how often their argmax source tokens agree.
// Pure functions: no DOM.

import { whyNoDifference } from "./compare.js";
import { selectionName } from "./selection.js";

// The models a result can be compared with: every other served model that has cross-attention.
export function otherModels(models, current) {
  return models.filter((info) => info.name !== current && "cross" in info.kinds);
}

// The first result's produced tokens as a target to force on the second model (its </s> is implied).
export function forcedTarget(response) {
  return response.target_tokens.filter((t) => !t.special).map((t) => t.text).join(" ");
}

// The request for the second model's map: the same source, forced on the first result's translation,
// cross-attention only.
export function otherRequest(state, model) {
  return { model, source: state.answeredSource, target: forcedTarget(state.response), beam: 1, controls: {}, granularity: state.granularity, kinds: ["cross"] };
}

// The column of each row's largest weight (the first one on a tie).
export function argmaxes(matrix) {
  return matrix.map((row) => row.reduce((best, w, j) => (w > row[best] ? j : best), 0));
}

// Of the rows (produced tokens) the two maps show, how many put their largest weight on the same
// source token: { agreeing, total, share, first, second } (argmax columns of each), or { reason }
// where the maps' token lists differ, so rows or columns do not correspond.
export function argmaxAgreement(firstView, secondView) {
  const reason = whyNoDifference(firstView, secondView);
  if (reason) return { reason };
  const first = argmaxes(firstView.matrix);
  const second = argmaxes(secondView.matrix);
  const agreeing = first.filter((j, i) => j === second[i]).length;
  return { agreeing, total: first.length, share: first.length ? agreeing / first.length : 0, first, second };
}

// "4 of 6 produced tokens (67%) …": the figure in words, for the view's caption and its table.
export function agreementSentence(agreement, firstName, secondName) {
  if (agreement.reason) return `No agreement figure: the second model's ${agreement.reason.replace(/^its /, "")}.`;
  const percent = Math.round(agreement.share * 100);
  return `Argmax agreement: ${agreement.agreeing} of ${agreement.total} produced tokens (${percent}%) look most at the same source token in ${firstName} and ${secondName}.`;
}

// The view as a table (and its CSV): per produced token, each model's argmax source token and
// whether they agree (1) or not (0); the last line is the agreement, the share of 1s. Where the maps'
// tokens differ, only the first model's argmaxes, the rest left empty (the caption says why).
export function agreementTable(firstView, secondView, agreement, firstName, secondName) {
  const caption = `Cross-attention of ${firstName} (${selectionName("cross", firstView.layer, firstView.head)}) and ${secondName} (${selectionName("cross", secondView.layer, secondView.head)}). ${agreementSentence(agreement, firstName, secondName)}`;
  const columns = ["query position", "produced", `argmax source token: ${firstName}`, `argmax source token: ${secondName}`, "same argmax"];
  const first = agreement.first ?? argmaxes(firstView.matrix);
  const rows = firstView.rowTokens.map((token, i) => {
    const mine = [firstView.rows[i], token.text, firstView.colTokens[first[i]].text];
    if (agreement.reason) return [...mine, "", ""];
    return [...mine, secondView.colTokens[agreement.second[i]].text, first[i] === agreement.second[i] ? 1 : 0];
  });
  return { caption, columns, rows: [...rows, ["", "agreement (share of produced tokens)", "", "", agreement.reason ? "" : agreement.share]] };
}
