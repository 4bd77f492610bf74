/**
 * The HPACK Huffman code (RFC 7541 5.2, Appendix B) for the HTTP/2 codec: encoded length, encoding
 * into a byte buffer, and decoding with a 4-bit state machine built at module load from the generated
 * code table (huffman-table.ts). Strings are latin1: one byte per UTF-16 unit, its low 8 bits, as
 * Buffer's 'latin1' encoding does.
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-table.js';

const EOS = 256;
const LENGTHS = Uint8Array.from(HUFFMAN_LENGTHS);
const CODES = Uint32Array.from(HUFFMAN_CODES);

// Decoder: the states are the 256 internal nodes of the code tree (root = 0). For each state and
// input nibble, TRANSITIONS holds the next state (bits 0-7), the symbol completed inside the nibble
// (bits 8-15, when EMITS is set; the shortest code has 5 bits, so a nibble completes at most one),
// FAILS when the nibble walks into EOS, and ACCEPTS when the bits since the last symbol are a valid
// end of string: all ones and at most 7 of them (RFC 7541 5.2).
const EMITS = 1 << 16;
const FAILS = 1 << 17;
const ACCEPTS = 1 << 18;
const TRANSITIONS = buildTransitions();

function buildTransitions(): Uint32Array {
  // children[2 * node + bit]: >= 0 an internal node, < 0 the leaf of symbol -(value + 1).
  const children = new Int32Array(512);
  const depth = new Uint8Array(256);
  const allOnes = new Uint8Array(256);
  allOnes[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = LENGTHS[sym]!;
    const code = CODES[sym]!;
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const bit = (code >>> i) & 1;
      let next = children[2 * node + bit]!;
      if (next === 0) {
        next = nodes++;
        children[2 * node + bit] = next;
        depth[next] = depth[node]! + 1;
        allOnes[next] = allOnes[node]! & bit;
      }
      node = next;
    }
    children[2 * node + (code & 1)] = -(sym + 1);
  }
  if (nodes !== 256) throw new Error(`HPACK Huffman table: ${nodes} internal nodes, a complete code over 257 symbols has 256`);
  const table = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const next = children[2 * node + ((nibble >>> i) & 1)]!;
        if (next >= 0) {
          node = next;
          continue;
        }
        const sym = -next - 1;
        if (sym === EOS) {
          entry |= FAILS;
          break;
        }
        entry |= EMITS | (sym << 8);
        node = 0;
      }
      if (allOnes[node] && depth[node]! <= 7) entry |= ACCEPTS;
      table[state * 16 + nibble] = entry | node;
    }
  }
  return table;
}

/** Bytes the Huffman encoding of s takes (padding included). */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/** Writes the Huffman encoding of s at out[pos]; returns the position after it. out must have room (huffmanEncodedLength). */
export function huffmanEncode(s: string, out: Uint8Array, pos: number): number {
  let acc = 0; // pending bits, fewer than 8 between symbols
  let pending = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = CODES[sym]!;
    let len = LENGTHS[sym]!;
    if (pending + len > 31) {
      // Codes of 25+ bits: shift in the high part first so acc stays within 31 bits.
      const high = len - 16;
      acc = (acc << high) | (code >>> 16);
      pending += high;
      while (pending >= 8) {
        pending -= 8;
        out[pos++] = acc >>> pending;
      }
      acc &= (1 << pending) - 1;
      code &= 0xffff;
      len = 16;
    }
    acc = (acc << len) | code;
    pending += len;
    while (pending >= 8) {
      pending -= 8;
      out[pos++] = acc >>> pending;
    }
    acc &= (1 << pending) - 1;
  }
  // Pad with the most significant bits of EOS (all ones).
  if (pending > 0) out[pos++] = (acc << (8 - pending)) | (0xff >>> pending);
  return pos;
}

/**
 * Decodes the Huffman string in buf[start, end) into out (from 0); returns the decoded length, or -1
 * when the input is invalid (EOS inside, padding longer than 7 bits or not all ones). out must hold
 * (end - start) * 8 / 5 bytes.
 */
export function huffmanDecode(buf: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let n = 0;
  let entry = ACCEPTS;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    entry = TRANSITIONS[(state << 4) | (b >>> 4)]!;
    if (entry & FAILS) return -1;
    if (entry & EMITS) out[n++] = entry >>> 8;
    state = entry & 0xff;
    entry = TRANSITIONS[(state << 4) | (b & 15)]!;
    if (entry & FAILS) return -1;
    if (entry & EMITS) out[n++] = entry >>> 8;
    state = entry & 0xff;
  }
  return entry & ACCEPTS ? n : -1;
}
