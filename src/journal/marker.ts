import type Database from 'better-sqlite3';
import { readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import { restrict, type FileAccess } from './files.js';
import { readHead, type ChainHead } from './head.js';

/**
 * The journal's "running" marker: a small file beside the database, written when the writer
 * opens and removed after it recorded a clean `stop`. A start that finds one left behind knows the
 * last run ended without closing the journal (kill -9, crash, power loss): the rows that waited in
 * memory then (at most `journal.flushMs` of traffic, plus a write in progress) are lost, and nothing
 * in the file would say so. The writer touches the marker every second, so its time says when that
 * run was last seen alive.
 */
export const markerFile = (dbFile: string): string => dbFile.replace(/\.db$/, '') + '.running';

/** How often the writer thread touches the marker. */
export const HEARTBEAT_MS = 1000;

/** What the `unclean-stop` event records. Times are ms since the epoch. */
export interface UncleanStop {
  /** The last row id known written, and that row's start time (null: an empty journal). */
  lastId: number;
  lastTime: number | null;
  /** When the last transaction was committed (the last link's write time; 0: none). */
  lastWrittenAt: number;
  /** The last run was alive at this time (the marker's last touch, or the last commit if later)... */
  aliveAt: number;
  /** ...and had stopped by this one, at the latest (now): the crash lies in between. */
  foundAt: number;
  /** The chain head as found, for verify. */
  head: ChainHead;
  /** The last run as its marker says (process id, when its journal opened). */
  pid: number | null;
  startedAt: number | null;
}

interface MarkerBody {
  pid: number;
  run: string;
  startedAt: number;
}

/**
 * Looks for a marker left by an earlier run (not this process's: a writer thread started again
 * after dying finds its own, and its losses are counted otherwise). Returns what the event records.
 */
export function findUncleanStop(dbFile: string, db: Database.Database, run: string, now = Date.now()): UncleanStop | null {
  const file = markerFile(dbFile);
  let mtime: number;
  let body: Partial<MarkerBody> = {};
  try {
    mtime = statSync(file).mtimeMs;
  } catch {
    return null;
  }
  try {
    body = JSON.parse(readFileSync(file, 'utf8')) as MarkerBody;
  } catch {
    // half written when the machine went down: the file's time still tells
  }
  if (body.run === run) return null;
  const { head, wt } = readHead(db);
  const lastId = Number(db.prepare(`SELECT v FROM meta WHERE k = 'high'`).pluck().get() ?? 0);
  let lastTime: number | null = null;
  const link = db.prepare('SELECT p FROM chain WHERE lo <= ? AND hi >= ? ORDER BY id DESC LIMIT 1').get(lastId, lastId) as { p: number } | undefined;
  if (link) {
    const r = db.prepare(`SELECT c.t + p.base AS time FROM c_${link.p} c, parts p WHERE p.p = ? AND c.id = ?`).get(link.p, lastId) as { time: number } | undefined;
    lastTime = r?.time ?? null;
  }
  return { lastId, lastTime, lastWrittenAt: wt, aliveAt: Math.max(mtime, wt), foundAt: now, head, pid: body.pid ?? null, startedAt: body.startedAt ?? null };
}

/** Writes this run's marker (with the journal files' access). */
export function writeMarker(dbFile: string, run: string, access: FileAccess, now = Date.now()): void {
  const file = markerFile(dbFile);
  writeFileSync(file, JSON.stringify({ pid: process.pid, run, startedAt: now } satisfies MarkerBody) + '\n', { mode: access.mode });
  restrict(file, access);
}

/** Touches the marker: this run is alive now. Best effort (a full disk shows elsewhere). */
export function touchMarker(dbFile: string, now = new Date()): void {
  try {
    utimesSync(markerFile(dbFile), now, now);
  } catch {
    // removed by hand, or the disk fails: the next start sees no marker or an older time
  }
}

export function removeMarker(dbFile: string): void {
  rmSync(markerFile(dbFile), { force: true });
}

/** The WARN of a start after an unclean stop (the event is in the journal already). */
export function logUncleanStop(log: Logger, u: UncleanStop): void {
  const iso = (t: number | null) => (t ? new Date(t).toISOString() : 'never');
  log.warn('journal: the last run did not close the journal (crash, kill -9 or power loss): the rows it had not written yet are lost; recorded as an "unclean-stop" event', {
    lastId: u.lastId,
    lastRowTime: iso(u.lastTime),
    lastWrittenAt: iso(u.lastWrittenAt),
    aliveAt: iso(u.aliveAt),
    pid: u.pid ?? '?',
  });
}
