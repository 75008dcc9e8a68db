import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadCompiledUt1 } from '../src/lists/cache.js';
import { createLogger } from '../src/log.js';
import { TEST_LISTS, tmp, writeLists } from './helpers.js';

const all = (n: number) => new Uint8Array(n).fill(1);

t.test('compiled once, then loaded from <dataDir>/lists until the sources change', async (t) => {
  const dir = writeLists(tmp(), TEST_LISTS);
  const dataDir = tmp();
  const first = await loadCompiledUt1(dir, { dataDir, worker: true });
  t.equal(first.source, 'built', 'first load compiles (in a worker thread)');
  const files = readdirSync(join(dataDir, 'lists'));
  t.ok(files.includes(`ut1-${first.report.version}.idx`), 'compiled file saved under the content version');
  t.same(first.index.matchHost('x.adult.test', all(first.index.categories.length)), { category: first.index.categories.indexOf('adult'), entry: 'adult.test', kind: 'domain' });

  const second = await loadCompiledUt1(dir, { dataDir });
  t.equal(second.source, 'cache', 'unchanged sources: read from the compiled file');
  t.equal(second.index.version, first.index.version);
  t.same(second.report, first.report, 'the load report survives the restart');
  t.same(second.index.counts(), first.index.counts());
  t.ok(second.index.matchHost('games.test', all(second.index.categories.length)));

  appendFileSync(join(dir, 'games', 'domains'), 'more-games.test\n');
  const third = await loadCompiledUt1(dir, { dataDir });
  t.equal(third.source, 'built', 'a changed source file rebuilds');
  t.not(third.index.version, first.index.version);
  t.ok(third.index.matchHost('more-games.test', all(third.index.categories.length)), 'with the new entry');
  const after = readdirSync(join(dataDir, 'lists')).filter((f) => f.endsWith('.idx'));
  t.same(after, [`ut1-${third.report.version}.idx`], 'the superseded compiled file is removed');
});

t.test('a damaged compiled file is rebuilt, with a warning', async (t) => {
  const dir = writeLists(tmp(), TEST_LISTS);
  const dataDir = tmp();
  const first = await loadCompiledUt1(dir, { dataDir, worker: false });
  writeFileSync(join(dataDir, 'lists', `ut1-${first.report.version}.idx`), 'garbage');
  const lines: string[] = [];
  const again = await loadCompiledUt1(dir, { dataDir, log: createLogger('warn', (l) => lines.push(l)) });
  t.equal(again.source, 'built');
  t.match(lines.join(''), /compiled file unusable, rebuilding/);
  t.ok(again.index.matchHost('malware.test', all(again.index.categories.length)));
});

t.test('a compiled file of an older format is rebuilt, not misread', async (t) => {
  const dir = writeLists(tmp(), TEST_LISTS);
  const dataDir = tmp();
  const first = await loadCompiledUt1(dir, { dataDir, worker: false });
  const file = join(dataDir, 'lists', `ut1-${first.report.version}.idx`);
  // The same bytes under the previous format number: its slots would be read with other flags.
  const bytes = readFileSync(file);
  const header = bytes.toString('latin1', 16, 16 + bytes.readUInt32LE(8));
  t.match(header, /"format":8,/);
  bytes.write(header.replace('"format":8,', '"format":7,'), 16, 'latin1');
  writeFileSync(file, bytes);
  const lines: string[] = [];
  const again = await loadCompiledUt1(dir, { dataDir, log: createLogger('warn', (l) => lines.push(l)) });
  t.equal(again.source, 'built', 'rebuilt from the sources');
  t.match(lines.join(''), /compiled file unusable, rebuilding.*format 7, expected 8/);
  t.ok(again.index.matchHost('x.adult.test', all(again.index.categories.length)));
  const third = await loadCompiledUt1(dir, { dataDir });
  t.equal(third.source, 'cache', 'and the rewritten file is read next time');
});

t.test('an unwritable data dir only costs the cache', async (t) => {
  const dir = writeLists(tmp(), TEST_LISTS);
  const blocker = join(tmp(), 'file');
  writeFileSync(blocker, 'not a directory');
  const lines: string[] = [];
  const r = await loadCompiledUt1(dir, { dataDir: blocker, log: createLogger('warn', (l) => lines.push(l)) });
  t.equal(r.source, 'built');
  t.match(lines.join(''), /cannot save the compiled lists/);
  t.notOk(existsSync(join(blocker, 'lists')));
});

t.test('worker errors come back as clear errors', async (t) => {
  const empty = tmp();
  await t.rejects(loadCompiledUt1(empty, { worker: true }), /no category folder/);
  await t.rejects(loadCompiledUt1(join(empty, 'missing'), { worker: true }), /ENOENT/);
});
