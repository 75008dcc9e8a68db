import { getHeapStatistics } from 'node:v8';
import t from 'tap';
import { releaseHeapWhenIdle } from '../src/heap-release.js';

const physicalMiB = () => getHeapStatistics().total_physical_size / 1048576;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keeps the event loop busy about half of the time for `ms`. */
async function busy(ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const spin = performance.now() + 5;
    while (performance.now() < spin);
    await sleep(5);
  }
}

t.test('after a burst, the first quiet period hands the freed heap back, once', async (t) => {
  let released = 0;
  const stop = releaseHeapWhenIdle(400, () => released++);
  t.teardown(stop);
  // A burst: ~60 MiB of short-lived objects, enough for V8 to grow and then pool pages.
  let keep: unknown[] = [];
  for (let round = 0; round < 3; round++) {
    keep = [];
    for (let i = 0; i < 400_000; i++) keep.push({ i, s: `entry-${i}`, a: [i, i + 1] });
  }
  keep = [];
  const before = physicalMiB();
  await busy(600);
  t.equal(released, 0, 'not while the loop is busy');
  for (let i = 0; i < 60 && released === 0; i++) await sleep(50);
  t.equal(released, 1, 'released in the first quiet period');
  const after = physicalMiB();
  t.ok(after < before - 10, `heap's physical size ${before.toFixed(1)} → ${after.toFixed(1)} MiB`);
  await sleep(1600);
  t.equal(released, 1, 'quiet periods with no work between them release nothing more');
  await busy(900);
  for (let i = 0; i < 60 && released === 1; i++) await sleep(50);
  t.equal(released, 2, 'the next burst is followed by one more release');
});

t.test('a trickle of work never counts as a burst', async (t) => {
  let released = 0;
  const stop = releaseHeapWhenIdle(400, () => released++);
  t.teardown(stop);
  await sleep(1300); // the start-up's release
  const first = released;
  for (let i = 0; i < 40; i++) {
    await sleep(50);
    JSON.parse(JSON.stringify({ small: i })); // well under 1 % of each period
  }
  t.equal(released, first, `no release for a trickle (${first} at start)`);
});
