// Maps as they travel: the page asks for "encoding": "base64" (EncodedWeights in docs/api.md) and unpacks each map
// into the nested [layer][head][query][key] lists the rest of the page reads. Each weight is integer / scale, the
// very double JSON's list would hold, so the page draws the same from either encoding.

export const WIRE_ENCODING = "base64";

const BYTES = { uint16: 2, uint32: 4 };

// The weights of one EncodedWeights, nested by its shape.
export function unpackWeights({ dtype, scale, shape, data }) {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const width = BYTES[dtype];
  if (!width) throw new Error(`unknown weight type ${dtype}`);
  const read = width === 2 ? (offset) => view.getUint16(offset, true) : (offset) => view.getUint32(offset, true);
  let offset = 0;
  const nest = (depth) => {
    const out = new Array(shape[depth]);
    for (let i = 0; i < shape[depth]; i++) {
      if (depth === shape.length - 1) {
        out[i] = read(offset) / scale;
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
