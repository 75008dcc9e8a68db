import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A time zone's offset from UTC, read from the system's compiled tz database (TZif files under
 * /usr/share/zoneinfo, or $TZDIR), with Intl as the fallback where there is none. Why not Intl
 * alone: the first `Intl.DateTimeFormat` with a time zone makes ~8 MiB of ICU data resident in
 * each gateway process (measured on Node 24, docs/design/workers.md), for a conversion that a
 * 3 KiB file answers. Both read the same IANA rules; test/time-zone.test.ts holds them against each
 * other over decades for the academies' zones.
 */
export interface Zone {
  /** How far the zone's wall clock is ahead of UTC at `timeMs`, in ms. */
  offsetAt(timeMs: number): number;
}

/** The zone named `name`; throws for a name neither the tz database nor Intl knows. */
export function zoneFor(name: string): Zone {
  return systemZone(name) ?? intlZone(name);
}

const ZONE_NAME = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;

/** The zone from its TZif file; null where there is no such file or it cannot be read. */
export function systemZone(name: string): Zone | null {
  if (!ZONE_NAME.test(name) || name.split('/').includes('..')) return null;
  let data: Buffer;
  try {
    data = readFileSync(join(process.env.TZDIR ?? '/usr/share/zoneinfo', name));
  } catch {
    return null;
  }
  try {
    return parseTzif(data);
  } catch {
    return null;
  }
}

class TzifZone implements Zone {
  constructor(
    /** Transition instants (s), ascending, and the offset (s) in force from each. */
    private readonly times: number[],
    private readonly offsets: number[],
    /** Before the first transition. */
    private readonly initial: number,
    /** After the last transition (the file's footer); null: the last offset stays. */
    private readonly rule: PosixRule | null,
  ) {}

  offsetAt(timeMs: number): number {
    const t = Math.floor(timeMs / 1000);
    const n = this.times.length;
    if (n === 0 || t >= this.times[n - 1]!) {
      if (this.rule) return this.rule.offsetAt(t) * 1000;
      return (n === 0 ? this.initial : this.offsets[n - 1]!) * 1000;
    }
    if (t < this.times[0]!) return this.initial * 1000;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.times[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    return this.offsets[lo]! * 1000;
  }
}

/** RFC 8536: the version 2+ block (64-bit times) and its footer, or version 1 alone. */
export function parseTzif(b: Buffer): Zone {
  const header = (at: number) => {
    if (b.toString('latin1', at, at + 4) !== 'TZif') throw new Error('not a TZif file');
    const c = (i: number) => b.readUInt32BE(at + 20 + 4 * i);
    return { version: b[at + 4]!, isut: c(0), isstd: c(1), leap: c(2), time: c(3), type: c(4), char: c(5) };
  };
  const h1 = header(0);
  const v1Size = h1.time * 5 + h1.type * 6 + h1.char + h1.leap * 8 + h1.isstd + h1.isut;
  const v2 = h1.version >= 0x32;
  const at = v2 ? 44 + v1Size : 0;
  const h = v2 ? header(at) : h1;
  const timeSize = v2 ? 8 : 4;
  let p = at + 44;
  const times: number[] = [];
  for (let i = 0; i < h.time; i++, p += timeSize) times.push(v2 ? Number(b.readBigInt64BE(p)) : b.readInt32BE(p));
  const index = [...b.subarray(p, p + h.time)];
  p += h.time;
  const types: { off: number; dst: boolean }[] = [];
  for (let i = 0; i < h.type; i++, p += 6) types.push({ off: b.readInt32BE(p), dst: b[p + 4] === 1 });
  if (types.length === 0 || index.some((i) => i >= types.length)) throw new Error('bad TZif types');
  p += h.char + h.leap * (timeSize + 4) + h.isstd + h.isut;
  let rule: PosixRule | null = null;
  if (v2 && b[p] === 0x0a) {
    const end = b.indexOf(0x0a, p + 1);
    const footer = b.toString('latin1', p + 1, end === -1 ? b.length : end);
    if (footer) rule = parsePosixTz(footer);
  }
  // RFC 8536 3.2: before the first transition, the first type (time type 0).
  return new TzifZone(times, index.map((i) => types[i]!.off), types[0]!.off, rule);
}

interface RuleDate {
  kind: 'M' | 'J' | 'n';
  month: number;
  week: number;
  day: number;
  /** Seconds after local midnight (may be negative or past 24 h). */
  time: number;
}

interface PosixRule {
  offsetAt(t: number): number;
}

/** A POSIX TZ string (the TZif footer), e.g. `CET-1CEST,M3.5.0,M10.5.0/3`. */
export function parsePosixTz(s: string): PosixRule {
  let i = 0;
  const name = () => {
    if (s[i] === '<') {
      const end = s.indexOf('>', i);
      if (end === -1) throw new Error('bad TZ name');
      i = end + 1;
    } else {
      const start = i;
      while (i < s.length && /[A-Za-z]/.test(s[i]!)) i++;
      if (i - start < 3) throw new Error('bad TZ name');
    }
  };
  const time = (): number => {
    const m = /^([+-])?(\d{1,3})(?::(\d{2}))?(?::(\d{2}))?/.exec(s.slice(i));
    if (!m) throw new Error('bad TZ time');
    i += m[0].length;
    const v = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
    return m[1] === '-' ? -v : v;
  };
  name();
  // POSIX offsets count west of Greenwich: CET-1 is one hour ahead of UTC.
  const std = -time();
  if (i >= s.length) return { offsetAt: () => std };
  name();
  let dst = std + 3600;
  if (i < s.length && s[i] !== ',') dst = -time();
  const date = (): RuleDate => {
    if (s[i] !== ',') throw new Error('bad TZ rule');
    i++;
    let r: RuleDate;
    const m = /^M(\d{1,2})\.(\d)\.(\d)/.exec(s.slice(i));
    if (m) {
      r = { kind: 'M', month: Number(m[1]), week: Number(m[2]), day: Number(m[3]), time: 7200 };
      i += m[0].length;
    } else {
      const j = /^(J?)(\d{1,3})/.exec(s.slice(i));
      if (!j) throw new Error('bad TZ rule');
      r = { kind: j[1] ? 'J' : 'n', month: 0, week: 0, day: Number(j[2]), time: 7200 };
      i += j[0].length;
    }
    if (s[i] === '/') {
      i++;
      r.time = time();
    }
    return r;
  };
  if (i >= s.length) return { offsetAt: () => std };
  const start = date();
  const end = date();
  return {
    offsetAt(t: number): number {
      const year = new Date(t * 1000).getUTCFullYear();
      // The change to summer time happens on the standard clock, the change back on summer time.
      const on = ruleDay(year, start) + start.time - std;
      const off = ruleDay(year, end) + end.time - dst;
      const summer = on < off ? t >= on && t < off : !(t >= off && t < on);
      return summer ? dst : std;
    },
  };
}

/** Midnight (s, as if UTC) of the rule's day in `year`. */
function ruleDay(year: number, r: RuleDate): number {
  const day0 = Date.UTC(year, 0, 1) / 1000;
  if (r.kind === 'n') return day0 + r.day * 86400;
  if (r.kind === 'J') {
    // Day 1..365, February 29th never counted.
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return day0 + (r.day - 1 + (leap && r.day >= 60 ? 1 : 0)) * 86400;
  }
  const first = Date.UTC(year, r.month - 1, 1) / 1000;
  const firstDow = new Date(first * 1000).getUTCDay();
  let d = 1 + ((r.day - firstDow + 7) % 7) + (r.week - 1) * 7;
  const days = new Date(Date.UTC(year, r.month, 0)).getUTCDate();
  while (d > days) d -= 7;
  return first + (d - 1) * 86400;
}

/** Intl's reading of the zone (throws RangeError for an unknown one). */
export function intlZone(name: string): Zone {
  const format = new Intl.DateTimeFormat('en-GB', { timeZone: name, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' });
  return {
    offsetAt(timeMs: number): number {
      const f: Record<string, number> = {};
      for (const p of format.formatToParts(timeMs)) if (p.type !== 'literal') f[p.type] = Number(p.value);
      return Date.UTC(f.year!, f.month! - 1, f.day!, f.hour!, f.minute!, f.second!) - Math.floor(timeMs / 1000) * 1000;
    },
  };
}
