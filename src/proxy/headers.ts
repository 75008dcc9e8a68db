/**
 * Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1).
 * The one list of them: node's path filters with it here, the fast path's head parsers (http1.ts)
 * build their by-length name table from it.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/**
 * Copies a raw header list (`[name, value, name, value, ...]`) without hop-by-hop headers, nor
 * those the Connection header names, and appends a Via entry. Works on the raw form so names
 * keep their case and repeated headers stay repeated. With `host` (requests), the Host header is
 * replaced by the request-target's authority, as RFC 9112 §3.2.2 asks of a proxy.
 */
export function forwardHeaders(raw: readonly string[], via: string, host?: string): string[] {
  let named: Set<string> | null = null;
  let viaIndex = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower === 'connection' || lower === 'proxy-connection') {
      for (const token of raw[i + 1]!.split(',')) {
        const t = token.trim().toLowerCase();
        if (t && t !== 'close' && t !== 'keep-alive') (named ??= new Set()).add(t);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (named !== null && named.has(lower))) continue;
    if (host !== undefined && lower === 'host') continue;
    if (lower === 'via') viaIndex = out.length;
    out.push(name, raw[i + 1]!);
  }
  if (viaIndex >= 0) out[viaIndex + 1] = `${out[viaIndex + 1]}, ${via}`;
  else out.push('Via', via);
  if (host !== undefined) out.push('Host', host);
  return out;
}
