import type { IncomingMessage, ServerResponse } from 'node:http';
import ipaddr from 'ipaddr.js';
import type { VigieConfig } from '../config/types.js';
import { parseNetwork } from '../net/address.js';

export const PAC_PATHS = new Set(['/proxy.pac', '/wpad.dat']);
export const PAC_CONTENT_TYPE = 'application/x-ns-proxy-autoconfig';

/** IPv4 networks as [network, mask] pairs for isInNet; IPv6 ranges are left out (isInNet is IPv4-only). */
function ipv4Networks(config: VigieConfig): [string, string][] {
  const out: [string, string][] = [['127.0.0.0', '255.0.0.0']];
  for (const c of config.clients) {
    try {
      const [addr, bits] = parseNetwork(c.network);
      if (addr.kind() !== 'ipv4') continue;
      const mask = ipaddr.IPv4.subnetMaskFromPrefixLength(bits).toString();
      const net = ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${bits}`).toString();
      if (!out.some(([n, m]) => n === net && m === mask)) out.push([net, mask]);
    } catch {
      // checkConfig already refused bad networks; a PAC file is no place to report them.
    }
  }
  return out;
}

/** The captive portal's host name or address as clients dial it (config `auth.portal`), or null. */
function portalHost(config: VigieConfig): string | null {
  const p = config.auth.portal;
  if (!p) return null;
  return (p.url ? new URL(p.url).hostname : p.listen.host).replace(/^\[|\]$/g, '').toLowerCase();
}

/**
 * The PAC script for a proxy reachable at `proxy` (host:port as the browser should dial it).
 * Local names (plain host names, localhost, .local) and addresses of the school's client networks
 * go DIRECT; everything else goes through the proxy with no DIRECT fallback, so a stopped proxy
 * means no web rather than an unfiltered web (child safety fails closed).
 */
export function pacScript(config: VigieConfig, proxy: string): string {
  const nets = ipv4Networks(config);
  const lines = [
    `// Vigie proxy auto-configuration (${config.proxyName}). Generated from the gateway's config.`,
    'function FindProxyForURL(url, host) {',
    '  host = host.toLowerCase();',
    '  if (isPlainHostName(host) || host === "localhost" || dnsDomainIs(host, ".localhost") || dnsDomainIs(host, ".local")) return "DIRECT";',
    `  if (host === ${JSON.stringify(proxy.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''))}) return "DIRECT";`,
    // The captive portal is the gateway's own HTTPS server: reached directly, never through the proxy.
    ...(portalHost(config) ? [`  if (host === ${JSON.stringify(portalHost(config))}) return "DIRECT";`] : []),
    // Only IP literals are tested against the networks: isInNet on a name would make the
    // browser resolve every host it visits before deciding.
    '  if (/^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(host)) {',
    ...nets.map(([n, m]) => `    if (isInNet(host, ${JSON.stringify(n)}, ${JSON.stringify(m)})) return "DIRECT";`),
    '  }',
    `  return ${JSON.stringify(`PROXY ${proxy}`)};`,
    '}',
    '',
  ];
  return lines.join('\n');
}

const HOST_HEADER = /^(?:[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9](?:[a-z0-9-]{0,62}))*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * Where the browser reached us: the Host header when it is a plain host[:port] (a browser that
 * fetched the PAC from this name can dial it), else the socket's local address.
 */
export function proxyAddressFor(req: IncomingMessage): string {
  const localPort = req.socket.localPort ?? 3128;
  const host = req.headers.host;
  if (host && HOST_HEADER.test(host)) return /:\d+$/.test(host) && !/\]$/.test(host) ? host : `${host}:${localPort}`;
  let addr = req.socket.localAddress ?? '127.0.0.1';
  if (addr.startsWith('::ffff:')) addr = addr.slice(7);
  return addr.includes(':') ? `[${addr}]:${localPort}` : `${addr}:${localPort}`;
}

/**
 * The proxy's origin-form handler for GET /proxy.pac and /wpad.dat. Reads the config on each
 * call so a reload (SIGHUP) changes the script; scripts are memoised per (config, address).
 */
export function pacHandler(config: () => VigieConfig): (req: IncomingMessage, res: ServerResponse) => boolean {
  let memo: { config: VigieConfig; scripts: Map<string, Buffer> } | null = null;
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if (!PAC_PATHS.has(q === -1 ? url : url.slice(0, q))) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('GET only\n');
      return true;
    }
    const cfg = config();
    if (!memo || memo.config !== cfg) memo = { config: cfg, scripts: new Map() };
    const proxy = proxyAddressFor(req);
    let body = memo.scripts.get(proxy);
    if (!body) {
      body = Buffer.from(pacScript(cfg, proxy));
      // Host headers vary per client only by spelling; a small bound keeps a hostile client from growing it.
      if (memo.scripts.size < 64) memo.scripts.set(proxy, body);
    }
    res.writeHead(200, { 'Content-Type': PAC_CONTENT_TYPE, 'Content-Length': body.length, 'Cache-Control': 'max-age=300' });
    res.end(req.method === 'HEAD' ? undefined : body);
    req.resume();
    return true;
  };
}
