/**
 * A structural pre-check for msgpack: msgpackr recurses per nesting level and overflows the stack on
 * deeply nested input, so bytes read back from Redis are walked iteratively first, checking that
 * containers nest at most `maxDepth` deep and every length stays inside the buffer.
 */
export function msgpackWithinLimits(buf: Uint8Array, maxDepth: number): boolean {
  // Items still to read in each open container (maps count keys and values).
  const stack: number[] = [];
  let pos = 0;
  let items = 1;
  const len = buf.length;
  const need = (n: number) => pos + n <= len;
  while (items > 0 || stack.length > 0) {
    if (items === 0) {
      items = stack.pop()!;
      continue;
    }
    items--;
    if (!need(1)) return false;
    const b = buf[pos++]!;
    let skip = 0;
    let open = -1;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) skip = 0;
    else if (b >= 0x80 && b <= 0x8f) open = (b & 0x0f) * 2;
    else if (b >= 0x90 && b <= 0x9f) open = b & 0x0f;
    else if (b >= 0xa0 && b <= 0xbf) skip = b & 0x1f;
    else {
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      switch (b) {
        case 0xc4: case 0xd9: if (!need(1)) return false; skip = 1 + buf[pos]!; break;
        case 0xc5: case 0xda: if (!need(2)) return false; skip = 2 + view.getUint16(pos); break;
        case 0xc6: case 0xdb: if (!need(4)) return false; skip = 4 + view.getUint32(pos); break;
        case 0xc7: if (!need(1)) return false; skip = 2 + buf[pos]!; break;
        case 0xc8: if (!need(2)) return false; skip = 3 + view.getUint16(pos); break;
        case 0xc9: if (!need(4)) return false; skip = 5 + view.getUint32(pos); break;
        case 0xca: case 0xd2: case 0xce: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: if (!need(2)) return false; open = view.getUint16(pos); pos += 2; break;
        case 0xdd: if (!need(4)) return false; open = view.getUint32(pos); pos += 4; break;
        case 0xde: if (!need(2)) return false; open = view.getUint16(pos) * 2; pos += 2; break;
        case 0xdf: if (!need(4)) return false; open = view.getUint32(pos) * 2; pos += 4; break;
        default: return false;
      }
    }
    if (open >= 0) {
      if (stack.length + 1 > maxDepth) return false;
      // Every item takes at least one byte: a count beyond the buffer is a lie.
      if (open > len - pos) return false;
      stack.push(items);
      items = open;
      continue;
    }
    if (!need(skip)) return false;
    pos += skip;
  }
  return pos === len;
}
