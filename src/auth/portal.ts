import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { ClientMatcher } from '../policy/clients.js';
import { pickLang, type Lang } from '../proxy/pages.js';
import { loadOrCreateCertificate } from '../supervision/tls.js';
import type { AuditLog } from '../supervision/audit.js';
import type { KeyAndCert } from '../tls/selfsigned.js';
import type { Identity } from './identity.js';
import { PortalAudit } from './portal-audit.js';
import { connectedPage, loggedOutPage, loginPage, notServedPage, PORTAL_CSP, PORTAL_CSS, type PortalError, type ReturnTo } from './portal-page.js';
import { normaliseAddress } from './sessions.js';

/**
 * The captive portal (config `auth.portal`): an HTTPS server of the gateway where a device that
 * cannot answer a proxy's 407 (transparent mode, or `explicit: "portal"`) logs in. The login is
 * checked by the same LDAP verifier as Basic auth (its cache, its per-address failure limit), and
 * a success binds the device's address to the user in the same session store the API writes to,
 * ended by the logout form or after `idleMinutes` without traffic. It runs where the session store
 * lives (the only process, or the cluster primary); workers follow the store.
 */

export interface PortalDeps {
  config(): VigieConfig;
  identity: Identity;
  /** The client networks in force: only their addresses may log in. */
  clients(): ClientMatcher | undefined;
  log: Logger;
  /** Where logins and logouts are audited (the supervision API's audit log); none: the log only. */
  audit?: () => AuditLog | null;
}

export interface PortalServer {
  /** How clients reach it, e.g. `https://127.0.0.1:8444`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_BODY = 4096;

/** The configured PEM pair, else the supervision API's certificate (configured or generated). */
export async function portalCertificate(config: VigieConfig, log: Logger): Promise<KeyAndCert> {
  const p = config.auth.portal!;
  if (p.cert && p.key) return { cert: await readFile(p.cert, 'utf8'), key: await readFile(p.key, 'utf8') };
  return loadOrCreateCertificate(config, log);
}

function send(res: ServerResponse, status: number, body: string, type = 'text/html; charset=utf-8'): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'Content-Security-Policy': PORTAL_CSP,
    'X-Content-Type-Options': 'nosniff',
    // same-origin, not no-referrer: with no-referrer, browsers post the form with `Origin: null`.
    'Referrer-Policy': 'same-origin',
    'X-Frame-Options': 'DENY',
  });
  res.end(body);
}

function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  return new Promise((resolve) => {
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(null);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', () => resolve(null));
  });
}

/**
 * A form post from the portal's own page: the browser says where it comes from (Origin, or
 * Sec-Fetch-Site on older ones); another site posting the form in the user's name fails here and
 * on the address-bound token.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined) return origin === `https://${req.headers.host}`;
  const site = req.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin' || site === 'none';
}

export async function startPortal(deps: PortalDeps, tls: KeyAndCert): Promise<PortalServer> {
  const { identity, log } = deps;
  const links = identity.portal;
  const audit = new PortalAudit(deps.audit ?? (() => null), log);
  const langOf = (req: IncomingMessage, asked?: string | null): Lang => (asked === 'fr' || asked === 'en' ? asked : pickLang(req.headers['accept-language']));
  const backOf = (to: string | null, sig: string | null): ReturnTo | null => (links.returnUrl(to, sig) !== null ? { to: to!, sig: sig! } : null);
  const served = (client: string) => (deps.clients()?.match(client) ?? null) !== null;
  const shown = (userId: string) => identity.user(userId)?.login ?? userId;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = normaliseAddress(req.socket.remoteAddress ?? '') ?? '';
    const url = new URL(req.url ?? '/', 'https://portal.invalid');
    if (url.pathname === '/portal.css' && req.method === 'GET') return send(res, 200, PORTAL_CSS, 'text/css; charset=utf-8');
    if (url.pathname === '/favicon.ico' && req.method === 'GET') return send(res, 204, '', 'text/plain');
    const q = url.searchParams;
    if (req.method === 'GET' && url.pathname === '/') {
      const lang = langOf(req, q.get('lang'));
      if (!served(client)) return send(res, 403, notServedPage(lang));
      const session = identity.sessions.lookup(client);
      if (session) return send(res, 200, connectedPage(lang, links.csrfToken(client), shown(session.user), links.returnUrl(q.get('to'), q.get('sig'))));
      return send(res, 200, loginPage(lang, links.csrfToken(client), backOf(q.get('to'), q.get('sig'))));
    }
    if (req.method !== 'POST' || (url.pathname !== '/login' && url.pathname !== '/logout')) {
      res.setHeader('Allow', 'GET, POST');
      return send(res, req.method === 'GET' || req.method === 'POST' ? 404 : 405, '', 'text/plain');
    }
    const form = await readForm(req);
    if (form === null) return send(res, 400, 'Vigie: a form (application/x-www-form-urlencoded, at most 4 KiB) is expected\n', 'text/plain; charset=utf-8');
    const lang = langOf(req, form.get('lang'));
    if (!served(client)) return send(res, 403, notServedPage(lang));
    const back = backOf(form.get('to'), form.get('sig'));
    if (!sameOrigin(req) || !links.csrfValid(client, form.get('csrf'))) {
      return send(res, 403, url.pathname === '/login' ? loginPage(lang, links.csrfToken(client), back, 'expired') : loggedOutPage(lang));
    }
    if (url.pathname === '/logout') {
      const session = identity.sessions.lookup(client);
      if (session && identity.sessions.close(client)) {
        log.info('portal: logged out', { client, user: session.user });
        await audit.loggedOut(client, session.user);
      }
      return send(res, 200, loggedOutPage(lang));
    }
    const login = (form.get('login') ?? '').trim();
    const password = form.get('password') ?? '';
    const verifier = identity.verifier;
    const r = verifier ? await verifier.verify(client, login, password) : ({ ok: false, outcome: 'unavailable' } as const);
    if (!r.ok) {
      const [status, error]: [number, PortalError] = r.outcome === 'rate-limited' ? [429, 'limited'] : r.outcome === 'unavailable' ? [503, 'unavailable'] : [401, 'invalid'];
      await audit.failed(client, r.outcome, status);
      return send(res, status, loginPage(lang, links.csrfToken(client), back, error, login.slice(0, 128)));
    }
    const user = identity.userIdFor(login, r.id);
    const idleMs = (deps.config().auth.portal?.idleMinutes ?? 30) * 60_000;
    try {
      identity.sessions.open(client, user, idleMs, 'portal', { idle: true });
    } catch (e) {
      log.error(`portal: cannot open a session: ${(e as Error).message}`, { client });
      return send(res, 503, loginPage(lang, links.csrfToken(client), back, 'unavailable', login));
    }
    log.info('portal: logged in', { client, user });
    await audit.loggedIn(client, user);
    send(res, 200, connectedPage(lang, links.csrfToken(client), login, back?.to ?? null));
  }

  const p = deps.config().auth.portal!;
  const server = https.createServer({ key: tls.key, cert: tls.cert, requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    handle(req, res).catch((e: Error) => {
      log.error(`portal: ${e.message}`);
      if (!res.headersSent) send(res, 500, 'Vigie: internal error\n', 'text/plain; charset=utf-8');
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(p.listen.port, p.listen.host, () => (server.off('error', reject), resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const host = p.listen.host.includes(':') ? `[${p.listen.host}]` : p.listen.host;
  const base = p.url ?? `https://${host}:${port}`;
  links.base = base;
  const config = deps.config();
  config.clients.forEach((c) => {
    if (c.auth === 'required' && !c.unauthenticatedProfile) log.warn(`portal: network ${c.name ?? c.network} has no "unauthenticatedProfile": its HTTPS is blocked until the device logs in (add the ENT and the portal's host to a profile and name it there)`);
  });
  log.info('captive portal listening', { url: base, idleMinutes: p.idleMinutes });
  return {
    url: base,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        links.base = null;
        server.close(() => void audit.flush().then(resolve));
        server.closeAllConnections();
      }),
  };
}
