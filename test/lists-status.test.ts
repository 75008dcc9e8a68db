import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { TEST_LISTS, tmp, writeLists } from './helpers.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const vigie = async (...args: string[]) => (await run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeout: 120_000 })).stdout;

t.test('vigie lists status: entries by kind, source, version and data age; empty blocked categories', async (t) => {
  const lists = writeLists(tmp(), { ...TEST_LISTS, adult: { urls: ['example.test/adult-corner'] } });
  writeFileSync(join(lists, 'snapshot.json'), JSON.stringify({ date: '2026-11-01T00:00:00Z' }));
  const data = tmp();
  const s = JSON.parse(await vigie('lists', 'status', '--lists', lists, '--data', data, '--json'));
  t.match(s.sources[0], { source: 'ut1', dataTime: '2026-11-01T00:00:00.000Z', dataFrom: 'snapshot' });
  t.match(s.sources.map((x: { source: string }) => x.source), ['ut1', 'extra/porn-clefspeare13', 'extra/porn-sinfonietta']);
  t.match(s.categories.find((c: { category: string; source: string }) => c.category === 'games' && c.source === 'ut1'), { domains: 1, urls: 0, expressions: 0, dataTime: '2026-11-01T00:00:00.000Z' });
  const extra = s.categories.filter((c: { category: string }) => c.category === 'adult');
  t.same(extra.map((c: { source: string }) => c.source).sort(), ['extra/porn-clefspeare13', 'extra/porn-sinfonietta', 'ut1'], 'adult comes from UT1 and the two extra lists');
  t.ok(extra.find((c: { source: string; domains: number }) => c.source === 'extra/porn-sinfonietta' && c.domains > 50_000), 'the extra list holds its ~60k domains');
  t.notOk(s.emptyCategories.some((e: { category: string }) => e.category === 'adult'), 'adult is filled by the extra lists');

  // With extra lists off, adult is reported empty in the text output.
  const cfg = join(tmp(), 'vigie.json');
  writeFileSync(cfg, JSON.stringify({ lists: { extra: false } }));
  const text = await vigie('lists', 'status', '--config', cfg, '--lists', lists, '--data', data);
  t.match(text, /^ut1: .*version [0-9a-f]{16}, data of 2026-11-01 \(\d+ d old, from snapshot\)/m);
  t.match(text, /^games\s+1\s+0\s+0\s+ut1\s+[0-9a-f]{16}\s+\d+ d$/m);
  t.match(text, /WARNING: category "adult" has no domains entries; profiles college, cycle2, cycle3 block it/);

  // vigie check names the list and the category's label.
  const d = JSON.parse(await vigie('check', 'http://www.pornhub.com/', '--client', '127.0.0.4', '--lists', lists, '--data', data, '--json'));
  t.match(d, { action: 'block', category: 'adult', list: /^extra\//, categoryLabel: { fr: 'Adulte (X)', en: 'Adult (X)' } });
  const line = await vigie('check', 'http://example.test/ADULT-corner/page', '--client', '127.0.0.3', '--lists', lists, '--data', data);
  t.match(line, /BLOCK http:\/\/example\.test\/ADULT-corner\/page/);
  t.match(line, /category: adult \(Adulte \(X\) \/ Adult \(X\)\)\n\s+list:\s+ut1\n\s+entry:\s+example\.test\/adult-corner \(url\)/);
});
