import { createHash } from 'node:crypto';
import type pg from 'pg';
import { DICT_LETTERS, dictEntry, END_NUMBERS, endLine, hashLink2, ROW_NUMBERS, rowLine, type WireRow } from '../journal/row.js';
import { decodeIds, monthRange } from '../journal/schema.js';
import '../journal/ship-schema.js';
import type { ChainLinkRow, VerifyProblem } from '../journal/verify.js';
import { GENESIS } from '../journal/writer.js';

/** One gateway's chain in the copy, checked as the gateway's own verify checks its file (verify.ts). */
export interface CopyReport {
  gateway: string;
  ok: boolean;
  entries: number;
  rows: number;
  ends: number;
  /** The copy's last link. */
  head: { id: number; hash: string };
  /** What the gateway's shipper last had acknowledged (vigie_ship): the copy must reach it. */
  acknowledged: { id: number; hash: string } | null;
  problems: (VerifyProblem & { gateway: string })[];
}

/** A link of the copy: the gateway's own link (journal/verify.ts) without its write time. */
type Link = Omit<ChainLinkRow, 'wt'>;

const MAX_PROBLEMS = 1000;
const LINKS_PER_PAGE = 500;

/**
 * Re-computes each link of a gateway from the rows of the copy (strings and dictionary ids as
 * shipped) and reports, with the gateway and the ids, what no longer matches: changed rows,
 * removed or added rows, missing links, and a cut tail (the copy ends before the link the shipper
 * had acknowledged, or at another hash).
 */
export async function verifyCopyGateway(pool: pg.Pool, gateway: string): Promise<CopyReport> {
  const problems: CopyReport['problems'] = [];
  const add = (p: VerifyProblem) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ gateway, ...p });
  };
  const c = await pool.connect();
  let entries = 0;
  let rows = 0;
  let ends = 0;
  let prev: Link | null = null;
  const perMonth = new Map<number, number>();
  let acknowledged: CopyReport['acknowledged'] = null;
  try {
    // One snapshot for the whole walk: rows shipped meanwhile are not half seen.
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const ack = (await c.query('SELECT link, hash FROM vigie_ship WHERE gateway = $1', [gateway])).rows[0];
    if (ack) acknowledged = { id: ack.link, hash: (ack.hash as Buffer).toString('hex') };
    let after = 0;
    for (;;) {
      const page = (await c.query('SELECT id, p, lo, hi, n, ne, h, ends, f FROM vigie_chain WHERE gateway = $1 AND id > $2 ORDER BY id LIMIT $3', [gateway, after, LINKS_PER_PAGE])).rows as Link[];
      if (!page.length) break;
      for (const e of page) {
        after = e.id;
        entries++;
        perMonth.set(e.p, (perMonth.get(e.p) ?? 0) + e.n);
        const { start, end } = monthRange(e.p);
        const range = { firstId: e.lo, lastId: e.hi, from: null as number | null, to: null as number | null };
        let prevHash: Buffer;
        if (prev && prev.id === e.id - 1) prevHash = prev.h;
        else {
          const a = ((await c.query('SELECT prev FROM vigie_anchors WHERE gateway = $1 AND id = $2', [gateway, e.id])).rows[0]?.prev as Buffer | undefined) ?? (e.id === 1 ? GENESIS : undefined);
          if (!a) {
            add({ kind: 'chain', entry: e.id, firstId: prev?.hi ?? null, lastId: e.lo, from: null, to: null, message: `gateway ${gateway}: chain links ${(prev?.id ?? 0) + 1}..${e.id - 1} are missing from the copy` });
            prevHash = prev?.h ?? GENESIS;
          } else prevHash = a;
        }
        prev = e;
        const got = e.lo !== null && e.hi !== null ? (await c.query('SELECT * FROM vigie_rows WHERE gateway = $1 AND t >= $2 AND t < $3 AND id BETWEEN $4 AND $5 ORDER BY id', [gateway, start, end, e.lo, e.hi])).rows : [];
        const v2 = e.f === 2;
        const h = createHash('sha256').update(prevHash);
        const nums = new Float64Array(v2 ? got.length * ROW_NUMBERS : 0);
        let text = '';
        const listed = Array.from({ length: DICT_LETTERS.length }, () => new Set<number>());
        const list = (pos: number, id: number, v: string) => {
          if (listed[pos]!.has(id)) return;
          listed[pos]!.add(id);
          text += dictEntry(DICT_LETTERS[pos]!, id, v);
        };
        got.forEach((r, i) => {
          const connect = r.scheme === 'connect';
          const bi = r.ended ? 0 : r.bytes_in;
          const bo = r.ended ? 0 : r.bytes_out;
          const du = r.ended ? 0 : r.duration_ms;
          if (v2) {
            nums.set([r.id, r.t, connect ? 2 : 1, r.port, r.status, bi, bo, du, r.decision === 'block' ? 1 : 0, r.dcl, r.dus ?? -1, r.dcx, r.dmi, r.dho, r.dpa ?? -1, r.dri], i * ROW_NUMBERS);
            list(0, r.dcl, r.client);
            if (r.dus !== null) list(1, r.dus, r.usr ?? '');
            list(2, r.dcx, JSON.stringify([r.profile, r.category, r.policy_version]));
            list(3, r.dmi, r.method);
            list(4, r.dho, r.host);
            if (r.dpa !== null) list(5, r.dpa, r.path ?? '');
            list(6, r.dri, r.rule);
          } else {
            const w: WireRow = [r.id, r.t, r.client, r.usr, r.profile, r.method, connect ? 'connect' : 'http', r.host, r.port, r.path, r.status, bi, bo, du, r.decision, r.category, r.rule, r.policy_version];
            h.update(rowLine(w)).update('\n');
          }
        });
        if (got.length) {
          range.from = got[0].t;
          range.to = got[got.length - 1].t;
        }
        rows += got.length;
        const endIds = decodeIds(e.ends);
        const endRows = endIds.length ? new Map((await c.query('SELECT id, bytes_in, bytes_out, duration_ms, ended FROM vigie_rows WHERE gateway = $1 AND t >= $2 AND t < $3 AND id = ANY($4::bigint[])', [gateway, start, end, endIds])).rows.map((r) => [r.id as number, r])) : new Map();
        let endsMissing = 0;
        const endNums: number[] = [];
        for (const id of endIds) {
          const r = endRows.get(id);
          if (!r || !r.ended) {
            endsMissing++;
            continue;
          }
          if (v2) endNums.push(id, r.bytes_in, r.bytes_out, r.duration_ms);
          else h.update(endLine(id, r.bytes_in, r.bytes_out, r.duration_ms)).update('\n');
        }
        ends += endIds.length;
        const digest = v2 ? hashLink2(prevHash, got.length, nums, endNums.length / END_NUMBERS, new Float64Array(endNums), text) : h.digest();
        const where = `gateway ${gateway}, link ${e.id} (row ids ${e.lo ?? '-'}..${e.hi ?? '-'})`;
        if (got.length < e.n) add({ kind: 'removed', entry: e.id, ...range, message: `${where}: ${e.n - got.length} of ${e.n} row(s) are missing from the copy` });
        else if (got.length > e.n) add({ kind: 'added', entry: e.id, ...range, message: `${where}: ${got.length - e.n} row(s) inserted` });
        else if (endsMissing) add({ kind: 'removed', entry: e.id, ...range, message: `${where}: ${endsMissing} tunnel end(s) are gone` });
        else if (!digest.equals(e.h)) add({ kind: 'changed', entry: e.id, ...range, message: `${where}: does not match; rows (or tunnel ends written with them) were changed` });
      }
    }
    // Rows no link accounts for, month by month.
    for (const [p, n] of perMonth) {
      const { start, end } = monthRange(p);
      const have = Number((await c.query('SELECT count(*) AS n FROM vigie_rows WHERE gateway = $1 AND t >= $2 AND t < $3', [gateway, start, end])).rows[0].n);
      if (have > n) add({ kind: 'added', entry: null, firstId: null, lastId: null, from: start, to: end - 1, message: `gateway ${gateway}: ${have - n} row(s) of month ${p} are covered by no chain link` });
    }
    const head = prev as Link | null;
    // A purge that dropped the acknowledged link's month left its hash as the next link's anchor.
    const purgedAck = acknowledged && (!head || head.id < acknowledged.id) ? ((await c.query('SELECT prev FROM vigie_anchors WHERE gateway = $1 AND id = $2', [gateway, acknowledged.id + 1])).rows[0]?.prev as Buffer | undefined)?.toString('hex') === acknowledged.hash : false;
    if (acknowledged && (!head || head.id < acknowledged.id) && !purgedAck) {
      const lastRow = head?.hi ?? null;
      add({ kind: 'removed', entry: (head?.id ?? 0) + 1, firstId: lastRow === null ? null : lastRow + 1, lastId: null, from: null, to: null, message: `gateway ${gateway}: the copy ends at link ${head?.id ?? 0} but link ${acknowledged.id} was shipped and acknowledged: its tail (links ${(head?.id ?? 0) + 1}..${acknowledged.id}${lastRow === null ? '' : `, rows after id ${lastRow}`}) was cut` });
    } else if (acknowledged && head && head.id === acknowledged.id && head.h.toString('hex') !== acknowledged.hash) {
      add({ kind: 'changed', entry: head.id, firstId: head.lo, lastId: head.hi, from: null, to: null, message: `gateway ${gateway}: link ${head.id} is not the one acknowledged when it was shipped` });
    }
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  const last = prev as Link | null;
  return { gateway, ok: problems.length === 0, entries, rows, ends, head: last ? { id: last.id, hash: last.h.toString('hex') } : { id: 0, hash: GENESIS.toString('hex') }, acknowledged, problems };
}

/** Every gateway of the copy (or the ones named). */
export async function verifyCopy(pool: pg.Pool, gateways?: string[]): Promise<{ ok: boolean; gateways: CopyReport[] }> {
  const names = gateways?.length ? gateways : ((await pool.query('SELECT gateway FROM vigie_ship UNION SELECT gateway FROM vigie_gateways ORDER BY 1')).rows.map((r) => r.gateway as string));
  const reports: CopyReport[] = [];
  for (const g of names) reports.push(await verifyCopyGateway(pool, g));
  return { ok: reports.every((r) => r.ok), gateways: reports };
}
