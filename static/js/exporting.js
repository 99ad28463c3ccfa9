// Downloads of the figure on screen: Plotly figures and the overview grid as PNG or SVG (the CSV and
// JSON texts come from tables.js and the API response).

import { lookupTable } from "./colors.js";

export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// `elements`: the Plotly figures on screen (a figure and, with a pinned result, its comparison),
// stacked one above the other in the file.
export async function downloadPlot(elements, format, filename) {
  downloadBlob(await figureImage(elements, format), filename);
}

// The figures as one SVG, or as a PNG at twice its size. Plotly's SVG has heatmaps one pixel per cell
// (see views/heatmap.js) and leaves out the page's stylesheet, so its root gets the `image-rendering`
// attribute, which the heatmap images inherit.
export async function figureImage(elements, format) {
  const svgs = await Promise.all(elements.map(async (element) => {
    const url = await Plotly.toImage(element, { format: "svg" });
    return decodeURIComponent(url.slice(url.indexOf(",") + 1));
  }));
  const svg = svgs.length === 1 ? svgs[0].replace("<svg ", '<svg image-rendering="pixelated" ') : stackSvgs(svgs);
  const blob = new Blob([svg], { type: "image/svg+xml" });
  return format === "svg" ? blob : rasterise(blob, 2);
}

// Plotly's SVGs, each an <svg width height> of its own, nested one under the other in one root.
function stackSvgs(svgs) {
  const size = (svg, name) => Number(svg.match(new RegExp(`<svg[^>]*?\\s${name}="([\\d.]+)"`))[1]);
  let top = 0;
  const placed = svgs.map((svg) => {
    const nested = svg.replace(/^<svg /, `<svg x="0" y="${top}" `);
    top += size(svg, "height");
    return nested;
  });
  const width = Math.max(...svgs.map((svg) => size(svg, "width")));
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" image-rendering="pixelated" width="${width}" height="${top}" viewBox="0 0 ${width} ${top}"><rect width="100%" height="100%" fill="#ffffff"/>${placed.join("")}</svg>`;
}

async function rasterise(svgBlob, scale) {
  const url = URL.createObjectURL(svgBlob);
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth * scale;
    canvas.height = image.naturalHeight * scale;
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  } finally {
    URL.revokeObjectURL(url);
  }
}

// The overview grid is canvases, not a Plotly figure: it is redrawn onto one canvas (PNG) or
// written as an SVG of embedded images, with its title, the row and column labels and a colour bar.
// `grids`: [{ element, title, signed }], the overview and, with a pinned result, its comparison below.
export async function downloadGrid(grids, format, filename, scale) {
  let top = 0;
  const layouts = grids.map(({ element, title, signed }) => {
    const layout = gridLayout(element, title, top, signed);
    top += layout.height + 20;
    return { ...layout, bar: { ...layout.bar, canvas: colourBarImage(signed ? "diverging" : scale) } };
  });
  const width = Math.max(...layouts.map((l) => l.width));
  const height = top - 20;
  const labels = layouts.flatMap((l) => l.labels);
  const images = layouts.flatMap((l) => [...l.images, l.bar]);
  if (format === "png") {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.imageSmoothingEnabled = false;
    context.fillStyle = "#1f2933";
    context.textBaseline = "middle";
    for (const label of labels) {
      context.font = `${label.size}px system-ui, sans-serif`;
      context.fillText(label.text, label.x, label.y);
    }
    for (const item of images) context.drawImage(item.canvas, item.x, item.y, item.width, item.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    downloadBlob(blob, filename);
    return;
  }
  const escape = (text) => text.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  const image = (i) => `<image x="${i.x}" y="${i.y}" width="${i.width}" height="${i.height}" preserveAspectRatio="none" image-rendering="pixelated" href="${i.canvas.toDataURL("image/png")}"/>`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...labels.map((l) => `<text x="${l.x}" y="${l.y}" dominant-baseline="middle" font-family="system-ui, sans-serif" font-size="${l.size}" fill="#1f2933">${escape(l.text)}</text>`),
    ...images.map(image),
    "</svg>",
  ];
  downloadBlob(new Blob([parts.join("\n")], { type: "image/svg+xml" }), filename);
}

// A vertical colour bar, the scale's low end at the bottom, as a 1 × 256 canvas.
function colourBarImage(scale) {
  const table = lookupTable(scale);
  const canvas = document.createElement("canvas");
  canvas.width = 1;
  canvas.height = 256;
  const context = canvas.getContext("2d");
  const image = context.createImageData(1, 256);
  for (let k = 0; k < 256; k++) {
    const at = (255 - k) * 4;
    image.data.set([table[k * 3], table[k * 3 + 1], table[k * 3 + 2], 255], at);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// Where each label and thumbnail of one grid goes, `offset` px from the top of the file.
function gridLayout(gridElement, title, offset, signed) {
  const cell = 96;
  const pad = 10;
  const labelWidth = 70;
  const top = offset + 64; // the title, then the column labels
  const buttons = [...gridElement.querySelectorAll("button.thumb")];
  const columnLabels = [...gridElement.querySelectorAll(".grid-label-column")].map((e) => e.textContent);
  const rowLabels = [...gridElement.querySelectorAll(".grid-label-row")].map((e) => e.textContent);
  const columns = columnLabels.length;
  const gridWidth = labelWidth + columns * (cell + pad);
  const gridHeight = top + rowLabels.length * (cell + pad);
  const bar = { x: gridWidth + 10, y: top, width: 14, height: Math.min(200, gridHeight - top - pad) };
  const labels = [
    { text: title, x: 4, y: offset + 18, size: 15 },
    ...columnLabels.map((text, c) => ({ text, x: labelWidth + c * (cell + pad) + 4, y: top - 14, size: 13 })),
    ...rowLabels.map((text, r) => ({ text, x: 4, y: top + r * (cell + pad) + cell / 2, size: 13 })),
    { text: signed ? "more weight now" : "its largest weight", x: bar.x + bar.width + 6, y: bar.y + 4, size: 12 },
    { text: signed ? "less weight now" : "0", x: bar.x + bar.width + 6, y: bar.y + bar.height - 4, size: 12 },
  ];
  const images = buttons.map((button, k) => {
    const canvas = button.querySelector("canvas");
    const scale = cell / Math.max(canvas.width, canvas.height);
    return {
      canvas,
      x: labelWidth + (k % columns) * (cell + pad),
      y: top + Math.floor(k / columns) * (cell + pad),
      width: Math.round(canvas.width * scale),
      height: Math.round(canvas.height * scale),
    };
  });
  const titleWidth = title.length * 7.5 + 8;
  return { labels, images, bar, width: Math.max(bar.x + bar.width + 130, titleWidth), height: gridHeight - offset };
}
