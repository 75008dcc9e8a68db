import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { DICT_LETTERS, dictEntry, END_NUMBERS, endLine, hashLink2, ROW_NUMBERS, rowLine, type WireRow } from './row.js';
import { decodeIds, ENDED_SQL, hasChainFormat, monthRange, unpackK } from './schema.js';
import { checkHeads, recordedHeads, type KnownHead } from './anchor.js';
import { GENESIS } from './head.js';
import type { VerifyProblem } from './types.js';

export type { ProblemKind, VerifyProblem } from './types.js';

export interface VerifyReport {
  ok: boolean;
  entries: number;
  rows: number;
  ends: number;
  /** The last link: keep a copy elsewhere to detect a rewritten or truncated tail. */
  head: { id: number; hash: string };
  problems: VerifyProblem[];
}

/** A row of `chain`: one link and what it covers. */
export interface ChainLinkRow {
  id: number;
  p: number;
  lo: number | null;
  hi: number | null;
  n: number;
  ne: number;
  wt: number;
  h: Buffer;
  ends: Buffer | null;
  /** What the link hashes (row.ts): null or 1 = JSON lines, 2 = numbers and strings once per link. */
  f: number | null;
}

/** A journal row as read for hashing: values and their dictionary ids. */
export interface JournalRawRow {
  id: number;
  t: number;
  client: string | null;
  user: string | null;
  ctx: string | null;
  method: string | null;
  host: string | null;
  po: number | null;
  path: string | null;
  k: number;
  bi: number;
  bo: number;
  du: number;
  rule: string | null;
  /** Dictionary ids (format 2 hashes them with their strings). */
  cl: number;
  us: number | null;
  cx: number;
  mi: number;
  ho: number;
  pa: number | null;
  ri: number;
}

const MAX_PROBLEMS = 1000;

/**
 * `heads`: chain heads kept elsewhere (`--head`), checked with those the journal's events recorded
 * (anchor.ts): a cut tail or a wiped journal verifies otherwise.
 *
 * Re-computes every chain link from the rows as stored (strings resolved, so an edited host name
 * counts as an edited row) and reports what no longer matches: changed or reordered rows (same
 * count, other content), removed rows (fewer), rows added outside any link, removed links.
 */
export function verifyJournal(db: Database.Database, opts: { heads?: readonly KnownHead[] } = {}): VerifyReport {
  const problems: VerifyProblem[] = [];
  const add = (p: VerifyProblem) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  const parts = new Map((db.prepare('SELECT p, base FROM parts').all() as { p: number; base: number }[]).map((r) => [r.p, r.base]));
  const tables = new Set(db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c\\_%' ESCAPE '\\'`).pluck().all() as string[]);
  const anchor = db.prepare('SELECT prev FROM anchors WHERE id = ?').pluck();
  const rowsStmt = new Map<number, Database.Statement>();
  const rowsOf = (p: number) => {
    let s = rowsStmt.get(p);
    if (!s) {
      s = db.prepare(
        `SELECT c.id, c.t, cl.v AS client, us.v AS user, cx.v AS ctx, me.v AS method, ho.v AS host, c.po, pa.v AS path, c.k, c.bi, c.bo, c.du, ru.v AS rule,
           c.cl, c.us, c.cx, (c.k >> 21) AS mi, c.ho, c.pa, ((c.k >> 13) & 255) AS ri
         FROM c_${p} c LEFT JOIN d_client cl ON cl.id = c.cl LEFT JOIN d_user us ON us.id = c.us LEFT JOIN d_ctx cx ON cx.id = c.cx
         LEFT JOIN d_method me ON me.id = (c.k >> 21) LEFT JOIN d_host ho ON ho.id = c.ho LEFT JOIN d_path pa ON pa.id = c.pa
         LEFT JOIN d_rule ru ON ru.id = ((c.k >> 13) & 255)
         WHERE c.id BETWEEN ? AND ? ORDER BY c.id`,
      );
      rowsStmt.set(p, s);
    }
    return s;
  };
  const oneRow = new Map<number, Database.Statement>();
  const endOf = (p: number) => {
    let s = oneRow.get(p);
    if (!s) oneRow.set(p, (s = db.prepare(`SELECT bi, bo, du, k FROM c_${p} WHERE id = ?`)));
    return s;
  };
  const countBetween = new Map<number, Database.Statement>();
  const strayRows = (p: number, after: number, before: number): { n: number; lo: number | null; hi: number | null; tlo: number | null; thi: number | null } => {
    let s = countBetween.get(p);
    if (!s) countBetween.set(p, (s = db.prepare(`SELECT count(*) AS n, min(id) AS lo, max(id) AS hi, min(t) AS tlo, max(t) AS thi FROM c_${p} WHERE id > ? AND id < ?`)));
    return s.get(after, before) as { n: number; lo: number | null; hi: number | null; tlo: number | null; thi: number | null };
  };

  const withFormat = hasChainFormat(db);
  let entries = 0;
  let rows = 0;
  let ends = 0;
  let prev: ChainLinkRow | null = null;
  const lastHi = new Map<number, number>();
  const endsListed = new Map<number, number>();
  db.exec('BEGIN');
  try {
    let after = 0;
    for (;;) {
      const page = db.prepare(`SELECT id, p, lo, hi, n, ne, wt, h, ends, ${withFormat ? 'f' : 'NULL AS f'} FROM chain WHERE id > ? ORDER BY id LIMIT 1000`).all(after) as ChainLinkRow[];
      if (!page.length) break;
      for (const e of page) {
        after = e.id;
        entries++;
        const base = parts.get(e.p);
        const range = { firstId: e.lo, lastId: e.hi, from: null as number | null, to: null as number | null };
        let prevHash: Buffer;
        if (prev && prev.id === e.id - 1) prevHash = prev.h;
        else {
          const a = (anchor.get(e.id) as Buffer | undefined) ?? (e.id === 1 ? GENESIS : undefined);
          if (!a) {
            add({ kind: 'chain', entry: e.id, firstId: prev?.hi ?? null, lastId: e.lo, from: null, to: null, message: `chain links ${(prev?.id ?? 0) + 1}..${e.id - 1} are missing (not purged): their rows were removed` });
            prevHash = prev?.h ?? GENESIS;
          } else prevHash = a;
        }
        prev = e;
        if (base === undefined || !tables.has(`c_${e.p}`)) {
          add({ kind: 'removed', entry: e.id, ...range, message: `month ${e.p} is missing but its chain links were not purged` });
          continue;
        }
        if (e.f !== null && e.f !== 1 && e.f !== 2) {
          add({ kind: 'changed', entry: e.id, ...range, message: `link ${e.id} names an unknown line format (${e.f}): its rows cannot be checked` });
          continue;
        }
        const v2 = e.f === 2;
        // Format 1 streams into `h`; format 2 gathers its blocks, hashed at the end of the link.
        const h = createHash('sha256').update(prevHash);
        let text = '';
        let nums = new Float64Array(0);
        let nRows = 0;
        const listed = Array.from({ length: DICT_LETTERS.length }, () => new Set<number>());
        const list = (pos: number, id: number, v: string | null) => {
          if (listed[pos]!.has(id)) return;
          listed[pos]!.add(id);
          // A missing dictionary entry gives a form the writer never makes: the hash tells.
          text += v === null ? `${DICT_LETTERS[pos]}${id}=-` : dictEntry(DICT_LETTERS[pos]!, id, v);
        };
        let got: JournalRawRow[] = [];
        if (e.lo !== null && e.hi !== null) {
          const stray = strayRows(e.p, lastHi.get(e.p) ?? 0, e.lo);
          if (stray.n) add({ kind: 'added', entry: null, firstId: stray.lo, lastId: stray.hi, from: stray.tlo! + base, to: stray.thi! + base, message: `${stray.n} row(s) of month ${e.p} are covered by no chain link` });
          lastHi.set(e.p, e.hi);
          got = rowsOf(e.p).all(e.lo, e.hi) as JournalRawRow[];
          if (v2) nums = new Float64Array(got.length * ROW_NUMBERS);
          for (const r of got) {
            const k = unpackK(r.k);
            const connect = k.connect;
            if (v2) {
              nums.set([r.id, r.t + base, connect ? 2 : 1, r.po ?? (connect ? 443 : 80), k.status, k.ended ? 0 : r.bi, k.ended ? 0 : r.bo, k.ended ? 0 : r.du, k.block ? 1 : 0, r.cl, r.us ?? -1, r.cx, r.mi, r.ho, r.pa ?? -1, r.ri], nRows++ * ROW_NUMBERS);
              list(0, r.cl, r.client);
              if (r.us !== null) list(1, r.us, r.user);
              list(2, r.cx, r.ctx);
              list(3, r.mi, r.method);
              list(4, r.ho, r.host);
              if (r.pa !== null) list(5, r.pa, r.path);
              list(6, r.ri, r.rule);
              continue;
            }
            let ctx: [string | null, string | null, number] = [null, null, -1];
            try {
              ctx = JSON.parse(r.ctx ?? 'null') ?? ctx;
            } catch {
              // an edited context: the hash tells
            }
            const w: WireRow = [r.id, r.t + base, r.client ?? '', r.user, ctx[0], r.method ?? '', connect ? 'connect' : 'http', r.host ?? '', r.po ?? (connect ? 443 : 80), r.path, k.status, k.ended ? 0 : r.bi, k.ended ? 0 : r.bo, k.ended ? 0 : r.du, k.block ? 'block' : 'allow', ctx[1], r.rule ?? '', ctx[2]];
            h.update(rowLine(w)).update('\n');
          }
          if (got.length) {
            range.from = Math.min(...got.map((r) => r.t)) + base;
            range.to = Math.max(...got.map((r) => r.t)) + base;
          }
          rows += got.length;
        }
        const endIds = decodeIds(e.ends);
        let endsMissing = 0;
        const endNums: number[] = [];
        for (const id of endIds) {
          const r = endOf(e.p).get(id) as { bi: number; bo: number; du: number; k: number } | undefined;
          if (!r || !unpackK(r.k).ended) {
            endsMissing++;
            continue;
          }
          if (v2) endNums.push(id, r.bi, r.bo, r.du);
          else h.update(endLine(id, r.bi, r.bo, r.du)).update('\n');
        }
        ends += endIds.length;
        endsListed.set(e.p, (endsListed.get(e.p) ?? 0) + endIds.length);
        const digest = v2 ? hashLink2(prevHash, nRows, nums, endNums.length / END_NUMBERS, new Float64Array(endNums), text) : h.digest();
        const ok = digest.equals(e.h);
        if (got.length < e.n) add({ kind: 'removed', entry: e.id, ...range, message: `${e.n - got.length} of ${e.n} row(s) removed from link ${e.id} (ids ${e.lo}..${e.hi})` });
        else if (got.length > e.n) add({ kind: 'added', entry: e.id, ...range, message: `${got.length - e.n} row(s) inserted into link ${e.id} (ids ${e.lo}..${e.hi})` });
        else if (endsMissing) add({ kind: 'removed', entry: e.id, ...range, message: `${endsMissing} tunnel end(s) of link ${e.id} are gone` });
        else if (!ok) add({ kind: 'changed', entry: e.id, ...range, message: `link ${e.id} does not match: row(s) ids ${e.lo ?? '-'}..${e.hi ?? '-'} (or tunnel ends written with them) were changed or reordered` });
      }
    }
    for (const [p, base] of parts) {
      if (!tables.has(`c_${p}`)) continue;
      const stray = strayRows(p, lastHi.get(p) ?? 0, Number.MAX_SAFE_INTEGER);
      if (stray.n) add({ kind: 'added', entry: null, firstId: stray.lo, lastId: stray.hi, from: stray.tlo! + base, to: stray.thi! + base, message: `${stray.n} row(s) of month ${p} are covered by no chain link` });
      const endedRows = db.prepare(`SELECT count(*) FROM c_${p} c WHERE ${ENDED_SQL} = 1`).pluck().get() as number;
      const listed = endsListed.get(p) ?? 0;
      if (endedRows > listed) add({ kind: 'added', entry: null, firstId: null, lastId: null, from: monthRange(p).start, to: monthRange(p).end - 1, message: `${endedRows - listed} tunnel end(s) of month ${p} are covered by no chain link` });
    }
    // Anchored outside the chain: heads the journal recorded, and those the operator kept.
    for (const p of checkHeads(db, [...(opts.heads ?? []), ...recordedHeads(db)])) add(p);
  } finally {
    db.exec('COMMIT');
  }
  const head = prev ? { id: prev.id, hash: prev.h.toString('hex') } : { id: 0, hash: GENESIS.toString('hex') };
  return { ok: problems.length === 0, entries, rows, ends, head, problems };
}
