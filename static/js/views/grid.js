// View 2: every layer × head of one kind as small multiples, plus each layer's mean and max.
// Thumbnails are canvases filled pixel by pixel (one pixel per cell, scaled up by CSS): dozens of
// Plotly figures would take seconds, these take milliseconds.

import { isOff } from "../ablation.js";
import { lookupTable } from "../colors.js";
import { matrixMax } from "../matrices.js";
import { headName } from "../selection.js";
import { maskColour } from "./heatmap.js";

// Thumbnails of at most this many px, fewer where the row of them would not fit (a phone).
const THUMB_BOX = 112;

// `layers`: per layer, the maps of each head and then of the mean and max (tables.gridViews), or
// their differences from a pinned result (signed maps, drawn in the diverging scale); `what` names
// the grid's maps for a screen reader where it is not the current result ("pinned", "difference").
// `switches`, where heads can be switched off: { off } (the heads off, ablation.js), and each head
// gets an on/off switch under its map (a button with data-switch); a head that is off is drawn faded.
export function drawGrid(element, layers, options, selected, what = "", switches = null) {
  const columns = layers[0].map((view) => view.head);
  const table = lookupTable(layers[0][0].signed ? "diverging" : options.scale);
  const mask = hexToRgb(maskColour(options.scale));
  const box = Math.max(36, Math.min(THUMB_BOX, Math.floor((element.clientWidth - 60) / columns.length) - 14));
  const fragment = document.createDocumentFragment();
  fragment.append(cornerCell(), ...columns.map((head) => labelCell(typeof head === "number" ? `head ${head}` : headName(head), "column")));
  layers.forEach((views, layer) => {
    fragment.append(labelCell(`layer ${layer}`, "row"));
    for (const view of views) {
      const thumb = thumbnail(view, table, mask, box, layer === selected.layer && view.head === selected.head, what);
      fragment.append(switches && typeof view.head === "number" ? switchable(thumb, view, switches.off) : thumb);
    }
  });
  element.style.setProperty("--grid-columns", String(columns.length));
  element.style.setProperty("--thumb", `${box + 12}px`);
  element.replaceChildren(fragment);
}

// A head's map with its switch under it; faded while the head is off.
function switchable(thumb, view, off) {
  const isHeadOff = isOff(off, view.kind, view.layer, view.head);
  const cell = document.createElement("div");
  cell.className = isHeadOff ? "cell off" : "cell";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "head-switch";
  button.dataset.switch = `${view.kind}.${view.layer}.${view.head}`;
  button.setAttribute("aria-pressed", String(isHeadOff));
  button.setAttribute("aria-label", `Switch off layer ${view.layer}, head ${view.head}`);
  button.title = isHeadOff ? "Off: its output is zeroed. Click to switch it back on" : "Click to switch this head off and translate again";
  button.textContent = isHeadOff ? "○ off" : "● on";
  cell.append(thumb, button);
  return cell;
}

export function parseHead(value) {
  return /^\d+$/.test(value) ? Number(value) : value;
}

function thumbnail(view, table, mask, box, selected, what) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = selected ? "thumb selected" : "thumb";
  button.dataset.layer = String(view.layer);
  button.dataset.head = String(view.head);
  button.setAttribute("aria-pressed", String(selected));
  const name = `layer ${view.layer}, ${headName(view.head)}${what ? `, ${what}` : ""}`;
  button.setAttribute("aria-label", `${name}: open in the head view`);
  button.title = name;
  const canvas = paintMap(view, table, mask, box);
  button.append(canvas);
  return button;
}

// A map as a canvas of one pixel per cell, scaled by CSS to fit a `box` px square keeping its shape.
// `table`: the scale's lookup table (colors.lookupTable); `mask`: the RGB of masked cells. A signed map
// is coloured from -m to m, m its largest absolute value.
function paintMap(view, table, mask, box) {
  const canvas = document.createElement("canvas");
  const rows = view.rows.length;
  const cols = view.cols.length;
  canvas.width = Math.max(cols, 1);
  canvas.height = Math.max(rows, 1);
  const scale = box / Math.max(canvas.width, canvas.height);
  canvas.style.width = `${Math.round(canvas.width * scale)}px`;
  canvas.style.height = `${Math.round(canvas.height * scale)}px`;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  const top = (view.signed ? matrixMax(view.matrix.map((row) => row.map(Math.abs))) : matrixMax(view.matrix)) || 1;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const at = (i * cols + j) * 4;
      const k = colourIndex(view.signed ? (view.matrix[i][j] + top) / 2 : view.matrix[i][j], top) * 3;
      const rgb = view.masked[i][j] ? mask : table.subarray(k, k + 3);
      image.data[at] = rgb[0];
      image.data[at + 1] = rgb[1];
      image.data[at + 2] = rgb[2];
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
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
