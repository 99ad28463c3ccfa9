// Downloads: the current figure as PNG or SVG, the API response as JSON, the current matrix as CSV.

import { matrixCsv } from "./selection.js";

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

export function downloadJson(response, filename) {
  downloadBlob(new Blob([JSON.stringify(response, null, 2)], { type: "application/json" }), `${filename}.json`);
}

export function downloadCsv(view, filename) {
  downloadBlob(new Blob([matrixCsv(view)], { type: "text/csv;charset=utf-8" }), `${filename}.csv`);
}

export async function downloadPlot(element, format, filename) {
  downloadBlob(await figureImage(element, format), `${filename}.${format}`);
}

// The figure as an SVG, or as a PNG at twice its size. Plotly's SVG has heatmaps one pixel per cell
// (see views/heatmap.js) and leaves out the page's stylesheet, so its root gets the `image-rendering`
// attribute, which the heatmap images inherit.
export async function figureImage(element, format) {
  const url = await Plotly.toImage(element, { format: "svg" });
  const svg = decodeURIComponent(url.slice(url.indexOf(",") + 1)).replace("<svg ", '<svg image-rendering="pixelated" ');
  const blob = new Blob([svg], { type: "image/svg+xml" });
  return format === "svg" ? blob : rasterise(blob, 2);
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
// written as an SVG of embedded images, with the row and column labels.
export function downloadGrid(gridElement, format, filename) {
  const layout = gridLayout(gridElement);
  if (format === "png") {
    const canvas = document.createElement("canvas");
    canvas.width = layout.width;
    canvas.height = layout.height;
    const context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.imageSmoothingEnabled = false;
    context.fillStyle = "#1f2933";
    context.font = "13px system-ui, sans-serif";
    context.textBaseline = "middle";
    for (const label of layout.labels) context.fillText(label.text, label.x, label.y);
    for (const item of layout.images) context.drawImage(item.canvas, item.x, item.y, item.width, item.height);
    canvas.toBlob((blob) => downloadBlob(blob, `${filename}.png`), "image/png");
    return;
  }
  const escape = (text) => text.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...layout.labels.map((l) => `<text x="${l.x}" y="${l.y}" dominant-baseline="middle" font-family="system-ui, sans-serif" font-size="13" fill="#1f2933">${escape(l.text)}</text>`),
    ...layout.images.map(
      (i) => `<image x="${i.x}" y="${i.y}" width="${i.width}" height="${i.height}" preserveAspectRatio="none" image-rendering="pixelated" href="${i.canvas.toDataURL("image/png")}"/>`,
    ),
    "</svg>",
  ];
  downloadBlob(new Blob([parts.join("\n")], { type: "image/svg+xml" }), `${filename}.svg`);
}

function gridLayout(gridElement) {
  const cell = 96;
  const pad = 10;
  const labelWidth = 70;
  const buttons = [...gridElement.querySelectorAll("button.thumb")];
  const columnLabels = [...gridElement.querySelectorAll(".grid-label-column")].map((e) => e.textContent);
  const rowLabels = [...gridElement.querySelectorAll(".grid-label-row")].map((e) => e.textContent);
  const columns = columnLabels.length;
  const labels = [
    ...columnLabels.map((text, c) => ({ text, x: labelWidth + c * (cell + pad) + 4, y: 14 })),
    ...rowLabels.map((text, r) => ({ text, x: 4, y: 30 + r * (cell + pad) + cell / 2 })),
  ];
  const images = buttons.map((button, k) => {
    const canvas = button.querySelector("canvas");
    const scale = cell / Math.max(canvas.width, canvas.height);
    return {
      canvas,
      x: labelWidth + (k % columns) * (cell + pad),
      y: 30 + Math.floor(k / columns) * (cell + pad),
      width: Math.round(canvas.width * scale),
      height: Math.round(canvas.height * scale),
    };
  });
  return { labels, images, width: labelWidth + columns * (cell + pad), height: 30 + rowLabels.length * (cell + pad) };
}
