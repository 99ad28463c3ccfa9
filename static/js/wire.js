// Maps as they travel: the page asks for "encoding": "base64" (EncodedWeights in docs/api.md) and unpacks each map
// into the nested [layer][head][query][key] lists the rest of the page reads. Each weight is integer / scale, the
// very double JSON's list would hold, so the page draws the same from either encoding.

export const WIRE_ENCODING = "base64";

// How each dtype is read from the little-endian bytes (float64: norms too large for uint32, integers held exactly).
const READERS = {
  uint16: [2, (view, offset) => view.getUint16(offset, true)],
  uint32: [4, (view, offset) => view.getUint32(offset, true)],
  float64: [8, (view, offset) => view.getFloat64(offset, true)],
};

// The weights of one EncodedWeights, nested by its shape.
export function unpackWeights({ dtype, scale, shape, data }) {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  if (!READERS[dtype]) throw new Error(`unknown weight type ${dtype}`);
  const [width, read] = READERS[dtype];
  let offset = 0;
  const nest = (depth) => {
    const out = new Array(shape[depth]);
    for (let i = 0; i < shape[depth]; i++) {
      if (depth === shape.length - 1) {
        out[i] = read(view, offset) / scale;
        offset += width;
      } else out[i] = nest(depth + 1);
    }
    return out;
  };
  return nest(0);
}

// An attention response with every packed map unpacked into `weights`, as "encoding": "lists" gives it.
export function unpackAttention(response) {
  for (const map of Object.values(response.attention ?? {})) {
    if (map.encoded) {
      map.weights = unpackWeights(map.encoded);
      map.encoded = null; // as "lists" answers it
    }
  }
  return response;
}
