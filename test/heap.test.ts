import t from 'tap';
import { getHeapSpaceStatistics } from 'node:v8';
import { keepYoungGenerationSmall } from '../src/heap.js';

const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

t.test('vigie start keeps the young generation at its size; other commands and explicit flags are left alone', async (t) => {
  t.equal(keepYoungGenerationSmall(['node', 'cli.js', 'journal', 'verify'], []), false, 'not for other commands');
  t.equal(keepYoungGenerationSmall(['node', 'cli.js', 'start'], ['--max-semi-space-size=16']), false, "the operator's semi-space flag wins");
  t.equal(keepYoungGenerationSmall(['node', 'cli.js', 'start'], []), true);
  const before = newSpace();
  // Garbage with survivors, the pattern that made V8 grow the new space to 16-64 MiB per isolate.
  let keep: object[] = [];
  for (let i = 0; i < 2_000_000; i++) {
    keep.push({ i, s: `x${i}` });
    if (keep.length > 100_000) keep = [];
  }
  t.ok(keep.length > 0);
  t.ok(newSpace() <= before, `new space ${newSpace()} bytes, was ${before}: it did not grow`);
});
