/**
 * A fast 32-bit string hash (MurmurHash3 x86_32 over UTF-16 code units) for consistent hashing:
 * ring-hash points, maglev permutations and request hash keys. In: a string and a seed. Out: an
 * unsigned 32-bit integer. Not Envoy's xxHash64, so the same key may land on a different host
 * than in Envoy; the contract (same key -> same host while membership is stable, minimal
 * movement on change) is the same.
 */
export function hash32(text: string, seed = 0): number {
  let h = seed >>> 0;
  const n = text.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = (text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Combines two hashes (for several hash policies on one route). */
export function combineHash(a: number, b: number): number {
  return hash32(`${a}:${b}`);
}
