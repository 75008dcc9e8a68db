/**
 * Fingerprints of hostnames (two 32-bit lanes), folded from the LAST character to the first:
 * walking a host right to left yields the fingerprint of every parent domain on the way, so the
 * label walk of a lookup hashes each character once and allocates nothing.
 *
 * Two independent 32-bit lanes, each seeded per build (the seed is stored in the compiled file):
 * the engine keeps fingerprints, not the names, so a seed nobody outside the box knows keeps
 * crafted look-alikes from aiming at a listed fingerprint.
 */

/** One character into lane 1 (FNV-1a style: xor then multiply). */
export const step1 = (h: number, c: number): number => Math.imul(h ^ c, 0x01000193);

/** One character into lane 2 (add, multiply, shift-xor: a different algebra from lane 1). */
export const step2 = (h: number, c: number): number => {
  const x = Math.imul(h + c, 0x85ebca77);
  return x ^ (x >>> 15);
};

/** murmur3's fmix32 with the length mixed in, so "a.b" and a longer string with equal state differ. */
export function fin1(h: number, len: number): number {
  let x = (h + Math.imul(len, 0x9e3779b1)) | 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  // int32 all the way (no heap numbers); the largest int32 marks an empty slot in the tables.
  return x === 0x7fffffff ? 0x7ffffffe : x;
}

export function fin2(h: number, len: number): number {
  let x = (h ^ Math.imul(len, 0x27d4eb2f)) | 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x2c1b3c6d);
  x ^= x >>> 12;
  x = Math.imul(x, 0x297a2d39);
  x ^= x >>> 15;
  // The three low bits are the table's per-slot flags (see static-table.ts): 61 fingerprint bits.
  return x & FLAG_MASK;
}

export const FLAG_MASK = -8;

/** Fingerprint of a whole string, into out[0], out[1]. */
export function fingerprint(s: string, seed1: number, seed2: number, out: Int32Array | number[]): void {
  let a = seed1;
  let b = seed2;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    a = step1(a, c);
    b = step2(b, c);
  }
  out[0] = fin1(a, s.length);
  out[1] = fin2(b, s.length);
}

/** A fresh random seed pair (never 0, so an all-zero file cannot pass for a valid one). */
export function randomSeeds(): [number, number] {
  const r = new Int32Array(2);
  globalThis.crypto.getRandomValues(r);
  return [r[0]! | 1, r[1]! | 0x100];
}

/** Lane 2 of host[start..]: computed once per lookup, for the name lane 1 found (CompactIndex.walk). */
export function lane2(s2: number, host: string, start: number): number {
  let b = s2;
  for (let i = host.length - 1; i >= start; i--) {
    b = Math.imul(b + host.charCodeAt(i), 0x85ebca77);
    b ^= b >>> 15;
  }
  return fin2(b, host.length - start);
}
