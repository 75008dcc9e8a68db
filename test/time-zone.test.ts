import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { intlZone, parsePosixTz, systemZone, zoneFor } from '../src/time-zone.js';
import { tmp } from './helpers.js';

// The academies' zones (metropolitan France, the overseas academies, French Polynesia and New
// Caledonia), plus zones whose rules are unusual: southern summers, negative summer time (Dublin),
// half hours, a 45-minute offset, no summer time.
const ZONES = [
  'Europe/Paris', 'Indian/Reunion', 'Indian/Mayotte', 'America/Cayenne', 'America/Martinique', 'America/Guadeloupe',
  'America/Miquelon', 'Pacific/Noumea', 'Pacific/Tahiti', 'Pacific/Wallis', 'UTC', 'Europe/Dublin', 'Europe/London',
  'America/New_York', 'America/Sao_Paulo', 'America/Santiago', 'Australia/Sydney', 'Pacific/Chatham', 'Asia/Kolkata',
  'Asia/Tehran', 'Africa/Casablanca',
];

t.test("the system's tz files give Intl's offsets, 1975-2060 (past the files' last transitions, by their rule)", async (t) => {
  const missing = ZONES.filter((z) => systemZone(z) === null);
  if (missing.length === ZONES.length) {
    t.comment('no tz database on this machine (/usr/share/zoneinfo): Intl is used, nothing to compare');
    return;
  }
  t.same(missing, [], 'every zone has its file');
  let checked = 0;
  const wrong: string[] = [];
  for (const z of ZONES) {
    const file = systemZone(z)!;
    const intl = intlZone(z);
    // Every 7 h 13 min: all hours of the day and days of the week come round.
    for (let ms = Date.UTC(1975, 0, 1); ms < Date.UTC(2060, 0, 1); ms += 26_000_000 * 3 + 780_000) {
      checked++;
      if (file.offsetAt(ms) !== intl.offsetAt(ms) && wrong.length < 5) wrong.push(`${z} ${new Date(ms).toISOString()}`);
    }
  }
  t.same(wrong, [], `${checked} instants agree`);
});

t.test('Paris changes hour on the last Sundays of March and October, at 01:00 UTC', async (t) => {
  const z = zoneFor('Europe/Paris');
  t.equal(z.offsetAt(Date.UTC(2026, 2, 29, 0, 59)), 3_600_000);
  t.equal(z.offsetAt(Date.UTC(2026, 2, 29, 1, 0)), 7_200_000);
  t.equal(z.offsetAt(Date.UTC(2026, 9, 25, 0, 59)), 7_200_000);
  t.equal(z.offsetAt(Date.UTC(2026, 9, 25, 1, 0)), 3_600_000);
  // A rule read from the footer alone (years past a file's transitions).
  const rule = parsePosixTz('CET-1CEST,M3.5.0,M10.5.0/3');
  t.equal(rule.offsetAt(Date.UTC(2077, 6, 1) / 1000), 7200);
  t.equal(rule.offsetAt(Date.UTC(2077, 11, 1) / 1000), 3600);
  t.equal(parsePosixTz('<+11>-11').offsetAt(0), 39600, 'Nouméa: a quoted name, no summer time');
});

t.test('a name that is no zone is refused; a file that is no TZif falls back to Intl', async (t) => {
  t.throws(() => zoneFor('Mars/Olympus_Mons'), RangeError);
  t.throws(() => zoneFor('../../etc/passwd'));
  t.equal(systemZone('../../etc/passwd'), null, 'no path out of the tz folder');
  const dir = tmp();
  writeFileSync(join(dir, 'Broken'), 'not a tz file');
  const before = process.env.TZDIR;
  process.env.TZDIR = dir;
  t.teardown(() => (before === undefined ? delete process.env.TZDIR : (process.env.TZDIR = before)));
  t.equal(systemZone('Broken'), null);
  t.equal(systemZone('Europe/Paris'), null, 'TZDIR is where the files are read');
  t.equal(zoneFor('Europe/Paris').offsetAt(Date.UTC(2026, 0, 1)), 3_600_000, 'Intl answers then');
});
