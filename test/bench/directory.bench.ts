/**
 * Importing the academy directory: a full (Complet) AAF export of one collège, generated like the
 * academy's (ISO-8859-15, personal attributes the import drops), parsed then applied in one
 * transaction each. Prints time and rows per size; the 1,000 pupils + 100 staff row is the figure
 * the issue asks for, the larger one shows how it scales.
 *
 *   flock /tmp/vigie-bench.lock npm run bench:directory
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readAafFile } from '../../src/directory/aaf.js';
import { Directory } from '../../src/directory/store.js';
import { collegeExport } from '../aaf-helpers.js';
import { tmp } from '../helpers.js';

interface Row {
  label: string;
  files: number;
  bytes: number;
  parseMs: number;
  applyMs: number;
  users: number;
}

const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;

async function run(pupils: number, staff: number): Promise<Row> {
  const dir = tmp('vigie-bench-aaf-');
  const files = collegeExport(dir, '0781234A', '20260901', pupils, staff);
  const db = Directory.open(join(dir, 'data'));
  let parseMs = 0;
  let applyMs = 0;
  for (const f of files) {
    let t = process.hrtime.bigint();
    const parsed = await readAafFile(f);
    parseMs += ms(t);
    t = process.hrtime.bigint();
    db.apply(parsed);
    applyMs += ms(t);
  }
  const users = db.counts().users;
  db.close();
  return { label: `${pupils} pupils + ${staff} staff`, files: files.length, bytes: files.reduce((n, f) => n + statSync(f).size, 0), parseMs, applyMs, users };
}

// One warm-up so the first figure does not carry module loading and JIT.
await run(100, 10);
const rows: Row[] = [];
for (const [p, s] of [[1000, 100], [1000, 100], [1000, 100], [10_000, 1000]] as const) rows.push(await run(p, s));

const pad = (v: string, n: number) => v.padStart(n);
process.stdout.write(`\n${'export'.padEnd(26)}${pad('files', 6)}${pad('KiB', 8)}${pad('parse ms', 10)}${pad('apply ms', 10)}${pad('total ms', 10)}${pad('users', 8)}${pad('users/s', 10)}\n`);
for (const r of rows) {
  const total = r.parseMs + r.applyMs;
  process.stdout.write(`${r.label.padEnd(26)}${pad(String(r.files), 6)}${pad((r.bytes / 1024).toFixed(0), 8)}${pad(r.parseMs.toFixed(1), 10)}${pad(r.applyMs.toFixed(1), 10)}${pad(total.toFixed(1), 10)}${pad(String(r.users), 8)}${pad((r.users / (total / 1000)).toFixed(0), 10)}\n`);
}
process.stdout.write(`\nnode ${process.version}; each export parsed (saxes + iconv-lite) then applied in one SQLite transaction per file.\n`);
