import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './helpers.js';

const run = promisify(execFile);

/**
 * A throw-away PostgreSQL cluster for tests: initdb in a temporary folder, listening on 127.0.0.1 at
 * an ephemeral port with its socket in that folder, trust authentication (loopback only), fsync
 * off. initdb refuses to run as root: as root the cluster belongs to the `postgres` user (runuser).
 * `stop()` and `start()` make an outage on the same port; `destroy()` removes everything.
 */
export interface TestPostgres {
  url: string;
  port: number;
  dir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
  /** One query on a fresh connection (closed after). */
  query<R extends pg.QueryResultRow = any>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** The folder of PostgreSQL's server programs (Debian keeps them per major version), or null. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0]!, 'bin');
  }
  return null;
}

/** Why PostgreSQL tests cannot run here, or null. Under CI=true a missing PostgreSQL is a failure, not a skip. */
export function postgresMissing(): string | false {
  if (postgresBin()) return false;
  if (process.env.CI === 'true') throw new Error('PostgreSQL server programs not found under /usr/lib/postgresql (CI installs the `postgresql` package)');
  return 'PostgreSQL is not installed (apt-get install postgresql)';
}

const asRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

async function as(cmd: string, args: string[]): Promise<void> {
  const bin = postgresBin()!;
  const full = join(bin, cmd);
  try {
    if (asRoot()) await run('runuser', ['-u', 'postgres', '--', full, ...args], { timeout: 60_000 });
    else await run(full, args, { timeout: 60_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} failed: ${err.stderr || err.message}`);
  }
}

export async function startPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'vigie-pg-'));
  if (asRoot()) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout));
  const data = join(dir, 'data');
  const user = asRoot() ? 'postgres' : userInfo().username;
  await as('initdb', ['-D', data, '-A', 'trust', '-U', user, '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 -c shared_buffers=128MB`;
  const start = () => as('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
  const stop = () => as('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  await start();
  let running = true;
  const url = `postgres://${user}@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dir,
    start: async () => {
      await start();
      running = true;
    },
    stop: async () => {
      await stop();
      running = false;
    },
    destroy: async () => {
      if (running) await stop().catch(() => as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined));
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
    query: async (sql, params) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return await c.query(sql, params as unknown[]);
      } finally {
        await c.end();
      }
    },
  };
}
