import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '../log.js';
import { AafError, importOrder, parseAafFileName, readAafFile, type AafKind } from './aaf.js';
import type { Directory, ImportResult } from './store.js';

export type FileOutcome =
  | { file: string; status: 'imported'; result: ImportResult; seconds: number }
  | { file: string; status: 'refused'; error: AafError }
  | { file: string; status: 'skipped'; reason: string };

/**
 * Imports AAF files in their natural order (date, full before delta, establishments first), each
 * in one transaction. A refused file changes nothing; the later files of the same kind are skipped,
 * since a delta applied over a missing one would leave the directory wrong.
 */
export async function importFiles(paths: string[], directory: Directory): Promise<FileOutcome[]> {
  const refusedKinds = new Map<AafKind | 'unknown', string>();
  const outcomes: FileOutcome[] = [];
  for (const path of importOrder(paths)) {
    const started = process.hrtime.bigint();
    let file;
    try {
      file = await readAafFile(path);
    } catch (e) {
      const error = e instanceof AafError ? e : new AafError(basename(path), null, (e as Error).message);
      outcomes.push({ file: path, status: 'refused', error });
      // A file whose name does not say its kind could have been any kind: every later one waits.
      refusedKinds.set(parseAafFileName(path)?.kind ?? 'unknown', basename(path));
      continue;
    }
    const earlier = refusedKinds.get(file.kind) ?? refusedKinds.get('unknown');
    if (earlier) {
      outcomes.push({ file: path, status: 'skipped', reason: `an earlier file (${earlier}) was refused; import it again once fixed, then this one` });
      refusedKinds.set(file.kind, earlier);
      continue;
    }
    try {
      const result = directory.apply(file);
      outcomes.push({ file: path, status: 'imported', result, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    } catch (e) {
      const error = e instanceof AafError ? e : new AafError(file.file, null, `not applied: ${(e as Error).message}`);
      outcomes.push({ file: path, status: 'refused', error });
      refusedKinds.set(file.kind, file.file);
    }
  }
  return outcomes;
}

/** One line per file for people: what changed, or why nothing did. */
export function describeOutcome(o: FileOutcome): string {
  if (o.status === 'refused') return `refused  ${o.error.message}`;
  if (o.status === 'skipped') return `skipped  ${basename(o.file)}: ${o.reason}`;
  const r = o.result;
  const parts = [`${r.added} added`, `${r.modified} modified`, `${r.removed} removed`];
  if (r.ignored) parts.push(`${r.ignored} read and not kept`);
  if (r.unknown.length) parts.push(`${r.unknown.length} about unknown people (first: line ${r.unknown[0]!.line}, id ${r.unknown[0]!.id})`);
  return `imported ${r.file} (${r.mode} ${r.kind}): ${parts.join(', ')} in ${o.seconds.toFixed(3)} s`;
}

/**
 * The config's `directory.watch` folder: AAF files dropped there are imported by the running
 * gateway, then moved to `imported/` or, with a `.reason.txt` beside them, to `refused/`. Polled
 * (network shares do not all deliver file events); a file is taken once its size stopped changing.
 */
export class DirectoryWatcher {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly sizes = new Map<string, number>();

  constructor(
    private readonly folder: string,
    private readonly directory: () => Directory,
    private readonly log: Logger,
    private readonly onImported: (outcomes: FileOutcome[]) => void,
    private readonly intervalMs = 30_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.scan(), this.intervalMs);
    this.timer.unref();
    void this.scan();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass: imports the files whose size was the same at the previous pass. */
  async scan(): Promise<FileOutcome[]> {
    if (this.running) return [];
    this.running = true;
    try {
      const names = (await readdir(this.folder, { withFileTypes: true })).filter((d) => d.isFile() && /\.xml$/i.test(d.name)).map((d) => d.name);
      const ready: string[] = [];
      for (const name of names) {
        const size = (await stat(join(this.folder, name))).size;
        if (this.sizes.get(name) === size) ready.push(join(this.folder, name));
        else this.sizes.set(name, size);
      }
      if (!ready.length) return [];
      const outcomes = await importFiles(ready, this.directory());
      for (const o of outcomes) {
        const name = basename(o.file);
        this.sizes.delete(name);
        const to = o.status === 'imported' ? 'imported' : 'refused';
        await mkdir(join(this.folder, to), { recursive: true });
        await rename(o.file, join(this.folder, to, name));
        if (o.status !== 'imported') await writeFile(join(this.folder, to, `${name}.reason.txt`), describeOutcome(o) + '\n');
        if (o.status === 'imported') this.log.info(`directory: ${describeOutcome(o)}`);
        else this.log.error(`directory: ${describeOutcome(o)}`);
      }
      this.onImported(outcomes);
      return outcomes;
    } catch (e) {
      this.log.error(`directory: cannot import from ${this.folder}: ${(e as Error).message}`);
      return [];
    } finally {
      this.running = false;
    }
  }
}
