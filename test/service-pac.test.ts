import vm from 'node:vm';
import t from 'tap';
import { rawExchange, startGateway } from './helpers.js';

/** The PAC helper functions browsers provide (Netscape's set), enough to run any script we write. */
function pacSandbox(resolve: Record<string, string> = {}) {
  const ip4 = (s: string) => {
    const p = s.split('.').map(Number);
    return p.length === 4 && p.every((n) => Number.isInteger(n) && n >= 0 && n <= 255) ? ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0 : null;
  };
  const dnsResolve = (host: string) => (ip4(host) !== null ? host : (resolve[host] ?? null));
  return {
    isPlainHostName: (host: string) => !host.includes('.'),
    dnsDomainIs: (host: string, domain: string) => host.length >= domain.length && host.endsWith(domain),
    localHostOrDomainIs: (host: string, hostdom: string) => host === hostdom || (!host.includes('.') && hostdom.startsWith(host + '.')),
    isResolvable: (host: string) => dnsResolve(host) !== null,
    dnsResolve,
    isInNet: (host: string, pattern: string, mask: string) => {
      const a = dnsResolve(host);
      const h = a === null ? null : ip4(a);
      const p = ip4(pattern);
      const m = ip4(mask);
      return h !== null && p !== null && m !== null && ((h & m) >>> 0) === ((p & m) >>> 0);
    },
    myIpAddress: () => '127.0.0.1',
    dnsDomainLevels: (host: string) => host.split('.').length - 1,
    shExpMatch: (str: string, exp: string) => new RegExp(`^${exp.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(str),
    weekdayRange: () => true,
    dateRange: () => true,
    timeRange: () => true,
  };
}

function loadPac(script: string): (url: string, host: string) => string {
  const ctx = vm.createContext(pacSandbox());
  vm.runInContext(script, ctx, { filename: 'proxy.pac', timeout: 1000 });
  const fn = (ctx as { FindProxyForURL?: unknown }).FindProxyForURL;
  if (typeof fn !== 'function') throw new Error('no FindProxyForURL in the PAC file');
  return (url, host) => fn(url, host) as string;
}

function splitResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const [line, ...rest] = raw.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(rest.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 1).trim()]));
  return { status: Number(line!.slice(9, 12)), headers, body: raw.slice(end + 4) };
}

t.test('PAC and WPAD from the proxy listener', async (t) => {
  const gw = await startGateway({
    clients: [
      { network: '10.1.0.0/16', profile: 'cycle3', name: 'école' },
      { network: '192.168.5.0/24', profile: 'staff' },
      { network: '2001:db8::/32', profile: 'staff' },
      { network: '127.0.0.1/32', profile: 'cycle3' },
    ],
  });
  t.teardown(() => gw.close());
  const get = async (path: string, host: string | null = `proxy.school.lan:${gw.port}`, method = 'GET') =>
    splitResponse(await rawExchange(gw.port, `${method} ${path} HTTP/1.1\r\n${host === null ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`));

  const pac = await get('/proxy.pac');
  t.equal(pac.status, 200);
  t.equal(pac.headers['content-type'], 'application/x-ns-proxy-autoconfig');
  t.equal(Number(pac.headers['content-length']), Buffer.byteLength(pac.body));
  const find = loadPac(pac.body);
  const proxy = `PROXY proxy.school.lan:${gw.port}`;
  const cases: [string, string][] = [
    ['www.example.org', proxy],
    ['WWW.Example.ORG', proxy],
    ['games.test', proxy],
    ['8.8.8.8', proxy],
    ['10.2.0.1', proxy],
    ['192.168.6.1', proxy],
    ['intranet', 'DIRECT'],
    ['localhost', 'DIRECT'],
    ['printer.local', 'DIRECT'],
    ['10.1.2.3', 'DIRECT'],
    ['192.168.5.77', 'DIRECT'],
    ['127.0.0.1', 'DIRECT'],
    ['proxy.school.lan', 'DIRECT'],
  ];
  for (const [host, want] of cases) t.equal(find(`http://${host}/x`, host), want, `${host} -> ${want}`);
  t.notMatch(pac.body, /DIRECT";\s*}\s*$/, 'no DIRECT fallback after the proxy (fail closed)');

  const wpad = await get('/wpad.dat');
  t.equal(wpad.status, 200);
  t.equal(wpad.headers['content-type'], 'application/x-ns-proxy-autoconfig');
  t.equal(wpad.body, pac.body, 'wpad.dat is the same script');

  const bare = await get('/proxy.pac?v=2', 'proxy.school.lan');
  t.equal(loadPac(bare.body)('http://a.org/', 'a.org'), proxy, 'Host without port: the listener port is added');

  const noHost = splitResponse(await rawExchange(gw.port, 'GET /proxy.pac HTTP/1.0\r\n\r\n'));
  t.equal(noHost.status, 200);
  t.equal(loadPac(noHost.body)('http://a.org/', 'a.org'), `PROXY 127.0.0.1:${gw.port}`, 'no Host: the address the client dialled');

  const hostile = await get('/proxy.pac', 'x"); throw 1; ("');
  t.equal(loadPac(hostile.body)('http://a.org/', 'a.org'), `PROXY 127.0.0.1:${gw.port}`, 'a hostile Host header never reaches the script');

  t.equal((await get('/proxy.pac', undefined, 'POST')).status, 405);
  t.equal((await get('/other.pac')).status, 400, 'other origin-form paths are still refused');

  // A reload that adds a network changes the script.
  await gw.gateway.reload({ ...gw.gateway.config, clients: [...gw.gateway.config.clients, { network: '172.16.0.0/12', profile: 'staff' }] });
  const after = loadPac((await get('/proxy.pac')).body);
  t.equal(after('http://172.20.1.1/', '172.20.1.1'), 'DIRECT', 'new client network is local after reload');
  t.equal(after('http://www.example.org/', 'www.example.org'), proxy);
});
