import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AuditLog, type AuditEntry } from '../src/supervision/audit.js';
import { tmp } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-22T12:00:00Z');

const entry = (daysAgo: number, action: string): string =>
  JSON.stringify({ time: new Date(NOW - daysAgo * DAY).toISOString(), actor: 'sup (t1)', tokenId: 't1', role: 'supervisor', source: '127.0.0.1', action, target: null, outcome: 'ok', status: 200, details: { filter: { client: '10.1.2.3' } } } satisfies AuditEntry) + '\n';

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);

t.test('entries older than the retention go; the purge itself is recorded', async (t) => {
  const dir = tmp();
  const log = new AuditLog(dir, 365);
  writeFileSync(log.file, entry(500, 'journal.search') + entry(400, 'journal.export') + 'not json, among expired lines\n' + entry(300, 'policy.change') + entry(1, 'journal.search'));
  t.equal(await log.purge(NOW), 3, 'two expired entries and the unreadable line between them');
  const kept = lines(log.file);
  t.same(
    kept.map((e) => e.action),
    ['policy.change', 'journal.search', 'audit.purge'],
  );
  t.match(kept[2], { actor: 'vigie', source: 'retention', details: { removed: 3, retentionDays: 365, before: '2025-11-22T12:00:00.000Z' } });
  t.same(
    (await log.query({ limit: 10 })).map((e) => e.action),
    ['audit.purge', 'journal.search', 'policy.change'],
    'queries read the purged file',
  );
  t.equal(await log.purge(NOW), 0, 'nothing more to drop');
  t.equal(lines(log.file).length, 3, 'and nothing written when nothing went');
});

t.test('nothing expired, no file, no retention: nothing changes', async (t) => {
  const dir = tmp();
  const log = new AuditLog(dir, 30);
  t.equal(await log.purge(NOW), 0, 'no file yet');
  const text = entry(10, 'journal.search') + entry(2, 'token.create');
  writeFileSync(log.file, text);
  t.equal(await log.purge(NOW), 0);
  t.equal(readFileSync(log.file, 'utf8'), text, 'the file as it was');
  const unlimited = new AuditLog(dir);
  writeFileSync(log.file, entry(5000, 'journal.search'));
  t.equal(await unlimited.purge(NOW), 0, 'without a retention nothing is purged');
});

t.test('appends asked for during a purge are kept, after it', async (t) => {
  const dir = tmp();
  const log = new AuditLog(dir, 365);
  writeFileSync(log.file, Array.from({ length: 2000 }, (_, i) => entry(400 + i / 100, 'journal.search')).join('') + entry(1, 'policy.change'));
  const purged = log.purge();
  const appended = Promise.all([1, 2, 3].map((i) => log.record({ actor: 'a', tokenId: null, role: 'admin', source: 'cli', action: `token.create`, target: `t${i}`, outcome: 'ok', status: 0 })));
  t.equal(await purged, 2000);
  await appended;
  t.same(
    lines(log.file).map((e) => `${e.action}${e.target ? ` ${e.target}` : ''}`),
    ['policy.change', 'audit.purge', 'token.create t1', 'token.create t2', 'token.create t3'],
  );
});

t.test('the supervision API purges the audit log at start, with the journal retention', async (t) => {
  const dataDir = tmp();
  const file = join(dataDir, 'audit.jsonl');
  writeFileSync(file, JSON.stringify({ time: new Date(Date.now() - 40 * DAY).toISOString(), actor: 'old', tokenId: null, role: null, source: 'cli', action: 'token.create', target: 'x', outcome: 'ok', status: 0 }) + '\n');
  const h = await startApi({ dataDir, journal: { retentionDays: 30 } });
  t.teardown(() => h.close());
  const end = Date.now() + 5000;
  while (!readFileSync(file, 'utf8').includes('audit.purge') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const actions = lines(file).map((e) => e.action);
  t.notOk(actions.includes('token.create'), 'the entry older than 30 days is gone');
  t.ok(actions.includes('audit.purge'), actions.join(','));
});
