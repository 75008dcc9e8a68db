import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../log.js';

// `sessions`: a trusted system (the ENT, a NAC) that declares who is behind which address, nothing else.
export const ROLES = ['admin', 'supervisor', 'requisition', 'sessions'] as const;
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
 * share the file: the server re-reads it when it changed (checked at most once a second), so a
 * revocation made with `vigie token revoke` takes effect without a restart.
 */
export class TokenStore {
  private records: TokenRecord[] = [];
  private byHash = new Map<string, TokenRecord>();
  private mtimeMs = -1;
  private checkedAt = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(readonly file: string) {}

  static async open(dataDir: string): Promise<TokenStore> {
    const s = new TokenStore(tokensFile(dataDir));
    await s.reload(true);
    return s;
  }

  get exists(): boolean {
    return this.mtimeMs >= 0;
  }

  private async reload(force = false): Promise<void> {
    let m: number;
    try {
      m = (await stat(this.file)).mtimeMs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      m = -1;
    }
    if (!force && m === this.mtimeMs) return;
    this.mtimeMs = m;
    if (m < 0) this.records = [];
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
    this.mtimeMs = (await stat(this.file)).mtimeMs;
    this.byHash = new Map(this.records.filter((r) => !r.revoked).map((r) => [r.hash, r]));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** The principal for a bearer token, or null. */
  async authenticate(token: string): Promise<Principal | null> {
    const now = Date.now();
    if (now - this.checkedAt > 1000) {
      this.checkedAt = now;
      await this.serial(() => this.reload()).catch(() => undefined);
    }
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
