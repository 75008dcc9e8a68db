import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../log.js';

// `sessions`: a trusted system (the ENT, a NAC) that declares who is behind which address, nothing else.
// `referent`: the school's safeguarding referent (CPE, head teacher): sees and handles safeguarding alerts, nothing else.
export const ROLES = ['admin', 'supervisor', 'requisition', 'sessions', 'teacher', 'referent'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** sha256 of the token: the token itself is shown once and never stored. */
  hash: string;
  created: string;
  createdBy: string;
  revoked: string | null;
}

/** What an authenticated request carries (never the token). */
export interface Principal {
  id: string;
  name: string;
  role: Role;
}

export const tokensFile = (dataDir: string) => join(dataDir, 'tokens.json');
export const adminTokenFile = (dataDir: string) => join(dataDir, 'admin.token');

// 256 random bits: a plain sha256 is enough, there is nothing to brute-force.
const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Bearer tokens in `<dataDir>/tokens.json` (mode 0600), hashed. The CLI and the running server
 * share the file: the server looks at it (one stat) on every authentication and re-reads it when
 * it changed, so a token made or revoked with `vigie token` counts from the next request.
 */
export class TokenStore {
  private records: TokenRecord[] = [];
  private byHash = new Map<string, TokenRecord>();
  /** Identity of the file last read (inode, size, mtime); '' when there was none. */
  private stamp = '';
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(readonly file: string) {}

  static async open(dataDir: string): Promise<TokenStore> {
    const s = new TokenStore(tokensFile(dataDir));
    await s.reload(true);
    return s;
  }

  get exists(): boolean {
    return this.stamp !== '';
  }

  private async fileStamp(): Promise<string> {
    try {
      const s = await stat(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return '';
    }
  }

  private async reload(force = false): Promise<void> {
    const stamp = await this.fileStamp();
    if (!force && stamp === this.stamp) return;
    this.stamp = stamp;
    if (!stamp) this.records = [];
    else {
      const doc = JSON.parse(await readFile(this.file, 'utf8')) as { tokens?: TokenRecord[] };
      this.records = Array.isArray(doc.tokens) ? doc.tokens.filter((t) => t && typeof t.hash === 'string' && (ROLES as readonly string[]).includes(t.role)) : [];
    }
    this.byHash = new Map(this.records.filter((r) => !r.revoked).map((r) => [r.hash, r]));
  }

  private async save(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify({ tokens: this.records }, null, 1) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
    this.stamp = await this.fileStamp();
    this.byHash = new Map(this.records.filter((r) => !r.revoked).map((r) => [r.hash, r]));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** The principal for a bearer token, or null. */
  async authenticate(token: string): Promise<Principal | null> {
    // A stat per API call is cheap next to the call; an unreadable file keeps the tokens known.
    await this.serial(() => this.reload()).catch(() => undefined);
    const r = this.byHash.get(hashOf(token));
    return r ? { id: r.id, name: r.name, role: r.role } : null;
  }

  list(): Omit<TokenRecord, 'hash'>[] {
    return this.records.map(({ hash: _h, ...rest }) => rest);
  }

  /** Creates a token; the returned `token` is the only copy there will ever be. */
  create(role: Role, name: string, createdBy: string): Promise<{ token: string; record: Omit<TokenRecord, 'hash'> }> {
    return this.serial(async () => {
      await this.reload();
      const token = `vigie_${randomBytes(32).toString('base64url')}`;
      const record: TokenRecord = { id: `tk_${randomBytes(6).toString('hex')}`, name, role, hash: hashOf(token), created: new Date().toISOString(), createdBy, revoked: null };
      this.records.push(record);
      await this.save();
      const { hash: _h, ...shown } = record;
      return { token, record: shown };
    });
  }

  /** Revokes by id, or by name (every active token with that name). Returns what was revoked. */
  revoke(idOrName: string): Promise<Omit<TokenRecord, 'hash'>[]> {
    return this.serial(async () => {
      await this.reload();
      const hit = this.records.filter((r) => !r.revoked && (r.id === idOrName || r.name === idOrName));
      if (!hit.length) return [];
      const when = new Date().toISOString();
      for (const r of hit) r.revoked = when;
      await this.save();
      return hit.map(({ hash: _h, ...rest }) => rest);
    });
  }

  /**
   * First start: no token file at all. Creates an admin token in `<dataDir>/admin.token` (0600)
   * and logs where it is, never what it is.
   */
  async ensureAdmin(dataDir: string, log: Logger): Promise<string | null> {
    if (this.exists) return null;
    const { token, record } = await this.create('admin', 'admin', 'first start');
    const file = adminTokenFile(dataDir);
    await writeFile(file, token + '\n', { mode: 0o600, flag: 'w' });
    log.warn('supervision: admin token created; read it from the file, then keep it safe (revoke with `vigie token revoke`)', { file, id: record.id });
    return file;
  }
}
