import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The captive portal's links, signed: the gate redirects an unauthenticated client's HTTP request
 * to the portal with the URL it asked for and an HMAC of it, and after the login the portal sends
 * the browser back there only when the signature holds. So the portal never redirects to a URL
 * someone else wrote into a link (no open redirect). The key is random per start, shared by the
 * primary with its workers (src/cluster/protocol.ts `init`); a link outlives no restart, which
 * only costs a landing on the portal's own page.
 */
export class PortalLinks {
  /** Where clients reach the portal (`https://host:port`), set once it listens; null = no portal. */
  base: string | null = null;

  constructor(public key: Buffer = randomBytes(32)) {}

  private mac(kind: string, value: string): string {
    return createHmac('sha256', this.key).update(kind).update('\0').update(value).digest('base64url').slice(0, 32);
  }

  /** The portal's login page for a client that asked for `url` (built only for redirects, not on the hot path). */
  loginUrl(url: string): string {
    return `${this.base}/?to=${encodeURIComponent(url)}&sig=${this.mac('to', url)}`;
  }

  /** The URL to go back to after the login: `to` when signed by this gateway and a web URL; else null. */
  returnUrl(to: unknown, sig: unknown): string | null {
    if (typeof to !== 'string' || typeof sig !== 'string' || to.length > 4096 || !/^https?:\/\/[^\s/?#@\\]+(\/[^\s]*)?$/.test(to)) return null;
    return same(this.mac('to', to), sig) ? to : null;
  }

  /** A form token bound to the client's address, valid two hours: another site cannot post the form in its name. */
  csrfToken(client: string, now = Date.now()): string {
    const issued = Math.floor(now / 1000).toString(36);
    return `${issued}.${this.mac('csrf', `${client}|${issued}`)}`;
  }

  csrfValid(client: string, token: unknown, now = Date.now()): boolean {
    if (typeof token !== 'string' || token.length > 64) return false;
    const dot = token.indexOf('.');
    if (dot <= 0) return false;
    const issued = token.slice(0, dot);
    const age = now / 1000 - parseInt(issued, 36);
    return age >= -60 && age < 7200 && same(this.mac('csrf', `${client}|${issued}`), token.slice(dot + 1));
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The URL a plain-HTTP request asked for, from what the gate read (canonical host, port, path). */
export function requestedUrl(host: string, port: number, path: string): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `http://${h}${port === 80 ? '' : `:${port}`}${path || '/'}`;
}
