import t from 'tap';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { MapIndexBuilder } from '../src/lists/map-index.js';
import { decide } from '../src/policy/decide.js';
import { buildSnapshot } from '../src/policy/snapshot.js';
import { ScheduleClock } from '../src/policy/schedule.js';

const at = (iso: string) => Date.parse(iso);

t.test('holiday periods close every time window on their dates (both included)', async (t) => {
  const times = { school: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '08:00', to: '18:00' }], holidays: [{ from: '2026-12-19', to: '2027-01-03' }] } as unknown as ConstructorParameters<typeof ScheduleClock>[0];
  const clock = new ScheduleClock(times, 'Europe/Paris');
  t.ok(clock.within('school', at('2026-12-18T10:00:00+01:00')), 'Friday before the holidays: school');
  t.notOk(clock.within('school', at('2026-12-21T10:00:00+01:00')), 'a Monday in the holidays: out of school');
  t.notOk(clock.within('school', at('2027-01-01T10:00:00+01:00')), 'a Friday in the holidays');
  t.ok(clock.within('school', at('2027-01-04T08:30:00+01:00')), 'the day after "to": school again');
  t.notOk(clock.within('holidays', at('2026-12-21T10:00:00+01:00')), '"holidays" is not a window');
  // Local dates: 2026-12-18 23:30 UTC is already the 19th in Paris.
  const late = new ScheduleClock({ school: [{ days: ['fri', 'sat'], from: '00:00', to: '23:59' }], holidays: [{ from: '2026-12-19', to: '2026-12-19' }] } as unknown as ConstructorParameters<typeof ScheduleClock>[0], 'Europe/Paris');
  t.notOk(late.within('school', at('2026-12-18T23:30:00Z')), 'the holiday date is read in the school time zone');
});

t.test('config: times.holidays validated; a profile follows its out-of-school rules on holidays', async (t) => {
  const cfg = resolveConfig({ times: { school: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }], holidays: [{ name: 'Noël', from: '2026-12-19', to: '2027-01-03' }] } });
  const academy = new MapIndexBuilder();
  const ut1b = new MapIndexBuilder();
  ut1b.addDomain(ut1b.category('audio-video'), 'video.test');
  ut1b.addDomain(ut1b.category('games'), 'games.test');
  const snap = buildSnapshot({ config: cfg, ut1: ut1b.build('v'), academy, policyVersion: 1 });
  const req = (host: string, time: string) => ({ client: '127.0.0.3', scheme: 'http' as const, host, port: 80, path: '/', time: at(time) });
  t.match(decide(snap, req('video.test', '2026-12-17T10:00:00+01:00')), { action: 'block', profile: 'cycle2', period: 'within', category: 'audio-video' }, 'cycle2: streaming blocked in school hours');
  t.match(decide(snap, req('video.test', '2026-12-22T10:00:00+01:00')), { action: 'allow', period: 'otherwise' }, 'on a holiday Tuesday: out of school');
  t.match(decide(snap, req('games.test', '2026-12-22T10:00:00+01:00')), { action: 'block', category: 'games' }, 'games stay blocked for cycle2 at every hour');

  const bad = (holidays: unknown, why: RegExp) => {
    try {
      resolveConfig({ times: { school: [{ days: ['mon'], from: '08:00', to: '18:00' }], holidays } });
      t.fail('accepted');
    } catch (e) {
      t.ok(e instanceof ConfigError);
      t.match((e as Error).message, why);
    }
  };
  bad([{ from: '2026-12-19' }], /\/times\/holidays\/0.*to/);
  bad([{ from: '2026-13-01', to: '2026-12-31' }], /\/times\/holidays\/0\/from/);
  bad([{ from: '2027-02-30', to: '2027-03-01' }], /\/times\/holidays\/0.*"2027-02-30" is not a date/);
  bad([{ from: '2027-01-04', to: '2026-12-19' }], /\/times\/holidays\/0.*must not be after/);
  t.throws(() => resolveConfig({ profiles: { x: { mode: 'blocklist', schedule: { within: 'holidays', otherwise: { mode: 'blocklist' } } } }, times: { holidays: [] } }), /unknown time window "holidays"/);
});
