// Drawing for the learning views: small matrices as tables of numbers (editable where the reader may
// change them), long vectors and tall matrices as colour strips on a canvas, and a log-log line plot
// in SVG. The DOM is built with textContent only (token text is typed by users), colours are set
// through the CSSOM (the page's Content-Security-Policy refuses style attributes, not element.style).

import { DEFAULT_SCALE, lookupTable } from "../colors.js";

const SVG = "http://www.w3.org/2000/svg";

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// "−∞" for a masked score, a fixed number of decimals otherwise (−0 shown as 0).
export function formatNumber(value, digits = 2) {
  if (value === -Infinity) return "−∞";
  if (value === Infinity) return "∞";
  const text = value.toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text.replace("-", "−");
}

// The colour of `value`: signed values on the diverging scale (blue below 0, red above, white at 0)
// up to ±range; weights (0 … 1) on the page's scale.
export function colourOf(value, range, signed, scale = DEFAULT_SCALE) {
  if (!Number.isFinite(value)) return [213, 217, 222];
  const table = lookupTable(signed ? "diverging" : scale);
  const position = signed ? (value / (range || 1) + 1) / 2 : value / (range || 1);
  const k = Math.max(0, Math.min(255, Math.round(position * 255)));
  return [table[k * 3], table[k * 3 + 1], table[k * 3 + 2]];
}

// Black or white, whichever reads better on `rgb` (WCAG relative luminance): at least 4.5:1 on any colour.
export function inkOn([r, g, b]) {
  const channel = (c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000000" : "#ffffff";
}

function largest(matrix) {
  return Math.max(0, ...matrix.flat().filter(Number.isFinite).map(Math.abs));
}

// A table of numbers: `rows` labels down the side, `columns` across the top (either may be null),
// cells coloured unless `colour` is false. With `edit(i, j, value)`, every cell is a number input.
// `masked[i][j]` cells read `maskedText` (−∞, for a score) in the mask colour. Returns the table in a box of its own.
export function numberTable({ matrix, rows = null, columns = null, caption, digits = 2, signed = true, colour = true, scale, masked = null, maskedText = "−∞", edit = null, name = caption, range = null, id = null }) {
  const table = element("table", `numbers${edit ? " editable" : ""}`);
  if (id) table.id = id;
  table.append(element("caption", "", caption));
  const top = range ?? (signed ? largest(matrix) : 1);
  if (columns) {
    const head = element("tr");
    head.append(element("th", "corner"));
    for (const label of columns) {
      const th = element("th", "", label);
      th.scope = "col";
      head.append(th);
    }
    const thead = element("thead");
    thead.append(head);
    table.append(thead);
  }
  const body = element("tbody");
  matrix.forEach((values, i) => {
    const line = element("tr");
    if (rows) {
      const th = element("th", "", rows[i]);
      th.scope = "row";
      line.append(th);
    } else if (columns) line.append(element("th", "corner"));
    values.forEach((value, j) => {
      const td = element("td");
      const isMasked = masked?.[i]?.[j] ?? false;
      if (edit) {
        const input = element("input");
        input.type = "number";
        input.step = "any";
        input.value = String(value);
        const where = [rows ? `row ${rows[i]}` : `row ${i + 1}`, columns ? `column ${columns[j]}` : `column ${j + 1}`];
        input.setAttribute("aria-label", `${name}, ${where.join(", ")}`);
        input.dataset.row = String(i);
        input.dataset.column = String(j);
        input.addEventListener("input", () => {
          const number = Number(input.value);
          if (input.value.trim() !== "" && Number.isFinite(number)) edit(i, j, number);
        });
        td.append(input);
      } else {
        td.textContent = isMasked ? maskedText : formatNumber(value, digits);
      }
      if (isMasked) td.classList.add("masked");
      else if (colour) {
        const rgb = colourOf(value, top, signed, scale);
        td.style.backgroundColor = `rgb(${rgb.join(",")})`;
        td.style.color = inkOn(rgb);
      }
      line.append(td);
    });
    body.append(line);
  });
  table.append(body);
  const box = element("div", "table-box"); // scrolls sideways where the table is wider than the screen
  box.append(table);
  return box;
}

// A matrix (or one vector, as one row) as a strip of colour cells: one canvas pixel per number, scaled up
// crisp. `rows`: a label per row; `marks`: column ranges [from, to) outlined (one head among the heads).
export function strip({ matrix, rows = null, caption, signed = true, scale, range = null, rowHeight = 16, marks = [] }) {
  const figure = element("figure", "strip");
  const height = matrix.length;
  const width = matrix[0]?.length ?? 0;
  const canvas = element("canvas");
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, height);
  canvas.style.height = `${height * rowHeight}px`;
  const top = range ?? (signed ? largest(matrix) : 1);
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  matrix.forEach((values, i) =>
    values.forEach((value, j) => {
      const [r, g, b] = colourOf(value, top, signed, scale);
      image.data.set([r, g, b, 255], (i * width + j) * 4);
    }),
  );
  context.putImageData(image, 0, 0);
  canvas.setAttribute("role", "img");
  const extent = Number.isFinite(top) ? ` (colour up to ${signed ? "±" : ""}${formatNumber(top, 2)})` : "";
  canvas.setAttribute("aria-label", `${caption}: ${height} × ${width}${extent}`);
  const body = element("div", "strip-body");
  if (rows) {
    const labels = element("div", "strip-labels");
    for (const label of rows) {
      const line = element("span", "", label);
      line.style.height = `${rowHeight}px`;
      line.style.lineHeight = `${rowHeight}px`;
      labels.append(line);
    }
    body.append(labels);
  }
  const cells = element("div", "strip-cells");
  cells.append(canvas);
  for (const [from, to] of marks) {
    const mark = element("span", "strip-mark");
    mark.style.left = `${(100 * from) / width}%`;
    mark.style.width = `${(100 * (to - from)) / width}%`;
    cells.append(mark);
  }
  body.append(cells);
  figure.append(body, element("figcaption", "", `${caption} · ${height} × ${width}`));
  return figure;
}

// A log-log plot of a few series of [x, y] points, with ticks at the powers of 10 (y) and the given xs.
export function logPlot({ series, caption, xLabel, yLabel, width = 520, height = 260 }) {
  const margin = { left: 64, right: 120, top: 12, bottom: 40 };
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const [x0, x1] = [Math.log10(Math.min(...xs)), Math.log10(Math.max(...xs))];
  const [y0, y1] = [Math.floor(Math.log10(Math.min(...ys))), Math.ceil(Math.log10(Math.max(...ys)))];
  const px = (x) => margin.left + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (width - margin.left - margin.right);
  const py = (y) => height - margin.bottom - ((Math.log10(y) - y0) / (y1 - y0 || 1)) * (height - margin.top - margin.bottom);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", caption);
  svg.classList.add("log-plot");
  const add = (tag, attributes, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (let e = y0; e <= y1; e++) {
    add("line", { x1: margin.left, x2: width - margin.right, y1: py(10 ** e), y2: py(10 ** e), class: "grid-line" });
    add("text", { x: margin.left - 6, y: py(10 ** e) + 4, "text-anchor": "end", class: "tick" }, `10${superscript(e)}`);
  }
  const ticks = series[0].points.map(([x]) => x).filter((_, k, all) => all.length <= 10 || k % 2 === 0);
  for (const x of ticks) add("text", { x: px(x), y: height - margin.bottom + 16, "text-anchor": "middle", class: "tick" }, String(x));
  add("text", { x: (margin.left + width - margin.right) / 2, y: height - 6, "text-anchor": "middle", class: "axis-title" }, xLabel);
  add("text", { x: 14, y: (margin.top + height - margin.bottom) / 2, "text-anchor": "middle", class: "axis-title", transform: `rotate(-90 14 ${(margin.top + height - margin.bottom) / 2})` }, yLabel);
  series.forEach((s, k) => {
    const points = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    add("polyline", { points, class: `series series-${k}`, fill: "none" });
    const [lastX, lastY] = s.points[s.points.length - 1];
    add("text", { x: px(lastX) + 6, y: py(lastY) + 4, class: `series-label series-${k}` }, s.name);
  });
  return svg;
}

function superscript(exponent) {
  const digits = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
  return String(exponent).split("").map((c) => digits[c]).join("");
}

// A titled section with a caption of one or two sentences and, where given, its equation.
export function section(title, caption, equation = null) {
  const box = element("section", "learn-step");
  box.append(element("h3", "", title));
  if (equation) box.append(element("p", "equation", equation));
  box.append(element("p", "caption", caption));
  return box;
}

export function row(...children) {
  const line = element("div", "learn-row");
  line.append(...children);
  return line;
}
