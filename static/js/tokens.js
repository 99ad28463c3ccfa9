// Token labels. Token text is typed by users: everything that reaches Plotly's pseudo-HTML
// (axis labels, hovers, titles) goes through escapePlotly, and the DOM only ever gets textContent.

// Plotly decodes these entities back to plain text nodes, so markup in a token shows as text. It knows no
// &quot; (a quote would show as "&quot;"), but it decodes numeric entities.
const PLOTLY_ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;" };

export function escapePlotly(text) {
  return String(text).replace(/[&<>"]/g, (ch) => PLOTLY_ENTITIES[ch]);
}

// A token as a reader sees it, with its reading: 例 (rei).
export function plainName(token) {
  return token.reading ? `${token.text} (${token.reading})` : token.text;
}

// Axis tick label in Plotly pseudo-HTML. Unknown words carry a "?" (the legend says why);
// readings go under the token on the x axis and beside it on the y axis.
export function axisLabel(token, showReading, axis) {
  let label = escapePlotly(token.text);
  if (token.unknown) label = `${label}?`;
  if (showReading && token.reading) {
    const reading = escapePlotly(token.reading);
    label = axis === "x" ? `${label}<br>${reading}` : `${label}  ${reading}`;
  }
  return label;
}

export function hoverName(token) {
  const name = escapePlotly(plainName(token));
  return token.unknown ? `${name} — unknown to the model` : name;
}

// Positions of the tokens a view shows: all, or all but <s> and </s> (unless that would leave none,
// as for an empty translation, which is only </s>). A produced <unk> is a prediction: it stays.
export function visibleIndices(tokens, showSpecial) {
  const all = tokens.map((_, i) => i);
  const plain = all.filter((i) => !tokens[i].special || tokens[i].text === "<unk>");
  return showSpecial || plain.length === 0 ? all : plain;
}
