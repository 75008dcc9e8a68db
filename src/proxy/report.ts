import type { IncomingMessage, ServerResponse } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { VigieConfig } from '../config/types.js';
import { normalizeHost } from '../lists/normalize.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { escapeHtml, page, pickLang, type BlockLinks, type Lang } from './pages.js';

/** A report as the proxy takes it: no client address, no user, only the profile it came from. */
export interface NewReport {
  host: string;
  /** `allow`: the site should be reachable (from a block page); `block`: it should not (from /report). */
  kind: 'allow' | 'block';
  comment: string;
  profile: string;
  time: number;
}

/** Where the proxy hands reports (the report queue in one process, the primary over IPC in a worker). */
export type ReportSink = (r: NewReport) => void;

export const REPORT_PATH = '/report';
const MAX_BODY = 4096;
const WINDOW_MS = 3_600_000;
/** Clients counted at once: past it the counts restart (a bound, not a policy). */
const MAX_CLIENTS = 10_000;

const isWildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';

/** An address of this machine clients can reach, for a proxy listening on every address. */
function machineAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

/**
 * Where the block page's forms lead: `reports.url` or the proxy's first bound address; the
 * console at `overrides.consoleUrl` or the API's first name and port. Computed once per config.
 */
export function blockLinks(config: VigieConfig, bound?: { host: string; port: number }): BlockLinks {
  const l = bound ?? config.listen[0];
  let report = config.reports.url ?? null;
  if (report === null && l) {
    const host = isWildcard(l.host) ? machineAddress() : l.host;
    report = `http://${host.includes(':') ? `[${host}]` : host}:${l.port}${REPORT_PATH}`;
  }
  const s = config.supervision;
  const unblock = config.overrides.consoleUrl ?? (s.enabled ? `https://${s.names[0] ?? 'localhost'}:${s.listen.port}/admin/` : null);
  return { report, unblock };
}

const T = {
  fr: {
    title: 'Signaler un site',
    lead: 'Un site inapproprié est accessible depuis l’école ? Indiquez-le au référent (aucune donnée vous concernant n’est transmise).',
    host: 'Site (nom ou adresse)',
    comment: 'Commentaire (facultatif)',
    send: 'Signaler',
    thanks: 'Merci, votre signalement a été transmis au référent de l’école.',
    bad: 'Indiquez un nom de site valide.',
    slow: 'Trop de signalements depuis ce poste : réessayez plus tard.',
    refused: 'Ce poste ne fait pas partie des réseaux servis par cette passerelle.',
  },
  en: {
    title: 'Report a site',
    lead: 'An unsuitable site can be reached from the school? Tell the school’s contact (nothing about you is sent).',
    host: 'Site (name or address)',
    comment: 'Comment (optional)',
    send: 'Report',
    thanks: 'Thank you, your report was sent to the school’s contact.',
    bad: 'Give a valid site name.',
    slow: 'Too many reports from this device: try again later.',
    refused: 'This device is not on a network served by this gateway.',
  },
} as const;

function form(lang: Lang, error = ''): string {
  const t = T[lang];
  return page(lang, t.title, `${error ? `<p role="alert"><strong>${error}</strong></p>` : ''}<p>${t.lead}</p>
<form method="post" action="${REPORT_PATH}">
<p><label for="h">${t.host}</label><br><input id="h" name="host" required maxlength="255" size="40"></p>
<p><label for="c">${t.comment}</label><br><textarea id="c" name="comment" rows="3" cols="40" maxlength="500"></textarea></p>
<input type="hidden" name="kind" value="block">
<p><button type="submit">${t.send}</button></p></form>`);
}

function send(res: ServerResponse, status: number, html: string): void {
  const body = Buffer.from(html);
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}

/** What a host field may hold: a name or an address, or a URL whose host is taken. */
function hostOf(raw: string): string {
  let v = raw.trim();
  if (/^https?:\/\//i.test(v)) {
    try {
      v = new URL(v).hostname;
    } catch {
      return '';
    }
  }
  return normalizeHost(v.split('/')[0]!);
}

/**
 * `GET /report` (the form) and `POST /report` (host, comment, kind as
 * application/x-www-form-urlencoded) on the proxy listener, for the school's client networks only,
 * limited to `reports.perClientPerHour` per client address (per process).
 */
export function reportHandler(deps: { config: () => VigieConfig; snapshot: () => PolicySnapshot; sink: ReportSink }): (req: IncomingMessage, res: ServerResponse) => boolean {
  const counts = new Map<string, { n: number; since: number }>();
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q === -1 ? url : url.slice(0, q)) !== REPORT_PATH) return false;
    const lang = pickLang(req.headers['accept-language']);
    const client = req.socket.remoteAddress ?? '';
    const who = deps.snapshot().clients.match(client);
    if (!who) {
      send(res, 403, page(lang, T[lang].title, `<p>${T[lang].refused}</p>`));
      req.resume();
      return true;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      send(res, 200, form(lang));
      req.resume();
      return true;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'GET, HEAD, POST', 'Content-Type': 'text/plain' });
      res.end('GET or POST only\n');
      req.resume();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return send(res, 413, form(lang, T[lang].bad));
      const fields = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const host = hostOf(fields.get('host') ?? '');
      if (!host) return send(res, 400, form(lang, T[lang].bad));
      const now = Date.now();
      let c = counts.get(client);
      if (!c || now - c.since > WINDOW_MS) {
        if (counts.size >= MAX_CLIENTS) counts.clear();
        counts.set(client, (c = { n: 0, since: now }));
      }
      if (++c.n > deps.config().reports.perClientPerHour) {
        res.setHeader('Retry-After', String(Math.ceil((c.since + WINDOW_MS - now) / 1000)));
        return send(res, 429, page(lang, T[lang].title, `<p>${T[lang].slow}</p>`));
      }
      const kind = fields.get('kind') === 'allow' ? 'allow' : 'block';
      // Control characters out, length bounded: the comment is shown in the console and sent on.
      const comment = (fields.get('comment') ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 500);
      deps.sink({ host, kind, comment, profile: who.profile, time: now });
      send(res, 200, page(lang, T[lang].title, `<p>${T[lang].thanks}</p><p>${escapeHtml(host)}</p>`));
    });
    req.on('error', () => res.destroy());
    return true;
  };
}
