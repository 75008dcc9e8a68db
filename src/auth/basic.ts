/**
 * `Proxy-Authorization: Basic` (RFC 7617) as browsers send it: base64 of `login:password` in UTF-8.
 * Anything else (another scheme, bad base64, no colon, an empty login or password, control
 * characters) is no credentials at all.
 */

export interface Credentials {
  login: string;
  password: string;
}

/** Logins a school directory hands out: letters, digits, `.`, `_`, `-`, `@`; nothing LDAP-special. */
export const LOGIN = /^[A-Za-z0-9._@-]{1,128}$/;

export function parseBasic(header: string | undefined): Credentials | null {
  if (!header || header.length > 1024) return null;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  const login = text.slice(0, colon);
  const password = text.slice(colon + 1);
  // An empty password would be an anonymous bind, which LDAP servers accept: never a success.
  if (!LOGIN.test(login) || !password || /[\x00-\x1f]/.test(password)) return null;
  return { login, password };
}

/** The 407 challenge; the realm is checked by the config schema (no quote, backslash or control). */
export const challenge = (realm: string): string => `Basic realm="${realm}", charset="UTF-8"`;
