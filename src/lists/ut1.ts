import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { EntryProblem } from './map-index.js';
import type { BadLine } from './types.js';

const gunzipAsync = promisify(gunzip);

/** What a list loader feeds: implemented by every index builder. */
export interface ListSink {
  category(name: string): number;
  addDomain(category: number, line: string): EntryProblem;
  addUrl(category: number, line: string): EntryProblem;
  addExpression(category: number, line: string): EntryProblem;
}

/** A sink that also takes `domains` lines as bytes (undefined = "give it to me as a string"). */
export interface ByteListSink extends ListSink {
  addDomainBytes(category: number, buf: Uint8Array, start: number, end: number): EntryProblem | undefined;
}

const hasBytePath = (sink: ListSink): sink is ByteListSink => typeof (sink as Partial<ByteListSink>).addDomainBytes === 'function';

/** ASCII whitespace as String.prototype.trim sees it (the rest of its set is non-ASCII). */
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

export const LIST_FILES = ['domains', 'urls', 'expressions'] as const;
export type ListFile = (typeof LIST_FILES)[number];

export interface LoadReport {
  /** sha256 of every category's files, in name order: changes whenever any entry does. */
  readonly version: string;
  readonly categories: string[];
  readonly badLines: BadLine[];
  readonly badLineCount: number;
  readonly entries: number;
}

const MAX_BAD_LINES_KEPT = 200;

/** Reads `NAME` or `NAME.gz` inside a category folder; null when neither exists. */
async function readListFile(dir: string, file: string): Promise<Buffer | null> {
  try {
    return await readFile(join(dir, file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    return await gunzipAsync(await readFile(join(dir, `${file}.gz`)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${join(dir, file)}.gz: ${(e as Error).message}`);
  }
}

/** Lists the category folders of a UT1-layout directory (folders holding at least one list file). */
export async function listCategories(root: string): Promise<string[]> {
  const dirs = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  const listed = await Promise.all(dirs.map(async (d) => (await readdir(join(root, d))).some((f) => LIST_FILES.some((l) => f === l || f === `${l}.gz`))));
  return dirs.filter((_, i) => listed[i]).sort();
}

/**
 * Feeds every category of a UT1/squidGuard directory into `sink`. Bad lines are counted and the
 * first few kept for the report: one odd line never costs a whole category.
 */
export async function loadUt1Dir(root: string, sink: ListSink, only?: ReadonlySet<string>): Promise<LoadReport> {
  const hash = createHash('sha256');
  const badLines: BadLine[] = [];
  let badLineCount = 0;
  let entries = 0;
  const categories = (await listCategories(root)).filter((c) => !only || only.has(c));
  // Read files concurrently (I/O and gunzip run on the thread pool), parse them in order.
  const contents = await Promise.all(
    categories.map((c) => Promise.all(LIST_FILES.map((f) => readListFile(join(root, c), f)))),
  );
  for (let i = 0; i < categories.length; i++) {
    const name = categories[i]!;
    const id = sink.category(name);
    hash.update(`\0${name}`);
    for (let f = 0; f < LIST_FILES.length; f++) {
      const buf = contents[i]![f];
      if (!buf) continue;
      const file = LIST_FILES[f]!;
      hash.update(`\0${file}\0`);
      hash.update(buf);
      const add = file === 'domains' ? sink.addDomain : file === 'urls' ? sink.addUrl : sink.addExpression;
      const bad = (lineNo: number, text: string, reason: string) => {
        badLineCount++;
        if (badLines.length < MAX_BAD_LINES_KEPT) badLines.push({ category: name, file, line: lineNo, text: text.slice(0, 200), reason });
      };
      if (file === 'domains' && hasBytePath(sink)) {
        entries += feedDomainBytes(sink, id, buf, bad);
        continue;
      }
      const text = buf.toString('utf8');
      let lineNo = 0;
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf('\n', start);
        if (end === -1) end = text.length;
        lineNo++;
        let line = text.slice(start, end);
        start = end + 1;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        const trimmed = line.trim();
        if (!trimmed || trimmed.startsWith('#')) continue;
        const problem = add.call(sink, id, trimmed);
        if (problem) bad(lineNo, trimmed, problem);
        else entries++;
      }
    }
  }
  return { version: hash.digest('hex').slice(0, 16), categories, badLines, badLineCount, entries };
}

/**
 * The `domains` loop without a string per line: the bulk of UT1 (millions of lines) is plain
 * ASCII and goes straight from the file's bytes into the builder. Returns the accepted lines.
 */
function feedDomainBytes(sink: ByteListSink, id: number, buf: Buffer, bad: (line: number, text: string, reason: string) => void): number {
  let accepted = 0;
  let lineNo = 0;
  let start = 0;
  const len = buf.length;
  while (start < len) {
    let end = buf.indexOf(10, start);
    if (end === -1) end = len;
    lineNo++;
    let s = start;
    let e = end;
    start = end + 1;
    while (s < e && isSpace(buf[s]!)) s++;
    while (e > s && isSpace(buf[e - 1]!)) e--;
    if (s === e || buf[s] === 35 /* # */) continue;
    let problem = sink.addDomainBytes(id, buf, s, e);
    let text: string | null = null;
    if (problem === undefined) {
      // Not plain ASCII: the string path decides, exactly as for the other sinks.
      text = buf.toString('utf8', s, e).trim();
      if (!text || text.startsWith('#')) continue;
      problem = sink.addDomain(id, text);
    }
    if (problem) bad(lineNo, text ?? buf.toString('utf8', s, e), problem);
    else accepted++;
  }
  return accepted;
}
