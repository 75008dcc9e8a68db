import t from 'tap';
import { IdleSweeper, tickFor, type IdleMember } from '../src/proxy/idle.js';

const member = (onIdle: () => boolean): IdleMember & { fired: number[] } => {
  const m = {
    idleSince: 0,
    idleLimit: 0,
    fired: [] as number[],
    onIdle: () => (m.fired.push(performance.now()), onIdle()),
  };
  return m;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a member quiet past its limit is ended, never before it', async (t) => {
  const idle = new IdleSweeper(() => 10);
  t.teardown(() => idle.stop());
  const start = performance.now();
  const quiet = member(() => true);
  const busy = member(() => true);
  const limit = 150;
  idle.add(quiet, limit);
  idle.add(busy, limit);
  // The busy member notes activity every 15 ms; a loaded host may stall this loop, and a stall
  // longer than the limit rightly ends it, so the longest gap between notes is measured.
  let last = performance.now();
  let longestGap = 0;
  while (performance.now() - start < 2.5 * limit) {
    await sleep(15);
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    busy.idleSince = idle.now;
  }
  t.equal(quiet.fired.length, 1, 'the quiet member ended once');
  t.ok(quiet.fired[0]! - start >= limit, `not before its limit (${(quiet.fired[0]! - start).toFixed(0)} ms)`);
  if (longestGap < limit - 20) {
    t.equal(busy.fired.length, 0, 'activity noted in idleSince keeps a member');
    t.equal(idle.size, 1, 'an ended member is dropped');
  } else t.comment(`host stalled ${longestGap.toFixed(0)} ms between notes: the busy member's survival is not judged`);
});

t.test('a member that asks to be kept is counted again from the sweep; one that throws is dropped and the others still swept', async (t) => {
  const idle = new IdleSweeper(() => 10);
  t.teardown(() => idle.stop());
  let keep = true;
  const kept = member(() => !keep);
  const thrower = member(() => {
    throw new Error('boom');
  });
  idle.add(thrower, 20);
  idle.add(kept, 40);
  await sleep(90);
  t.equal(thrower.fired.length, 1, 'the throwing member was called once, then dropped');
  t.ok(kept.fired.length >= 1, 'the kept member was asked');
  const asked = kept.fired.length;
  keep = false;
  await sleep(120);
  t.equal(kept.fired.length, asked + 1, 'asked again a limit later, and ended');
  t.equal(idle.size, 0);
});

t.test('the sweep stops with its last member and after stop()', async (t) => {
  const idle = new IdleSweeper(() => 10);
  const m = member(() => true);
  idle.add(m, 10);
  await sleep(60);
  t.equal(m.fired.length, 1);
  idle.stop();
  const late = member(() => true);
  idle.add(late, 10);
  await sleep(50);
  t.equal(late.fired.length, 0, 'nothing is swept once stopped');
});

t.test('tick: an eighth of the shortest limit, between 10 ms and 1 s', async (t) => {
  t.equal(tickFor(10_000, 120_000, 60_000), 1000);
  t.equal(tickFor(400, 5000), 50);
  t.equal(tickFor(20), 10);
});
