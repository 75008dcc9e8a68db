import type Database from 'better-sqlite3';
import type { ChainHead } from './head.js';
import type { VerifyProblem } from './types.js';

/** A head known from outside the chain: an event of the journal, or one given by the operator. */
export interface KnownHead {
  head: ChainHead;
  /** Where it comes from: `--head`, `event start #12`, ... */
  source: string;
  /** When it was recorded (ms), when known. */
  time: number | null;
  /** The last row id at that head, when recorded. */
  lastId: number | null;
}

/** The heads the journal's own `events` recorded (starts, stops, unclean stops, backups), one per distinct head. */
export function recordedHeads(db: Database.Database): KnownHead[] {
  const seen = new Set<string>();
  const out: KnownHead[] = [];
  for (const e of db.prepare('SELECT id, time, kind, detail FROM events ORDER BY id').iterate() as IterableIterator<{ id: number; time: number; kind: string; detail: string }>) {
    let d: { head?: { id?: unknown; hash?: unknown }; lastId?: unknown };
    try {
      d = JSON.parse(e.detail) as typeof d;
    } catch {
      continue;
    }
    const h = d?.head;
    if (!h || typeof h.id !== 'number' || typeof h.hash !== 'string') continue;
    const key = `${h.id}:${h.hash}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ head: { id: h.id, hash: h.hash }, source: `event ${e.kind} #${e.id}`, time: e.time, lastId: typeof d.lastId === 'number' ? d.lastId : null });
  }
  return out;
}

const iso = (t: number | null) => (t === null ? '' : ` at ${new Date(t).toISOString()}`);

/**
 * Compares the chain with heads kept elsewhere. The chain proves its rows, but not that it was
 * not cut: deleting the last links with their rows, or every row, leaves a chain that verifies.
 * A head recorded earlier (in `events`, an export, a report, the academy's copy) must still be a
 * link of the chain, or the anchor the purge kept for it; a head past the chain's end means the
 * tail was cut, from the row after the last one kept.
 */
export function checkHeads(db: Database.Database, heads: readonly KnownHead[]): VerifyProblem[] {
  const problems: VerifyProblem[] = [];
  const last = db.prepare('SELECT max(id) AS id, max(hi) AS hi FROM chain').get() as { id: number | null; hi: number | null };
  const seq = (db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'chain'`).pluck().get() as number | undefined) ?? 0;
  const high = Number(db.prepare(`SELECT v FROM meta WHERE k = 'high'`).pluck().get() ?? 0);
  const anchor = db.prepare('SELECT prev FROM anchors WHERE id = ?').pluck();
  const link = db.prepare('SELECT h, lo FROM chain WHERE id = ?');
  const lastLink = last.id ?? 0;
  const lastRow = last.hi ?? 0;
  let tail = lastLink;
  const cut = (upTo: number, why: string, lastId: number | null) => {
    const to = Math.max(lastId ?? 0, high);
    problems.push({
      kind: 'removed',
      entry: lastLink + 1,
      firstId: lastRow + 1,
      lastId: to > lastRow ? to : null,
      from: null,
      to: null,
      message: `the tail was cut: rows from id ${lastRow + 1}${to > lastRow ? ` to ${to}` : ''} and links ${lastLink + 1}..${upTo} are gone (${why}); the journal now ends at link ${lastLink}`,
    });
  };
  if (seq > lastLink) {
    // Every link up to seq was purged (the purge keeps the last one's hash as an anchor), or cut.
    if (anchor.get(seq + 1) !== undefined && lastLink === 0) tail = seq;
    else {
      cut(seq, `SQLite numbered links up to ${seq}`, null);
      return problems;
    }
  } else if (high > lastRow && lastLink > 0) {
    problems.push({ kind: 'removed', entry: null, firstId: lastRow + 1, lastId: high, from: null, to: null, message: `rows ${lastRow + 1}..${high} were written (the journal's own count) but no link covers them any more` });
  }
  const beyond = heads.filter((k) => k.head.id > tail).sort((a, b) => b.head.id - a.head.id);
  if (beyond.length) {
    const k = beyond[0]!;
    cut(k.head.id, `link ${k.head.id} was the head (${k.source}${iso(k.time)})`, k.lastId);
  }
  for (const k of heads) {
    if (k.head.id > tail || k.head.id === 0) continue;
    const l = link.get(k.head.id) as { h: Buffer; lo: number | null } | undefined;
    const stored = l?.h ?? (anchor.get(k.head.id + 1) as Buffer | undefined);
    // Neither kept nor anchored: purged with its successor, or removed (the chain walk tells).
    if (!stored) continue;
    if (stored.toString('hex') !== k.head.hash.toLowerCase()) {
      problems.push({
        kind: 'chain',
        entry: k.head.id,
        firstId: l?.lo ?? null,
        lastId: null,
        from: null,
        to: null,
        message: `link ${k.head.id} is not the head recorded (${k.source}${iso(k.time)}): the chain was rewritten${l?.lo ? ` from row id ${l.lo}` : ''} at the latest`,
      });
    }
  }
  return problems;
}
