import { holidaysOf, windowsOf, type Day, type TimeSlot } from '../config/types.js';
import { zoneFor, type Zone } from '../time-zone.js';

const DAYS: Day[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const toMinutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

interface LocalTime {
  day: Day;
  minute: number;
  /** Local date, "YYYY-MM-DD". */
  date: string;
  /** The date falls in a holiday period. */
  holiday: boolean;
}

/**
 * Named time windows evaluated in the school's time zone (squidGuard's `time` blocks), closed on
 * the dates of `times.holidays` (out of school). Converting a timestamp to local time is costly,
 * so the result is memoised per minute.
 */
export class ScheduleClock {
  private readonly zone: Zone;
  private readonly windows: Map<string, { days: Set<Day>; from: number; to: number }[]>;
  private readonly holidays: { from: string; to: string }[];
  private memoMinute = -1;
  private memo: LocalTime = { day: 'mon', minute: 0, date: '', holiday: false };

  constructor(times: Record<string, TimeSlot[]>, readonly timezone: string) {
    this.zone = zoneFor(timezone);
    this.windows = new Map(windowsOf(times).map(([name, slots]) => [name, slots.map((s) => ({ days: new Set(s.days), from: toMinutes(s.from), to: toMinutes(s.to) }))]));
    this.holidays = holidaysOf(times).map((h) => ({ from: h.from, to: h.to }));
  }

  localTime(timeMs: number): LocalTime {
    const minute = Math.floor(timeMs / 60_000);
    if (minute === this.memoMinute) return this.memo;
    // The wall clock, read with the UTC getters of the instant shifted by the zone's offset.
    const wall = new Date(minute * 60_000 + this.zone.offsetAt(minute * 60_000));
    const day = DAYS[wall.getUTCDay()]!;
    const date = wall.toISOString().slice(0, 10);
    // ISO dates compare as strings.
    const holiday = this.holidays.some((p) => date >= p.from && date <= p.to);
    this.memoMinute = minute;
    this.memo = { day, minute: wall.getUTCHours() * 60 + wall.getUTCMinutes(), date, holiday };
    return this.memo;
  }

  /** True when `timeMs` falls inside the named window: [from, to) on one of its days, on no holiday. */
  within(window: string, timeMs: number): boolean {
    const slots = this.windows.get(window);
    if (!slots) return false;
    const t = this.localTime(timeMs);
    if (t.holiday) return false;
    for (const s of slots) if (s.days.has(t.day) && t.minute >= s.from && t.minute < s.to) return true;
    return false;
  }
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;

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
  const zone = zoneFor(timezone);
  // The offset at the wall time read as UTC is right but near a DST change; once more settles it.
  const first = wall - zone.offsetAt(wall);
  return wall - zone.offsetAt(first);
}
