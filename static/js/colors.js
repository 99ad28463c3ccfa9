// Colour scales shared by the Plotly figures (by name) and the canvas thumbnails (by lookup table).
// Stops (evenly spaced) are plotly.js's own, so a thumbnail and its head view agree; all three read in greyscale
// and for colour-blind readers (viridis and cividis are perceptually uniform).

export const SCALES = {
  Viridis: [
    "#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e",
    "#21918c", "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725",
  ],
  Cividis: [
    "#00204c", "#002a66", "#00346e", "#273f6c", "#3c4a6b", "#4c556b", "#5b5f6d", "#686a70", "#757575",
    "#838178", "#928c78", "#a19876", "#b0a572", "#c0b16d", "#d1bf66", "#e1cc5c", "#f3db4f", "#ffe945",
  ],
  Greys: ["#ffffff", "#000000"],
};

export const DEFAULT_SCALE = "Viridis";

// For a difference of two maps: blue where the newer result attends less, red where more, white at 0
// (ColorBrewer RdBu, reversed so that red means more).
export const DIVERGING = ["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"];

export function plotlyScale(name) {
  const stops = name === "diverging" ? DIVERGING : (SCALES[name] ?? SCALES[DEFAULT_SCALE]);
  return stops.map((colour, i) => [i / (stops.length - 1), colour]);
}

const tables = new Map();

// 256 RGB triples, flat: entry k is the colour of value k / 255 (of the diverging scale: of 2k / 255 - 1).
export function lookupTable(name) {
  if (!tables.has(name)) {
    const stops = (name === "diverging" ? DIVERGING : (SCALES[name] ?? SCALES[DEFAULT_SCALE])).map(hexToRgb);
    const table = new Uint8ClampedArray(256 * 3);
    for (let k = 0; k < 256; k++) {
      const position = (k / 255) * (stops.length - 1);
      const lower = Math.min(Math.floor(position), stops.length - 2);
      const t = position - lower;
      for (let c = 0; c < 3; c++) table[k * 3 + c] = stops[lower][c] * (1 - t) + stops[lower + 1][c] * t;
    }
    tables.set(name, table);
  }
  return tables.get(name);
}

function hexToRgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}
