import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on `url`, a module next to its caller: `.js` in dist/, `.ts` when the
 * gateway runs from source (tests, benchmarks). From source the thread needs a TypeScript loader:
 * tap's carries over to workers, tsx's hooks do not, so the thread registers tsx itself first.
 */
export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const source = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(source, { ...options, eval: true });
}

/** `name` beside `caller` (an `import.meta.url`), as `.ts` from source and `.js` from dist/. */
export function siblingModule(caller: string, name: string): URL {
  return new URL(`./${name}${caller.endsWith('.ts') ? '.ts' : '.js'}`, caller);
}
