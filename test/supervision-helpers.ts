import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../src/log.js';
import { startSupervision, type SupervisionServer } from '../src/supervision/server.js';
import { adminTokenFile, type Role } from '../src/supervision/tokens.js';
import { startGateway, testCert, tmp, type GatewayHandle } from './helpers.js';

export interface ApiReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One HTTPS call to the API, trusting only the given certificate. */
export function call(port: number, ca: string, method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; from?: string } = {}): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let payload: Buffer | undefined;
    if (opts.raw !== undefined) payload = Buffer.from(opts.raw);
    else if (opts.body !== undefined) payload = Buffer.from(JSON.stringify(opts.body));
    if (payload) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const req = https.request({ host: '127.0.0.1', port, method, path, headers, ca, servername: 'localhost', agent: false, localAddress: opts.from ?? '127.0.0.1' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ApiHandle {
  gw: GatewayHandle;
  sup: SupervisionServer;
  admin: string;
  /** Calls the API as `token` (default: the first-start admin token). */
  api(method: string, path: string, opts?: { token?: string | null; body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; from?: string }): Promise<ApiReply>;
  tokenFor(role: Role, name?: string): Promise<string>;
  close(): Promise<void>;
}

/** The test certificate written to files, so tests do not each generate an RSA key. */
export function certFiles(): { cert: string; key: string } {
  const dir = tmp('vigie-cert-');
  const c = testCert();
  writeFileSync(join(dir, 'cert.pem'), c.cert);
  writeFileSync(join(dir, 'key.pem'), c.key);
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

/** A gateway (test lists, dead DNS) with its supervision API on an ephemeral loopback port. */
export async function startApi(doc: Record<string, unknown> = {}, opts: { log?: Logger; supervision?: Record<string, unknown>; generateCert?: boolean; registry?: Registry; lists?: string } = {}): Promise<ApiHandle> {
  const gw = await startGateway({
    ...doc,
    supervision: { listen: { host: '127.0.0.1', port: 0 }, ...(opts.generateCert ? {} : certFiles()), ...opts.supervision },
  }, opts.lists);
  const sup = await startSupervision({ gateway: gw.gateway, log: opts.log ?? silentLogger, registry: opts.registry });
  const admin = readFileSync(adminTokenFile(gw.config.dataDir), 'utf8').trim();
  const api: ApiHandle['api'] = (method, path, o = {}) => call(sup.port, sup.cert, method, path, { ...o, token: o.token === undefined ? admin : o.token });
  return {
    gw,
    sup,
    admin,
    api,
    tokenFor: async (role, name = role) => (await sup.tokens.create(role, name, 'test')).token,
    close: async () => {
      await sup.close();
      await gw.close();
    },
  };
}
