// View 2: every layer × head of one kind as small multiples, plus each layer's mean and max.
// Thumbnails are canvases filled pixel by pixel (one pixel per cell, scaled up by CSS): dozens of
// Plotly figures would take seconds, these take milliseconds.

import { lookupTable } from "../colors.js";
import { matrixMax } from "../matrices.js";
import { displayedMap, headName } from "../selection.js";
import { headCount, layerCount } from "../state.js";
import { maskColour } from "./heatmap.js";

const THUMB_BOX = 112; // px

export function drawGrid(element, response, options, kind, selected) {
  const heads = headCount(response, kind);
  const columns = [...Array.from({ length: heads }, (_, h) => h), "mean", "max"];
  const table = lookupTable(options.scale);
  const mask = hexToRgb(maskColour(options.scale));
  const fragment = document.createDocumentFragment();
  fragment.append(cornerCell(), ...columns.map((head) => labelCell(typeof head === "number" ? `head ${head}` : headName(head), "column")));
  for (let layer = 0; layer < layerCount(response, kind); layer++) {
    fragment.append(labelCell(`layer ${layer}`, "row"));
    for (const head of columns) {
      const view = displayedMap(response, options, kind, layer, head);
      fragment.append(thumbnail(view, table, mask, layer === selected.layer && head === selected.head));
    }
  }
  element.style.setProperty("--grid-columns", String(columns.length));
  element.replaceChildren(fragment);
}

// The cheap update when only the selection moved.
export function markGridSelection(element, selected) {
  for (const button of element.querySelectorAll("button.thumb")) {
    const isSelected = Number(button.dataset.layer) === selected.layer && parseHead(button.dataset.head) === selected.head;
    button.classList.toggle("selected", isSelected);
    button.setAttribute("aria-pressed", String(isSelected));
  }
}

export function parseHead(value) {
  return /^\d+$/.test(value) ? Number(value) : value;
}

function thumbnail(view, table, mask, selected) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = selected ? "thumb selected" : "thumb";
  button.dataset.layer = String(view.layer);
  button.dataset.head = String(view.head);
  button.setAttribute("aria-pressed", String(selected));
  button.setAttribute("aria-label", `layer ${view.layer}, ${headName(view.head)}: open in the head view`);
  button.title = `layer ${view.layer}, ${headName(view.head)}`;
  const canvas = document.createElement("canvas");
  const rows = view.rows.length;
  const cols = view.cols.length;
  canvas.width = Math.max(cols, 1);
  canvas.height = Math.max(rows, 1);
  // Scaled to fit a square box, keeping the map's shape.
  const scale = THUMB_BOX / Math.max(canvas.width, canvas.height);
  canvas.style.width = `${Math.round(canvas.width * scale)}px`;
  canvas.style.height = `${Math.round(canvas.height * scale)}px`;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  const top = matrixMax(view.matrix) || 1;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const at = (i * cols + j) * 4;
      const rgb = view.masked[i][j] ? mask : table.subarray(colourIndex(view.matrix[i][j], top) * 3, colourIndex(view.matrix[i][j], top) * 3 + 3);
      image.data[at] = rgb[0];
      image.data[at + 1] = rgb[1];
      image.data[at + 2] = rgb[2];
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  button.append(canvas);
  return button;
}

function colourIndex(weight, top) {
  return Math.max(0, Math.min(255, Math.round((weight / top) * 255)));
}

function labelCell(text, role) {
  const cell = document.createElement("div");
  cell.className = `grid-label grid-label-${role}`;
  cell.textContent = text;
  return cell;
}

function cornerCell() {
  const cell = document.createElement("div");
  cell.className = "grid-corner";
  return cell;
}

function hexToRgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}
