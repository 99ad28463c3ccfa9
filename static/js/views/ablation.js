// With heads switched off: which ones (each a button that switches it back on), and the translation
// with every head on beside this one, the tokens that changed marked, with both scores. DOM built
// with textContent only.

import { headLabel, tokenChanges } from "../ablation.js";

// `baseline`: the answer with every head on, or null while it is asked; `onSwitchOn(head)` runs when a head's button is pressed.
export function drawAblation(elements, response, baseline, onSwitchOn) {
  const off = response.ablated;
  elements.section.hidden = off.length === 0;
  if (!off.length) return;
  elements.heads.replaceChildren(
    ...off.map((head) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "ablated-head";
      button.textContent = `${headLabel(head)} ✕`;
      button.setAttribute("aria-label", `Switch ${head.kind} layer ${head.layer}, head ${head.head} back on`);
      button.addEventListener("click", () => onSwitchOn(head));
      return button;
    }),
  );
  if (!baseline) {
    elements.summary.textContent = "Asking for the translation with every head on…";
    elements.before.replaceChildren();
    elements.after.replaceChildren();
    return;
  }
  const words = (r) => r.target_tokens.filter((t) => !t.special).map((t) => t.text);
  const changes = tokenChanges(words(baseline), words(response));
  elements.before.replaceChildren(...changes.before.map((t) => chip(t.text, t.removed ? "del" : "span")));
  elements.after.replaceChildren(...changes.after.map((t) => chip(t.text, t.changed ? "ins" : "span")));
  elements.beforeScore.textContent = `log-probability ${baseline.score.toFixed(2)}`;
  elements.afterScore.textContent = `log-probability ${response.score.toFixed(2)}`;
  const delta = response.score - baseline.score;
  const moved = `${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(2)}`;
  const heads = `${off.length} head${off.length === 1 ? "" : "s"} off`;
  const removed = changes.before.filter((t) => t.removed).length;
  const plural = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
  elements.summary.textContent = response.forced
    ? `${heads}: the forced target stays as it is; its log-probability moves by ${moved}.`
    : changes.changed === 0 && removed === 0
      ? `${heads}: the same translation; its log-probability moves by ${moved}.`
      : `${heads}: ${[
          changes.changed && `${changes.changed} of its ${plural(changes.after.length, "token")} new (marked)`,
          removed && `${removed} of the ${changes.before.length} with every head on gone (struck out)`,
        ]
          .filter(Boolean)
          .join(", ")}; the log-probability moves by ${moved}.`;
}

// A token chip: <ins> for a token the heads' absence brought in, <del> for one it took away.
function chip(text, tag) {
  const element = document.createElement(tag);
  element.className = tag === "span" ? "token" : `token ${tag === "ins" ? "changed" : "removed"}`;
  element.textContent = text;
  if (tag !== "span") element.title = tag === "ins" ? "not in the translation with every head on" : "gone with these heads off";
  return element;
}
