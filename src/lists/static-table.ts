/**
 * An immutable open-addressing table of 64-bit fingerprints, laid out in fingerprint order
 * (linear probing with the Robin Hood invariant, built in one pass from sorted input):
 * a lookup starts at the home slot and stops at the first slot holding a larger fingerprint,
 * so a miss reads about as few slots as a hit, nearly always inside one cache line.
 *
 * Slot i holds fp[2i] (lane 1, the sort key) and fp[2i+1] (lane 2); values live in a parallel
 * array. Fingerprints are signed int32 (no heap numbers on the hot path), ordered as such. An empty
 * slot has lane 1 = 0x7fffffff, which fingerprints never take, so the empty slot ends every scan,
 * and one always follows the last entry.
 */

export const EMPTY = 0x7fffffff;
/** Slots per entry: 1/0.85 keeps ~10 bytes a slot under 12 bytes an entry with short scans. */
export const LOAD_FACTOR = 0.85;

/** Multiplier of the home slot: home = ((h1 + 2^31) * scale) | 0, monotone in h1 as the layout needs. */
export const homeScale = (capacity: number): number => capacity / 4294967296;
export const home = (h1: number, scale: number): number => ((h1 + 2147483648) * scale) | 0;

/** Lane 2's low bits, free because fingerprints leave them 0 (hash.ts fin2). */
export const IS_ENTRY = 1; // the slot is a list entry (else only an ancestor of entries)
export const HAS_CHILDREN = 2; // some entry lies below this name: the label walk goes on
export const HAS_URLS = 4; // url rules are keyed by this name: only then is the url table read
export const FLAG_BITS = 3;
/** Bits 3..12 of lane 2 can hold the slot's category set (see CompactIndexBuilder.build). */
export const SET_BITS = 10;
export const EMBED_MASK = -1 << (FLAG_BITS + SET_BITS);

/** The first slot at or after `from` (a home slot or a later one) whose lane 1 is h1, or -1. */
export function findLane1(fp: Int32Array, h1: number, from: number): number {
  for (let i = from; ; i++) {
    const s = fp[i << 1]!;
    if (s === h1) return i;
    if (s > h1) return -1;
  }
}

/** The slot holding fingerprint (h1, h2 & mask), or -1 (mask: the lane-2 bits that are fingerprint). */
export function findSlot(fp: Int32Array, scale: number, h1: number, h2: number, mask = -8): number {
  let i = ((h1 + 2147483648) * scale) | 0;
  h2 &= mask;
  for (;;) {
    const s = fp[i << 1]!;
    if (s === h1) {
      if ((fp[(i << 1) | 1]! & mask) === h2) return i;
    } else if (s > h1) return -1;
    i++;
  }
}

export interface PlacedTable {
  readonly capacity: number;
  readonly fp: Int32Array;
  /** For each slot, the index of its entry in the sorted input, or -1. */
  readonly order: Int32Array;
}

/** Places `n` entries sorted by (h1, h2) and unique; returns slots and where each entry went. */
/**
 * `low[j]` goes into the low lane-2 bits that `mask` leaves out (flags, and the category set
 * when it is embedded); the rest of lane 2 stays fingerprint.
 */
export function placeSorted(h1: Int32Array, h2: Int32Array, n: number, low?: Uint16Array | Uint8Array, mask = -8): PlacedTable {
  const capacity = Math.max(1, Math.ceil(n / LOAD_FACTOR));
  const scale = homeScale(capacity);
  // Entries past the last home spill into a tail; measure it first so the arrays are exact.
  let last = -1;
  for (let j = 0; j < n; j++) {
    const at = home(h1[j]!, scale);
    last = at > last ? at : last + 1;
  }
  const slots = Math.max(capacity, last + 1) + 1;
  const fp = new Int32Array(slots * 2).fill(EMPTY);
  const order = new Int32Array(slots).fill(-1);
  last = -1;
  for (let j = 0; j < n; j++) {
    const at = home(h1[j]!, scale);
    last = at > last ? at : last + 1;
    fp[last << 1] = h1[j]!;
    fp[(last << 1) | 1] = (h2[j]! & mask) | (low ? low[j]! : IS_ENTRY);
    order[last] = j;
  }
  return { capacity, fp, order };
}

/**
 * Sorts parallel arrays by signed h1 with two 16-bit LSD radix passes (stable, so entries with
 * the same fingerprint keep their insertion order), in O(n) and without comparator calls.
 */
export function radixSortByH1(h1: Int32Array, h2: Int32Array, tag: Uint16Array, n: number): { h1: Int32Array; h2: Int32Array; tag: Uint16Array } {
  let a1: Int32Array = h1, a2: Int32Array = h2, at: Uint16Array = tag;
  let b1: Int32Array = new Int32Array(n), b2: Int32Array = new Int32Array(n), bt: Uint16Array = new Uint16Array(n);
  const count = new Uint32Array(65537);
  for (const shift of [0, 16]) {
    count.fill(0);
    // Flipping the sign bit turns signed order into the unsigned order the digits give.
    for (let i = 0; i < n; i++) count[(((a1[i]! ^ 0x80000000) >>> shift) & 0xffff) + 1]!++;
    for (let k = 1; k <= 65536; k++) count[k]! += count[k - 1]!;
    for (let i = 0; i < n; i++) {
      const d = count[((a1[i]! ^ 0x80000000) >>> shift) & 0xffff]!++;
      b1[d] = a1[i]!;
      b2[d] = a2[i]!;
      bt[d] = at[i]!;
    }
    [a1, b1] = [b1, a1];
    [a2, b2] = [b2, a2];
    [at, bt] = [bt, at];
  }
  return { h1: a1, h2: a2, tag: at };
}

/**
 * A blocked Bloom filter over lane 1 of every table key, ~5 bits a key: a few MB that stay in
 * cache and the TLB where the table (tens of MB) does not, so most misses never touch the
 * table. One 64-byte block per key, three bits in it; no false negatives.
 */
export const FILTER_BITS_PER_KEY = 5;

export const filterBlocksFor = (keys: number): number => Math.max(1, Math.ceil((keys * FILTER_BITS_PER_KEY) / 512));

export function filterAdd(f: Int32Array, blocks: number, h1: number): void {
  const base = (((Math.imul(h1, 0x9e3779b1) >>> 0) * blocks) / 4294967296) << 4;
  const g = Math.imul(h1 ^ (h1 >>> 15), 0x2c1b3c6d);
  let b = g & 511;
  f[base + (b >>> 5)]! |= 1 << (b & 31);
  b = (g >>> 9) & 511;
  f[base + (b >>> 5)]! |= 1 << (b & 31);
  b = (g >>> 18) & 511;
  f[base + (b >>> 5)]! |= 1 << (b & 31);
}

export function filterHas(f: Int32Array, blocks: number, h1: number): boolean {
  const base = (((Math.imul(h1, 0x9e3779b1) >>> 0) * blocks) / 4294967296) << 4;
  const g = Math.imul(h1 ^ (h1 >>> 15), 0x2c1b3c6d);
  let b = g & 511;
  if (!(f[base + (b >>> 5)]! & (1 << (b & 31)))) return false;
  b = (g >>> 9) & 511;
  if (!(f[base + (b >>> 5)]! & (1 << (b & 31)))) return false;
  b = (g >>> 18) & 511;
  return (f[base + (b >>> 5)]! & (1 << (b & 31))) !== 0;
}
