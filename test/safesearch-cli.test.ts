import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { TEST_LISTS, tmp, writeLists } from './helpers.js';

// Its own file: test/cli.test.ts is already long for one process under the tap timeout.
const run = promisify(execFile);
const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
const check = async (...args: string[]) => (await run(process.execPath, ['--import', 'tsx', CLI, 'check', ...args, '--data', tmp()], { timeout: 60_000 })).stdout;

t.test('vigie check explains a SafeSearch retarget (test/safesearch.test.ts: which profiles get one)', async (t) => {
  const lists = writeLists(tmp(), TEST_LISTS);
  const pupil = JSON.parse(await check('https://www.google.fr/', '--client', '127.0.0.1', '--lists', lists, '--json'));
  t.match(pupil, { action: 'allow', profile: 'cycle3', host: 'www.google.fr', retarget: { engine: 'google', host: 'forcesafesearch.google.com' } });
  const text = await check('http://www.youtube.com/watch?v=x', '--client', '127.0.0.4', '--lists', lists, '--at', '2026-11-24T20:00:00+01:00');
  t.match(text, /connect: +restrictmoderate\.youtube\.com instead \(youtube SafeSearch/);
});
