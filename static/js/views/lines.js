// The line view: source tokens in one column, target tokens in the other, a line for each link of the
// selected cross map, as wide as its share of the row (static/js/lines.js); each target token's strongest
// link is drawn dark. Pointing at a token (here, or at its chip in the header) lights up its lines.
// Drawn as SVG from textContent and attributes only: token text never becomes markup.

import { linksOf, lineLinks, lineWidth } from "../lines.js";
import { plainName } from "../tokens.js";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 26; // px per token
const TOP = 34; // px above the first token: the column headings

function svg(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

function label(token, showReadings) {
  const text = showReadings ? plainName(token) : token.text;
  return token.unknown ? `${text}?` : text;
}

// Draws `view` (selection.displayedMap of a cross map) into `element`; returns { links, point(axis, index) }.
export function drawLines(element, view, options, headings) {
  const links = lineLinks(view);
  const width = Math.max(320, element.clientWidth || 640);
  const rows = Math.max(view.colTokens.length, view.rowTokens.length);
  const height = TOP + rows * ROW + 8;
  const left = Math.min(200, width * 0.3);
  const right = width - left;
  const y = (index, count) => TOP + (rows - count) * (ROW / 2) + index * ROW + ROW / 2;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "lines-svg" });
  root.append(
    Object.assign(svg("text", { x: left - 10, y: 16, "text-anchor": "end", class: "lines-heading" }), { textContent: headings.source }),
    Object.assign(svg("text", { x: right + 10, y: 16, "text-anchor": "start", class: "lines-heading" }), { textContent: headings.target }),
  );
  const drawn = svg("g", { class: "lines-links" });
  for (const link of links) {
    drawn.append(
      svg("line", {
        x1: left,
        y1: y(link.col, view.colTokens.length),
        x2: right,
        y2: y(link.row, view.rowTokens.length),
        "stroke-width": lineWidth(link.share).toFixed(2),
        "stroke-opacity": (0.2 + 0.8 * link.share).toFixed(3),
        class: link.argmax ? "line argmax" : "line",
        "data-row": link.row,
        "data-col": link.col,
      }),
    );
  }
  root.append(drawn);
  const tokenColumn = (tokens, axis, x, anchor) =>
    tokens.map((token, i) => {
      const text = svg("text", { x, y: y(i, tokens.length) + 5, "text-anchor": anchor, class: `line-token${token.special ? " special" : ""}`, "data-axis": axis, "data-index": i });
      text.textContent = label(token, options.showReadings);
      return text;
    });
  root.append(...tokenColumn(view.colTokens, "source", left - 10, "end"), ...tokenColumn(view.rowTokens, "target", right + 10, "start"));
  element.replaceChildren(root);

  // Lights up the lines of one token (axis "source" or "target", its index in the view), or none (null).
  const point = (axis, index) => {
    const lit = new Set(linksOf(links, axis, index).map((link) => `${link.row}:${link.col}`));
    root.classList.toggle("pointing", axis !== null);
    for (const line of drawn.children) line.classList.toggle("lit", lit.has(`${line.dataset.row}:${line.dataset.col}`));
    for (const text of root.querySelectorAll(".line-token")) text.classList.toggle("lit", text.dataset.axis === axis && Number(text.dataset.index) === index);
  };
  root.addEventListener("mouseover", (event) => {
    const token = event.target.closest?.(".line-token");
    if (token) point(token.dataset.axis, Number(token.dataset.index));
  });
  root.addEventListener("mouseleave", () => point(null, null));
  return { links, point };
}

// The line view as a table: one line per drawn link.
export function linesTable(view, links, caption) {
  return {
    caption,
    columns: ["source position", "source", "target position", "target", "share of the row", "strongest of the row"],
    rows: links.map((link) => [view.cols[link.col], view.colTokens[link.col].text, view.rows[link.row], view.rowTokens[link.row].text, Number(link.share.toFixed(4)), link.argmax ? 1 : 0]),
  };
}
