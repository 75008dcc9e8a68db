import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../log.js';
import { cacheDirOf, loadCompiledUt1, pruneCompiled } from './cache.js';
import { readUpdateState, statePath, type UpdateState } from './installed.js';
import type { CategoryCounts } from './types.js';
import { listCategories, type LoadReport } from './ut1.js';

/**
 * `vigie lists update`: fetches a UT1 tarball (blacklists.tar.gz layout), verifies it, extracts
 * it under `<dataDir>/lists/ut1-<sha256>`, compiles it and records it as the installed lists.
 * Anything wrong (HTTP error, truncated or malformed archive, checksum mismatch, a category
 * that would drop to zero entries) throws UpdateRejected and leaves the current lists alone.
 */

export { installedUt1Dir, readUpdateState, resolveUt1Dir, type UpdateState } from './installed.js';

export class UpdateRejected extends Error {}

export interface UpdateOptions {
  url: string;
  checksumUrl?: string | null;
  dataDir: string;
  maxBytes?: number;
  /** Extraction stops past this many bytes (and past MAX_EXPANSION x the bytes downloaded). */
  maxExtractBytes?: number;
  /** Counts of the lists in use: no category may shrink to less than half of them (unless forced). */
  current?: readonly CategoryCounts[] | null;
  /** Ignore ETag / Last-Modified and fetch anyway, and accept categories that shrink by half or more. */
  force?: boolean;
  timeoutMs?: number;
  progress?: (done: number, total: number | null) => void;
  log?: Logger;
}

export type UpdateResult =
  | { status: 'not-modified'; version: string | null }
  | { status: 'installed'; dir: string; version: string; bytes: number; report: LoadReport; counts: CategoryCounts[]; seconds: number }
  | { status: 'unchanged'; dir: string; version: string };

const MIN_BYTES = 1024;
/** Extracted size allowed per downloaded byte (UT1 compresses ~5x; this stops gzip bombs). */
const MAX_EXPANSION = 20;
const DEFAULT_MAX_EXTRACT = 2 * 1073741824;

async function writeState(dataDir: string, state: UpdateState): Promise<void> {
  const file = statePath(dataDir);
  await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${file}.tmp`, file);
}

/**
 * Decompresses the whole archive once before extracting anything: tar stops quietly at a cut
 * gzip stream, so check the gzip trailer (zlib fails on a truncated stream), the size bound,
 * and the tar end marker (the archive ends with two zeroed 512-byte blocks).
 */
async function verifyArchive(file: string, maxExpanded: number, url: string, why: string): Promise<void> {
  let total = 0;
  let tail = Buffer.alloc(0);
  try {
    await pipeline(
      createReadStream(file),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          total += chunk.length;
          if (total > maxExpanded) return done(new UpdateRejected(`${url}: expands to more than ${maxExpanded} bytes (${why})`));
          tail = Buffer.concat([tail, chunk]).subarray(-1024);
          done();
        },
      }),
    );
  } catch (e) {
    if (e instanceof UpdateRejected) throw e;
    throw new UpdateRejected(`${url}: not a valid tar.gz (${(e as Error).message})`);
  }
  if (total % 512 !== 0 || tail.length < 1024 || tail.some((b) => b !== 0)) throw new UpdateRejected(`${url}: not a valid tar.gz (the tar archive is truncated: no end-of-archive marker)`);
}

/** Finds the expected digest in a checksum file (bare hex, or `sha256sum`/`md5sum` lines). */
export function parseChecksum(text: string, fileName: string): { algorithm: 'md5' | 'sha1' | 'sha256'; hex: string } {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const named = lines.filter((l) => l.includes(fileName));
  for (const line of named.length ? named : lines) {
    const m = /\b([0-9a-fA-F]{64}|[0-9a-fA-F]{40}|[0-9a-fA-F]{32})\b/.exec(line);
    if (m) {
      const hex = m[1]!.toLowerCase();
      return { algorithm: hex.length === 64 ? 'sha256' : hex.length === 40 ? 'sha1' : 'md5', hex };
    }
  }
  throw new UpdateRejected('checksum file holds no md5/sha1/sha256 digest');
}

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new UpdateRejected(`${url}: ${(e as Error).message}`);
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    throw new UpdateRejected(`${url}: HTTP ${res.status}`);
  }
  // A checksum file is a few lines: read at most 64 KiB of it.
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > 65536) {
      await reader.cancel();
      throw new UpdateRejected(`${url}: more than 64 KiB, not a checksum file`);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Where the category folders sit in an extracted tarball: its root, or its single top folder. */
async function findRoot(dir: string): Promise<string | null> {
  if ((await listCategories(dir)).length) return dir;
  const top = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory());
  if (top.length === 1 && (await listCategories(join(dir, top[0]!.name))).length) return join(dir, top[0]!.name);
  return null;
}

/**
 * Categories that would shrink to less than half of their entries (domains + urls) in the lists
 * in use: a broken or partial tarball, never a day's churn. Each as `name (before -> after)`.
 */
export function shrunkCategories(current: readonly CategoryCounts[], next: readonly CategoryCounts[]): string[] {
  const after = new Map(next.map((c) => [c.name, c.domains + c.urls]));
  return current
    .filter((c) => c.domains + c.urls > 0 && (after.get(c.name) ?? 0) * 2 < c.domains + c.urls)
    .map((c) => `${c.name} (${c.domains + c.urls} -> ${after.get(c.name) ?? 0})`);
}

export async function updateUt1(opts: UpdateOptions): Promise<UpdateResult> {
  const t0 = performance.now();
  const maxBytes = opts.maxBytes ?? 512 * 1048576;
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  const listsDir = cacheDirOf(opts.dataDir);
  await mkdir(listsDir, { recursive: true });
  const state = await readUpdateState(opts.dataDir);
  const headers: Record<string, string> = {};
  if (!opts.force && state?.installed && state.url === opts.url) {
    if (state.etag) headers['if-none-match'] = state.etag;
    if (state.lastModified) headers['if-modified-since'] = state.lastModified;
  }

  let res: Response;
  try {
    res = await fetch(opts.url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new UpdateRejected(`${opts.url}: ${(e as Error).message}`);
  }
  if (res.status === 304) {
    await res.body?.cancel();
    return { status: 'not-modified', version: state?.installed?.version ?? null };
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    throw new UpdateRejected(`${opts.url}: HTTP ${res.status}`);
  }
  const lengthHeader = res.headers.get('content-length');
  const expected = lengthHeader !== null ? Number(lengthHeader) : null;
  if (expected !== null && expected > maxBytes) {
    await res.body.cancel();
    throw new UpdateRejected(`${opts.url}: ${expected} bytes announced, more than lists.maxDownloadBytes (${maxBytes})`);
  }

  const work = join(listsDir, `download-${process.pid}-${Date.now()}`);
  await mkdir(work, { recursive: true });
  const archive = join(work, 'blacklists.tar.gz');
  let installedDir: string | null = null;
  try {
    // Download, counting and hashing as it streams.
    const digests: Record<'md5' | 'sha1' | 'sha256', Hash> = { md5: createHash('md5'), sha1: createHash('sha1'), sha256: createHash('sha256') };
    let got = 0;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got > maxBytes) body.destroy(new UpdateRejected(`${opts.url}: more than lists.maxDownloadBytes (${maxBytes}) bytes`));
      for (const h of Object.values(digests)) h.update(chunk);
      opts.progress?.(got, expected);
    });
    try {
      await pipeline(body, createWriteStream(archive));
    } catch (e) {
      if (e instanceof UpdateRejected) throw e;
      throw new UpdateRejected(`${opts.url}: download interrupted after ${got} bytes${expected !== null ? ` of ${expected}` : ''} (${(e as Error).message})`);
    }
    if (expected !== null && got !== expected) throw new UpdateRejected(`${opts.url}: truncated download, ${got} of ${expected} bytes`);
    if (got < MIN_BYTES) throw new UpdateRejected(`${opts.url}: only ${got} bytes, not a UT1 tarball`);
    const sha256 = digests.sha256.digest('hex');
    const sums = { md5: digests.md5.digest('hex'), sha1: digests.sha1.digest('hex'), sha256 };

    if (opts.checksumUrl) {
      const want = parseChecksum(await fetchText(opts.checksumUrl, timeoutMs), basename(new URL(opts.url).pathname));
      if (sums[want.algorithm] !== want.hex) throw new UpdateRejected(`checksum mismatch: ${want.algorithm} of the download is ${sums[want.algorithm]}, ${opts.checksumUrl} says ${want.hex}`);
    }

    const dirName = `ut1-${sha256.slice(0, 16)}`;
    const finalDir = join(listsDir, dirName);
    if (state?.installed?.dir === dirName && existsSync(finalDir)) {
      await writeState(opts.dataDir, { ...state, url: opts.url, etag: res.headers.get('etag'), lastModified: res.headers.get('last-modified') });
      return { status: 'unchanged', dir: finalDir, version: state.installed.version };
    }

    // What the archive may expand to: a multiple of what was really downloaded (a small gzip
    // bomb is refused at its own size, not at the largest download allowed), and the configured cap.
    const maxExtract = Math.min(got * MAX_EXPANSION, opts.maxExtractBytes ?? DEFAULT_MAX_EXTRACT);
    const why = got * MAX_EXPANSION <= (opts.maxExtractBytes ?? DEFAULT_MAX_EXTRACT) ? `${MAX_EXPANSION}x the ${got} bytes downloaded` : 'lists.maxExtractBytes';
    await verifyArchive(archive, maxExtract, opts.url, why);
    // Extract: regular files and folders only, bounded in total size; any tar or gzip error rejects.
    const extractDir = join(work, 'x');
    await mkdir(extractDir);
    let extracted = 0;
    let tooBig = false;
    try {
      // Imported when an update runs: proxy threads load this module and never extract lists.
      const tar = await import('tar');
      await tar.x({
        file: archive,
        cwd: extractDir,
        strict: true,
        filter: (_path, entry) => {
          const type = 'type' in entry ? entry.type : entry.isDirectory() ? 'Directory' : 'File';
          if (type !== 'File' && type !== 'OldFile' && type !== 'Directory') return false;
          extracted += entry.size ?? 0;
          if (extracted > maxExtract) tooBig = true;
          return !tooBig;
        },
      });
    } catch (e) {
      throw new UpdateRejected(`${opts.url}: not a valid tar.gz (${(e as Error).message})`);
    }
    if (tooBig) throw new UpdateRejected(`${opts.url}: expands to more than ${maxExtract} bytes (${why})`);
    const root = await findRoot(extractDir);
    if (!root) throw new UpdateRejected(`${opts.url}: no UT1 category folder (CATEGORY/domains, urls) in the tarball`);

    await rm(finalDir, { recursive: true, force: true });
    await rename(root, finalDir);
    installedDir = finalDir;
    let compiled;
    try {
      compiled = await loadCompiledUt1(finalDir, { dataDir: opts.dataDir, log: opts.log });
    } catch (e) {
      throw new UpdateRejected(`${opts.url}: the lists do not compile (${(e as Error).message})`);
    }
    const counts = compiled.index.counts();
    const shrunk = opts.current && !opts.force ? shrunkCategories(opts.current, counts) : [];
    if (shrunk.length) throw new UpdateRejected(`refusing the update: ${shrunk.length === 1 ? 'category' : 'categories'} ${shrunk.join(', ')} would shrink to less than half of the lists in use (force it with \`vigie lists update --force\`)`);
    const empty = counts.filter((c) => c.domains + c.urls + c.expressions === 0 && compiled.report.categories.includes(c.name));
    if (empty.length === counts.length) throw new UpdateRejected(`${opts.url}: every category is empty`);

    const previous = state?.installed?.dir ?? null;
    await writeState(opts.dataDir, {
      url: opts.url,
      etag: res.headers.get('etag'),
      lastModified: res.headers.get('last-modified'),
      installed: { dir: dirName, version: compiled.report.version, sha256, at: new Date().toISOString(), dataTime: lastModifiedIso(res.headers.get('last-modified')) },
    });
    installedDir = null;
    // Keep the current and the previous download (a manual rollback), drop older ones.
    for (const n of await readdir(listsDir)) {
      if (/^ut1-[0-9a-f]{16}$/.test(n) && n !== dirName && n !== previous) await rm(join(listsDir, n), { recursive: true, force: true });
    }
    return { status: 'installed', dir: finalDir, version: compiled.report.version, bytes: got, report: compiled.report, counts, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await rm(work, { recursive: true, force: true });
    if (installedDir) {
      await rm(installedDir, { recursive: true, force: true });
      await pruneCompiled(listsDir).catch(() => undefined);
    }
  }
}

/** The Last-Modified header as ISO 8601, or null (absent or not a date). */
function lastModifiedIso(h: string | null): string | null {
  const t = h ? Date.parse(h) : NaN;
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** mtime of the state file, for the gateway to notice an update made by `vigie lists update`. */
export async function updateStamp(dataDir: string): Promise<number> {
  try {
    return (await stat(statePath(dataDir))).mtimeMs;
  } catch {
    return 0;
  }
}
