import type Database from 'better-sqlite3';

/** The link before the first: 32 zero bytes. */
export const GENESIS = Buffer.alloc(32);

/** The chain's last link: what an operator keeps elsewhere to detect a cut or rewritten tail. */
export interface ChainHead {
  id: number;
  /** SHA-256 of the link, hex. */
  hash: string;
}

/**
 * The chain's head as stored: its last link, or, when the purge took every link up to it, the
 * anchor the purge kept (`sqlite_sequence` remembers the last id ever given). `prev` is the hash
 * the next link chains to.
 */
export function readHead(db: Database.Database): { head: ChainHead; prev: Buffer; wt: number } {
  const last = db.prepare('SELECT id, wt, h FROM chain ORDER BY id DESC LIMIT 1').get() as { id: number; wt: number; h: Buffer } | undefined;
  const seq = (db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'chain'`).pluck().get() as number | undefined) ?? 0;
  const id = Math.max(seq, last?.id ?? 0);
  let prev: Buffer;
  if (last && last.id === id) prev = last.h;
  else prev = (db.prepare('SELECT prev FROM anchors WHERE id = ?').pluck().get(id + 1) as Buffer | undefined) ?? GENESIS;
  return { head: { id, hash: prev.toString('hex') }, prev, wt: last?.wt ?? 0 };
}

/** `ID:HASH`, the form printed by `vigie journal head`, ending every export, and taken by `verify --head`. */
export const formatHead = (h: ChainHead): string => `${h.id}:${h.hash}`;

/** Parses `ID:HASH` (a hash of 64 hex digits); throws a sentence saying what is wrong. */
export function parseHead(text: string): ChainHead {
  const m = /^\s*(\d{1,15}):([0-9a-fA-F]{64})\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a chain head (ID:HASH, e.g. 1234:${'0'.repeat(8)}… with 64 hex digits, as \`vigie journal head\` prints it)`);
  return { id: Number(m[1]), hash: m[2]!.toLowerCase() };
}
