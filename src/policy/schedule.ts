import type { Day, TimeSlot } from '../config/types.js';

const DAYS: Record<string, Day> = { Mon: 'mon', Tue: 'tue', Wed: 'wed', Thu: 'thu', Fri: 'fri', Sat: 'sat', Sun: 'sun' };

const toMinutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

interface LocalTime {
  day: Day;
  minute: number;
}

/**
 * Named time windows evaluated in the school's time zone (squidGuard's `time` blocks).
 * Converting a timestamp to local time is costly, so the result is memoised per minute.
 */
export class ScheduleClock {
  private readonly format: Intl.DateTimeFormat;
  private readonly windows: Map<string, { days: Set<Day>; from: number; to: number }[]>;
  private memoMinute = -1;
  private memo: LocalTime = { day: 'mon', minute: 0 };

  constructor(times: Record<string, TimeSlot[]>, readonly timezone: string) {
    this.format = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    this.windows = new Map(
      Object.entries(times).map(([name, slots]) => [name, slots.map((s) => ({ days: new Set(s.days), from: toMinutes(s.from), to: toMinutes(s.to) }))]),
    );
  }

  localTime(timeMs: number): LocalTime {
    const minute = Math.floor(timeMs / 60_000);
    if (minute === this.memoMinute) return this.memo;
    let day: Day = 'mon';
    let h = 0;
    let m = 0;
    for (const part of this.format.formatToParts(timeMs)) {
      if (part.type === 'weekday') day = DAYS[part.value] ?? 'mon';
      else if (part.type === 'hour') h = Number(part.value);
      else if (part.type === 'minute') m = Number(part.value);
    }
    this.memoMinute = minute;
    this.memo = { day, minute: h * 60 + m };
    return this.memo;
  }

  /** True when `timeMs` falls inside the named window: [from, to) on one of its days. */
  within(window: string, timeMs: number): boolean {
    const slots = this.windows.get(window);
    if (!slots) return false;
    const t = this.localTime(timeMs);
    for (const s of slots) if (s.days.has(t.day) && t.minute >= s.from && t.minute < s.to) return true;
    return false;
  }
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;

/** How far `timezone`'s wall clock is ahead of UTC at `timeMs`, in ms. */
function zoneOffset(timeMs: number, format: Intl.DateTimeFormat): number {
  const f: Record<string, number> = {};
  for (const p of format.formatToParts(timeMs)) if (p.type !== 'literal') f[p.type] = Number(p.value);
  return Date.UTC(f.year!, f.month! - 1, f.day!, f.hour!, f.minute!, f.second!) - Math.floor(timeMs / 1000) * 1000;
}

/**
 * An ISO 8601 time as the school means it: with an offset or `Z` it is that instant; without one
 * (`2026-12-07T08:10`, `2026-12-07`) it is a wall-clock time in `timezone` (the config's), as the
 * time windows are. NaN when it is not a time.
 */
export function parseTimeIn(text: string, timezone: string): number {
  const m = LOCAL_TIME.exec(text.trim());
  if (!m) return Date.parse(text);
  const [, y, mo, d, h = '0', mi = '0', s = '0', ms = '0'] = m;
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms.padEnd(3, '0')));
  // Date.UTC rolls 2026-13-45 over into 2027: only a time that reads back the same is one.
  const back = new Date(wall);
  if (!Number.isFinite(wall) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d) || back.getUTCHours() !== Number(h) || back.getUTCMinutes() !== Number(mi) || back.getUTCSeconds() !== Number(s)) return NaN;
  const format = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' });
  // The offset at the wall time read as UTC is right but near a DST change; once more settles it.
  const first = wall - zoneOffset(wall, format);
  return wall - zoneOffset(first, format);
}
