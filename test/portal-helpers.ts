import https from 'node:https';

/** Requests to the captive portal (self-signed certificate) from a chosen loopback address. */

export interface PortalReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function portalCall(base: string, method: string, path: string, opts: { from: string; form?: Record<string, string>; headers?: Record<string, string> }): Promise<PortalReply> {
  const u = new URL(path, base);
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  const headers: Record<string, string | number> = { ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), origin: u.origin } : {}), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = https.request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers, localAddress: opts.from, rejectUnauthorized: false, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The hidden fields of the page's first form (csrf, lang, to, sig). */
export function hiddenFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)) out[m[1]!] = m[2]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  return out;
}

/** Opens the login page (with `query`, e.g. the redirect's `?to=…&sig=…`) and posts the form. */
export async function portalLogin(base: string, from: string, login: string, password: string, query = ''): Promise<PortalReply> {
  const page = await portalCall(base, 'GET', `/${query}`, { from });
  return portalCall(base, 'POST', '/login', { from, form: { ...hiddenFields(page.body), login, password } });
}
