import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { SaxesTagPlain } from 'saxes';

/**
 * Reader of the academy's AAF exports (ficAlimMENESR): `addRequest` / `modifyRequest` /
 * `deleteRequest`, each with `operationalAttributes` (`categoriePersonne`), `identifier/id` and
 * `attributes/attr[@name]/value`. Streams the file through saxes in its declared encoding and keeps,
 * of every entry, only the attributes filtering and requisitions need: birth dates, addresses,
 * parents' data and the rest are dropped as they are read.
 */

export type AafKind = 'Eleve' | 'PersEducNat' | 'EtabEducNat' | 'PersRelEleve';
export const AAF_KINDS: readonly AafKind[] = ['EtabEducNat', 'PersEducNat', 'Eleve', 'PersRelEleve'];

/** The attributes kept from an entry; everything else is discarded while parsing. */
export const KEPT_ATTRIBUTES = new Set([
  'ENTPersonJointure', 'ENTPersonStructRattach', 'ENTPersonLogin',
  'ENTEleveMEF', 'ENTEleveClasses', 'ENTEleveNiveau', 'ENTEleveCycle', 'ENTPersonClasses',
  'ENTPersonFonctions', 'ENTStructureJointure', 'ENTStructureUAI', 'ENTStructureNomCourant',
  'sn', 'givenName',
]);

export type Modification = 'add' | 'delete' | 'replace';

export interface AafAttribute {
  values: string[];
  /** modifyRequest only: what to do with the values (the DTD's `modification`, replace by default). */
  modification: Modification;
}

export interface AafOperation {
  op: 'add' | 'modify' | 'delete';
  /** Where the request starts in the file. */
  line: number;
  id: string;
  /** `categoriePersonne`, when the entry carries one. */
  category: string | null;
  attrs: Map<string, AafAttribute>;
}

export interface AafFileName {
  uai: string;
  mode: 'Complet' | 'Delta';
  date: string;
  kind: AafKind;
}

export interface AafFile {
  file: string;
  /** From the file name when it follows the convention, else from the entries. */
  kind: AafKind;
  mode: 'Complet' | 'Delta';
  /** The establishment the file was exported for (file name), or null. */
  uai: string | null;
  date: string | null;
  encoding: string;
  operations: AafOperation[];
}

/** A file refused whole: which file, where, why. */
export class AafError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly reason: string,
  ) {
    super(`${file}${line !== null ? `:${line}` : ''}: ${reason}`);
    this.name = 'AafError';
  }
}

const NAME = /^ENT_([0-9A-Z]{7,8})_(Complet|Delta)_(\d{8})_(Eleve|PersEducNat|EtabEducNat|PersRelEleve)_\d+\.xml$/i;

/** `ENT_<UAI>_Complet_<aaaammjj>_<Kind>_0000.xml`, or null when the name does not follow it. */
export function parseAafFileName(path: string): AafFileName | null {
  const m = NAME.exec(basename(path));
  if (!m) return null;
  const kind = AAF_KINDS.find((k) => k.toLowerCase() === m[4]!.toLowerCase())!;
  return { uai: m[1]!.toUpperCase(), mode: m[2]!.toLowerCase() === 'complet' ? 'Complet' : 'Delta', date: m[3]!, kind };
}

/** Applies order: by date, full exports before deltas, establishments before people. */
export function importOrder(paths: string[]): string[] {
  const key = (p: string): [string, number, number] => {
    const n = parseAafFileName(p);
    return n ? [n.date, n.mode === 'Complet' ? 0 : 1, AAF_KINDS.indexOf(n.kind)] : ['99999999', 2, 9];
  };
  return paths
    .map((p, i) => ({ p, i, k: key(p) }))
    .sort((a, b) => a.k[0].localeCompare(b.k[0]) || a.k[1] - b.k[1] || a.k[2] - b.k[2] || a.i - b.i)
    .map((x) => x.p);
}

/** The encoding the XML declaration names (UTF-8 when none), checked against what iconv-lite knows. */
async function declaredEncoding(path: string, shown: string): Promise<string> {
  const { default: iconv } = await import('iconv-lite');
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(256);
    const { bytesRead } = await fh.read(head, 0, 256, 0);
    const text = head.subarray(0, bytesRead).toString('latin1');
    if (text.startsWith('\xef\xbb\xbf')) return 'utf-8';
    const m = /^<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(text);
    const enc = m ? m[1]!.toLowerCase() : 'utf-8';
    if (!iconv.encodingExists(enc)) throw new AafError(shown, 1, `unsupported encoding "${m![1]}" (expected ISO-8859-15 or UTF-8)`);
    return enc;
  } finally {
    await fh.close();
  }
}

type Place = 'root' | 'request' | 'operational' | 'identifier' | 'attributes' | 'attr' | 'value' | 'id';

/** What may appear under what: anything else makes the file malformed. */
const CHILDREN: Record<Place, Record<string, Place>> = {
  root: { addRequest: 'request', modifyRequest: 'request', deleteRequest: 'request' },
  request: { operationalAttributes: 'operational', identifier: 'identifier', attributes: 'attributes' },
  operational: { attr: 'attr' },
  attributes: { attr: 'attr' },
  attr: { value: 'value' },
  identifier: { id: 'id' },
  value: {},
  id: {},
};

const OPS: Record<string, AafOperation['op']> = { addRequest: 'add', modifyRequest: 'modify', deleteRequest: 'delete' };

/**
 * Parses a whole AAF file. Throws AafError (file, line, reason) when it is not well-formed XML, has
 * another root, an entry without an id, or entries that contradict the file (another kind, a
 * modification in a full export, the same person added twice).
 */
export async function readAafFile(path: string): Promise<AafFile> {
  const shown = basename(path);
  const named = parseAafFileName(path);
  const encoding = await declaredEncoding(path, shown);
  // The XML parser and the decoders load with the first import: proxy threads (which read the
  // directory, never import it) load this module for its types and errors only.
  const [{ SaxesParser }, { default: iconv }] = await Promise.all([import('saxes'), import('iconv-lite')]);
  const parser = new SaxesParser({ fileName: shown, position: true, xmlns: false });
  const operations: AafOperation[] = [];
  const stack: Place[] = [];
  let sawRoot = false;
  let current: AafOperation | null = null;
  let inOperational = false;
  let attr: { name: string; modification: Modification; values: string[]; keep: boolean } | null = null;
  let text = '';
  let failure: AafError | null = null;
  const fail = (reason: string): never => {
    throw new AafError(shown, parser.line, reason);
  };

  parser.on('opentag', (tag: SaxesTagPlain) => {
    const name = tag.name.includes(':') ? tag.name.slice(tag.name.indexOf(':') + 1) : tag.name;
    if (!sawRoot) {
      if (name !== 'ficAlimMENESR') fail(`root element is <${tag.name}>, expected <ficAlimMENESR>`);
      sawRoot = true;
      stack.push('root');
      return;
    }
    const parent = stack[stack.length - 1];
    if (!parent) fail(`<${tag.name}> after the end of <ficAlimMENESR>`);
    const place = CHILDREN[parent!][name];
    if (!place) fail(`unexpected <${tag.name}> in ${parent === 'root' ? '<ficAlimMENESR>' : `<${parent}>`}`);
    stack.push(place!);
    if (place === 'request') current = { op: OPS[name]!, line: parser.line, id: '', category: null, attrs: new Map() };
    else if (place === 'operational') inOperational = true;
    else if (place === 'attr') {
      const attrName = tag.attributes.name;
      if (!attrName) fail('<attr> without a name');
      const mod = (tag.attributes.modification ?? 'replace').toLowerCase();
      if (mod !== 'add' && mod !== 'delete' && mod !== 'replace') fail(`<attr name="${attrName}"> has modification="${mod}" (add, delete or replace)`);
      const keep = inOperational ? attrName === 'categoriePersonne' : KEPT_ATTRIBUTES.has(attrName!);
      attr = { name: attrName!, modification: mod as Modification, values: [], keep };
    } else if (place === 'value' || place === 'id') text = '';
  });

  parser.on('text', (t) => {
    const place = stack[stack.length - 1];
    if (place === 'value' || place === 'id') {
      if (place === 'id' || attr?.keep) text += t;
    } else if (t.trim()) {
      fail(`unexpected text "${t.trim().slice(0, 40)}" in <${place ?? 'document'}>`);
    }
  });

  parser.on('closetag', () => {
    const place = stack.pop();
    if (place === 'value' && attr?.keep) attr.values.push(text.trim());
    else if (place === 'id' && current) current.id = text.trim();
    else if (place === 'attr' && attr && current) {
      if (attr.keep) {
        if (inOperational) current.category = attr.values[0] ?? null;
        else current.attrs.set(attr.name, { values: attr.values, modification: attr.modification });
      }
      attr = null;
    } else if (place === 'operational') inOperational = false;
    else if (place === 'request' && current) {
      if (!current.id) throw new AafError(shown, current.line, `${current.op}Request without identifier/id`);
      if (!/^[^\s$]{1,64}$/.test(current.id)) throw new AafError(shown, current.line, `identifier "${current.id.slice(0, 80)}" is not an AAF id`);
      operations.push(current);
      current = null;
    }
  });

  try {
    const decoder = iconv.getDecoder(encoding);
    for await (const chunk of createReadStream(path)) parser.write(decoder.write(chunk as Buffer));
    const rest = decoder.end();
    if (rest) parser.write(rest);
    parser.close();
    if (!sawRoot) throw new AafError(shown, parser.line, 'no <ficAlimMENESR> element (empty or not an AAF file)');
  } catch (e) {
    if (e instanceof AafError) failure = e;
    else {
      // saxes reports "file:line:column: message".
      const m = /^[^:]*:(\d+):\d+: ([\s\S]*)$/.exec((e as Error).message);
      failure = new AafError(shown, m ? Number(m[1]) : null, m ? `malformed XML: ${m[2]}` : (e as Error).message);
    }
  }
  if (failure) throw failure;
  return checkConsistency({ file: shown, kind: named?.kind ?? inferKind(shown, operations), mode: named?.mode ?? 'Delta', uai: named?.uai ?? null, date: named?.date ?? null, encoding, operations });
}

function inferKind(file: string, ops: AafOperation[]): AafKind {
  const cat = ops.find((o) => o.category)?.category;
  const kind = AAF_KINDS.find((k) => k === cat);
  if (kind) return kind;
  if (ops.some((o) => o.attrs.has('ENTStructureUAI'))) return 'EtabEducNat';
  throw new AafError(file, null, 'cannot tell the kind of file: the name does not follow ENT_<UAI>_<Complet|Delta>_<date>_<Kind>_<n>.xml and no entry has a categoriePersonne');
}

/** Entries that contradict their file make the whole file suspect. */
function checkConsistency(f: AafFile): AafFile {
  const added = new Set<string>();
  for (const op of f.operations) {
    if (op.category && op.category !== f.kind && f.kind !== 'EtabEducNat') {
      throw new AafError(f.file, op.line, `categoriePersonne "${op.category}" in a ${f.kind} file`);
    }
    if (f.mode === 'Complet' && op.op !== 'add') throw new AafError(f.file, op.line, `${op.op}Request in a full (Complet) export`);
    if (op.op === 'add') {
      if (added.has(op.id)) throw new AafError(f.file, op.line, `identifier ${op.id} is added twice`);
      added.add(op.id);
    }
  }
  return f;
}
