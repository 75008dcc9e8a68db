import { Worker } from 'node:worker_threads';

/**
 * A worker thread running `module` (a path beside this file, without extension): the built `.js`,
 * or, when running from source under tsx, the `.ts` with the TypeScript loader registered in the
 * thread too.
 */
export function startThread(module: string, workerData: unknown): Worker {
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(new URL(`./${module}.ts`, here).href)}); })`, { eval: true, workerData })
    : new Worker(new URL(`./${module}.js`, here), { workerData });
}
