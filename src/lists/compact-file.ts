import type { CategoryCounts } from './types.js';

/**
 * The compiled list file: magic, header length, JSON header, then the index's typed arrays as
 * 8-aligned sections. Loading makes the sections views on the file's bytes, so a file read into
 * a SharedArrayBuffer is one copy that every thread of the gateway can view (src/cluster/).
 */

const MAGIC = 'VIGIECI1';
/**
 * 6: three flag bits per slot (HAS_URLS), url hosts in the domain table, `topLevel`.
 * 7: expressions validated for RE2 (files of format 6 may hold ones it refuses).
 * 8: the url rules' paths and their search tables as sections, not in the header: every thread
 *    views them in shared memory instead of holding its own copy (~1.7 MiB for UT1's rules).
 */
const FORMAT = 8;

export interface CompactParts {
  version: string;
  categories: string[];
  counts: CategoryCounts[];
  seeds: [number, number];
  /** Unique domain entries. */
  domains: number;
  /** Some entry or url host is a single label: only then does a lookup probe the TLD. */
  topLevel: boolean;
  domCapacity: number;
  domFp: Int32Array;
  /** Category-set id per domain slot. */
  domSet: Uint16Array | Uint32Array;
  /** The category set id sits in lane 2's bits 2..11 (domSet is then empty). */
  setsEmbedded: boolean;
  /** Bloom filter over the domain table's keys (static-table.ts), in 64-byte blocks. */
  filterBlocks: number;
  domFilter: Int32Array;
  setStart: Uint32Array;
  setMembers: Uint16Array;
  urlCapacity: number;
  urlFp: Int32Array;
  /** Rule-group id per url-host slot. */
  urlGroup: Uint32Array;
  groupStart: Uint32Array;
  ruleOff: Uint32Array;
  ruleLen: Uint32Array;
  ruleCat: Uint16Array;
  /** Every url rule's path, concatenated (rules point into it): one byte a character when all fit. */
  paths: Uint8Array | Uint16Array;
  /** The url rules' search tables (compact-urls.ts: urlRuleTables). */
  urlHead: Int32Array;
  urlHeadMask: Int32Array;
  urlRunFirst: Int32Array;
  urlRunStart: Int32Array;
  urlRunEnd: Int32Array;
  urlByHash: Int32Array;
  urlHashOf: Int32Array;
  expressions: string[][];
}

const URL_TABLES = ['urlHead', 'urlHeadMask', 'urlRunFirst', 'urlRunStart', 'urlRunEnd', 'urlByHash', 'urlHashOf'] as const;
type Section = 'domFp' | 'domSet' | 'setStart' | 'setMembers' | 'urlFp' | 'urlGroup' | 'groupStart' | 'ruleOff' | 'ruleLen' | 'ruleCat' | 'domFilter' | 'paths' | (typeof URL_TABLES)[number];
const SECTIONS: Section[] = ['domFp', 'domSet', 'setStart', 'setMembers', 'urlFp', 'urlGroup', 'groupStart', 'ruleOff', 'ruleLen', 'ruleCat', 'domFilter', 'paths', ...URL_TABLES];
const SIGNED = new Set<Section>(['domFp', 'urlFp', 'domFilter', ...URL_TABLES]);

/** The file's JSON header: every part but the typed arrays, which are sections after it. */
interface Header extends Omit<CompactParts, Section> {
  format: number;
  sections: Record<Section, { offset: number; length: number; width: 1 | 2 | 4 }>;
}

const align8 = (n: number): number => (n + 7) & ~7;

/** `parts` as a compiled file; `shared`: in a SharedArrayBuffer (threads view it without a copy). */
export function serializeCompact(p: CompactParts, shared = false): Uint8Array {
  const sections = {} as Header['sections'];
  let offset = 0;
  for (const s of SECTIONS) {
    const arr = p[s];
    sections[s] = { offset, length: arr.length, width: arr.BYTES_PER_ELEMENT as 1 | 2 | 4 };
    offset += align8(arr.byteLength);
  }
  const header: Header = {
    format: FORMAT, version: p.version, categories: p.categories, counts: p.counts, seeds: p.seeds, domains: p.domains, topLevel: p.topLevel,
    domCapacity: p.domCapacity, setsEmbedded: p.setsEmbedded, filterBlocks: p.filterBlocks, urlCapacity: p.urlCapacity, expressions: p.expressions, sections,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const base = align8(16 + json.length);
  const out = shared ? new Uint8Array(new SharedArrayBuffer(base + offset)) : new Uint8Array(base + offset);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 16);
  for (const s of SECTIONS) {
    const arr = p[s];
    out.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), base + sections[s].offset);
  }
  return out;
}

/** The sum of the sections' bytes (what "bytes per entry" measures; the url paths are a section). */
export const sectionBytes = (p: CompactParts): number => SECTIONS.reduce((n, s) => n + p[s].byteLength, 0);

/** Reads a compiled file: the parts, whose sections are views on `file` (`bytes`, copied once if misaligned). */
export function compactPartsFromBytes(bytes: Uint8Array): { parts: CompactParts; file: Uint8Array } {
  if (bytes.length < 16 || Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1') !== MAGIC) throw new Error('not a compiled Vigie list index (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLen = view.getUint32(8, true);
  if (16 + jsonLen > bytes.length) throw new Error('compiled list index is truncated (header)');
  const header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 16, jsonLen).toString('utf8')) as Header;
  if (header.format !== FORMAT) throw new Error(`compiled list index has format ${header.format}, expected ${FORMAT}`);
  if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
  const base = align8(16 + jsonLen);
  const arrays = {} as Record<Section, Uint8Array | Uint16Array | Uint32Array | Int32Array>;
  for (const s of SECTIONS) {
    const { offset, length, width } = header.sections[s];
    if (base + offset + length * width > bytes.length) throw new Error(`compiled list index is truncated (${s})`);
    const at = bytes.byteOffset + base + offset;
    arrays[s] = width === 1 ? new Uint8Array(bytes.buffer, at, length) : width === 2 ? new Uint16Array(bytes.buffer, at, length) : SIGNED.has(s) ? new Int32Array(bytes.buffer, at, length) : new Uint32Array(bytes.buffer, at, length);
  }
  const parts: CompactParts = {
    version: header.version, categories: header.categories, counts: header.counts, seeds: header.seeds, domains: header.domains, topLevel: header.topLevel === true,
    domCapacity: header.domCapacity, setsEmbedded: header.setsEmbedded, filterBlocks: header.filterBlocks, domFilter: arrays.domFilter as Int32Array, urlCapacity: header.urlCapacity, expressions: header.expressions, paths: arrays.paths as Uint8Array | Uint16Array,
    domFp: arrays.domFp as Int32Array, domSet: arrays.domSet as Uint16Array | Uint32Array, setStart: arrays.setStart as Uint32Array, setMembers: arrays.setMembers as Uint16Array,
    urlFp: arrays.urlFp as Int32Array, urlGroup: arrays.urlGroup as Uint32Array, groupStart: arrays.groupStart as Uint32Array,
    ruleOff: arrays.ruleOff as Uint32Array, ruleLen: arrays.ruleLen as Uint32Array, ruleCat: arrays.ruleCat as Uint16Array,
    ...(Object.fromEntries(URL_TABLES.map((s) => [s, arrays[s]])) as Pick<CompactParts, (typeof URL_TABLES)[number]>),
  };
  return { parts, file: bytes };
}
