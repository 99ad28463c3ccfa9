// The head view's figure painted on a canvas from the same traces and layout Plotly is given
// (heatmap.attentionFigure): title, cells, tick labels, axis titles and colour bar, drawn where
// Plotly draws them. A shared link opened afresh shows it at once; Plotly's bundle takes a second
// more to start (bench/page_timing.py), and its interactive figure then takes the canvas's place.
// Only what attention figures use is drawn: heatmap traces on linear axes with array ticks, and the
// colour bar's axis with automatic ticks.

const TICK_GAP = { x: 0, y: 3 }; // px between an axis and its level tick labels' edge (x: their middle is half a line out)
const LINE_HEIGHT = 1.25; // of the font size, between the lines of a two-line label

export function sketchFigure({ traces, layout }) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(layout.width * ratio);
  canvas.height = Math.round(layout.height * ratio);
  canvas.style.width = `${layout.width}px`;
  canvas.style.height = `${layout.height}px`;
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  context.fillStyle = layout.paper_bgcolor;
  context.fillRect(0, 0, layout.width, layout.height);
  const plot = {
    left: layout.margin.l,
    top: layout.margin.t,
    width: layout.width - layout.margin.l - layout.margin.r,
    height: layout.height - layout.margin.t - layout.margin.b,
  };
  const axes = (trace) => [axisOf(layout, plot, trace.xaxis, "x"), axisOf(layout, plot, trace.yaxis, "y")];
  for (const trace of traces) paintHeatmap(context, trace, ...axes(trace));
  const names = Object.keys(layout).filter((key) => /^[xy]axis\d*$/.test(key));
  for (const name of names) {
    const letter = name[0];
    const axis = axisOf(layout, plot, `${letter}${name.slice(5)}`, letter);
    if (axis.options.visible === false) continue;
    const across = axisOf(layout, plot, axis.options.anchor, letter === "x" ? "y" : "x");
    drawAxis(context, layout.font, axis, across);
  }
  if (layout.title) drawTitle(context, layout);
  return canvas;
}

// An axis's options and its value → px mapping. `id`: "x", "x2", "y9"…
function axisOf(layout, plot, id, letter) {
  const options = layout[`${letter}axis${id.slice(1)}`];
  const [d0, d1] = options.domain ?? [0, 1];
  const [r0, r1] = options.range;
  if (letter === "x") {
    const start = plot.left + d0 * plot.width;
    const end = plot.left + d1 * plot.width;
    return { letter, options, start, end, at: (v) => start + ((v - r0) / (r1 - r0)) * (end - start) };
  }
  const bottom = plot.top + (1 - d0) * plot.height;
  const top = plot.top + (1 - d1) * plot.height;
  return { letter, options, start: top, end: bottom, at: (v) => bottom - ((v - r0) / (r1 - r0)) * (bottom - top) };
}

// One pixel per cell, scaled up without smoothing, as Plotly's zsmooth "fast" draws it; null cells stay clear.
function paintHeatmap(context, trace, xAxis, yAxis) {
  const rows = trace.z.length;
  const cols = trace.z[0].length;
  const cells = document.createElement("canvas");
  cells.width = cols;
  cells.height = rows;
  const image = cells.getContext("2d").createImageData(cols, rows);
  const colour = colourFunction(trace.colorscale, trace.zmin ?? 0, trace.zmax ?? 1);
  trace.z.forEach((row, i) =>
    row.forEach((value, j) => {
      if (value === null) return;
      image.data.set([...colour(value), 255], (i * cols + j) * 4);
    }),
  );
  cells.getContext("2d").putImageData(image, 0, 0);
  // Cells are centred on their x and y values: the image runs half a cell beyond the first and last.
  const first = (values, axis) => axis.at(values[0] - step(values) / 2);
  const last = (values, axis) => axis.at(values.at(-1) + step(values) / 2);
  const x0 = first(trace.x, xAxis);
  const x1 = last(trace.x, xAxis);
  const y0 = first(trace.y, yAxis);
  const y1 = last(trace.y, yAxis);
  context.imageSmoothingEnabled = false;
  // Row 0 of z is at y[0]: drawn upside down where the axis runs upwards (the colour bar).
  context.save();
  context.translate(Math.min(x0, x1), y0);
  context.scale(1, Math.sign(y1 - y0) || 1);
  context.drawImage(cells, 0, 0, Math.abs(x1 - x0), Math.abs(y1 - y0));
  context.restore();
}

function step(values) {
  return values.length > 1 ? values[1] - values[0] : 1;
}

// A colorscale ([[fraction, "#rrggbb"], …]) as value → [r, g, b], interpolated in RGB as Plotly does.
function colourFunction(scale, low, high) {
  const stops = scale.map(([at, hex]) => [at, [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16))]);
  return (value) => {
    const t = Math.max(0, Math.min(1, (value - low) / (high - low || 1)));
    const upper = Math.max(1, stops.findIndex(([at]) => at >= t));
    const [a, from] = stops[upper - 1];
    const [b, to] = stops[upper];
    const f = b > a ? (t - a) / (b - a) : 0;
    return from.map((c, k) => Math.round(c + (to[k] - c) * f));
  };
}

// Tick labels (array ticks, or about `nticks` round values), tick marks where asked, and the title.
function drawAxis(context, font, axis, across) {
  const options = axis.options;
  const { values, labels } = options.tickmode === "array" ? { values: options.tickvals, labels: options.ticktext } : autoTicks(options);
  const side = options.side ?? (axis.letter === "x" ? "bottom" : "left");
  const base = { top: across.start, bottom: across.end, left: across.start, right: across.end }[side];
  const outward = side === "top" || side === "left" ? -1 : 1;
  const tickLength = options.ticks === "outside" ? (options.ticklen ?? 5) : 0;
  const offset = tickLength + TICK_GAP[axis.letter];
  const size = options.tickfont?.size ?? font.size;
  context.font = `${size}px ${font.family}`;
  context.fillStyle = font.color;
  context.strokeStyle = "#444444";
  let extent = 0; // px the labels reach out from the axis
  if (options.showticklabels !== false) {
    values.forEach((value, k) => {
      const lines = plainLines(String(labels[k]));
      const position = axis.at(value);
      if (tickLength) {
        const [x0, y0, x1, y1] = axis.letter === "x" ? [position, base, position, base + outward * tickLength] : [base, position, base + outward * tickLength, position];
        context.beginPath();
        context.moveTo(x0, y0);
        context.lineTo(x1, y1);
        context.stroke();
      }
      extent = Math.max(extent, drawLabel(context, lines, axis.letter, position, base + outward * offset, outward, options.tickangle ?? 0, size));
    });
  }
  const title = options.title;
  if (!title?.text) return;
  const titleSize = title.font?.size ?? font.size;
  context.font = `${titleSize}px ${font.family}`;
  context.fillStyle = title.font?.color ?? font.color;
  const distance = offset + extent + (title.standoff ?? 4) + titleSize / 2;
  const middle = (axis.start + axis.end) / 2;
  context.save();
  if (axis.letter === "x") context.translate(middle, base + outward * distance);
  else {
    context.translate(base + outward * distance, middle);
    context.rotate(-Math.PI / 2);
  }
  context.textAlign = "center";
  context.textBaseline = "middle";
  context.fillText(title.text, 0, 0);
  context.restore();
}

// One tick label at `position` along the axis, `from` px across it; returns how far out it reaches.
function drawLabel(context, lines, letter, position, from, outward, angle, size) {
  const height = size * LINE_HEIGHT;
  const width = Math.max(...lines.map((line) => context.measureText(line).width));
  context.save();
  if (letter === "x" && angle) {
    // Slanted: the label starts at its tick and rises (top side) or falls (bottom) at the angle.
    context.translate(position, from);
    context.rotate((angle * Math.PI) / 180);
    context.textAlign = outward < 0 ? "left" : "right";
    context.textBaseline = "middle";
    lines.forEach((line, k) => context.fillText(line, 0, (k - (lines.length - 1) / 2) * height));
    context.restore();
    return width * Math.abs(Math.sin((angle * Math.PI) / 180)) + height / 2;
  }
  if (letter === "x") {
    context.textAlign = "center";
    context.textBaseline = "middle";
    const first = from + outward * (lines.length * height) / 2 - ((lines.length - 1) * height) / 2;
    lines.forEach((line, k) => context.fillText(line, position, first + k * height));
    context.restore();
    return lines.length * height;
  }
  context.textAlign = outward < 0 ? "right" : "left";
  context.textBaseline = "middle";
  lines.forEach((line, k) => context.fillText(line, from, position + (k - (lines.length - 1) / 2) * height));
  context.restore();
  return width;
}

// Plotly's automatic ticks, closely enough: a step of 1, 2 or 5 × 10^n giving at most `nticks` ticks.
function autoTicks(options) {
  const [low, high] = options.range;
  const rough = Math.abs(high - low) / (options.nticks || 6);
  const power = 10 ** Math.floor(Math.log10(rough || 1));
  const spacing = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const values = [];
  for (let v = Math.ceil(Math.min(low, high) / spacing) * spacing; v <= Math.max(low, high) + 1e-9; v += spacing) values.push(Number(v.toFixed(10)));
  const digits = Math.max(0, -Math.floor(Math.log10(spacing)));
  return { values, labels: values.map((v) => String(Number(v.toFixed(digits)) || 0)) };
}

function drawTitle(context, layout) {
  const { title, font } = layout;
  context.font = `${title.font?.size ?? font.size}px ${font.family}`;
  context.fillStyle = title.font?.color ?? font.color;
  context.textAlign = "left";
  context.textBaseline = "middle";
  const size = title.font?.size ?? font.size;
  context.fillText(plainLines(title.text).join(" "), title.x * layout.width, (title.pad?.t ?? 0) + size / 2);
}

// A Plotly label as the lines of plain text it shows: <br> splits lines, entities are decoded.
function plainLines(label) {
  const decode = (line) => line.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&");
  return label.split("<br>").map(decode);
}
