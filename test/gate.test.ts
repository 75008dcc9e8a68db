import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { startMetricsServer } from '../src/metrics/server.js';
import type { ConnectionRecord } from '../src/proxy/events.js';
import { connectTarget, parseAbsoluteUrl } from '../src/proxy/gate.js';
import { connectTunnel, freePort, rawExchange, startGateway, startOrigin, TEST_LISTS, tmp, viaProxy, writeLists, type GatewayHandle } from './helpers.js';
import { startApi } from './supervision-helpers.js';

/** Every record the proxy hands the journal, requests and tunnels alike. */
function recorder() {
  const rows: ConnectionRecord[] = [];
  return { rows, observer: { requestDone: (r: ConnectionRecord) => rows.push(r), tunnelOpened: (r: ConnectionRecord) => rows.push(r) } };
}

/** Plain HTTP through the proxy on the fast path (HTTP/1.1) or node's parser (HTTP/1.0): the status and the body. */
async function get(port: number, url: string, general = false): Promise<{ status: number; body: string }> {
  const authority = url.replace(/^http:\/\//, '').split('/')[0];
  const raw = await rawExchange(port, `GET ${url} HTTP/1.${general ? 0 : 1}\r\nHost: ${authority}\r\nAccept-Language: en\r\nConnection: close\r\n\r\n`);
  return { status: Number(raw.slice(9, 12)), body: raw.slice(raw.indexOf('\r\n\r\n') + 4) };
}

const LOOPBACK_FORMS = (p: number) => [
  `127.0.0.1:${p}`,
  `127.0.0.1.:${p}`,
  `[::1]:${p}`,
  `[0:0:0:0:0:0:0:1]:${p}`,
  `[::ffff:127.0.0.1]:${p}`,
  `[::ffff:7f00:1]:${p}`,
  `2130706433:${p}`,
  `0x7f000001:${p}`,
  `0177.0.0.1:${p}`,
  `127.1:${p}`,
  `127.0.0.2:${p}`,
  `local.test:${p}`,
  `LOCAL.test.:${p}`,
  `mapped.test:${p}`,
  `six.test:${p}`,
];

t.test('on the defaults, loopback is refused in every form, on every entry, with a page that says why and a journal row', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  for (const rawTunnels of [true, false]) {
    const rec = recorder();
    const gw = await startGateway(
      { destinations: { allow: [] }, hosts: { 'local.test': '127.0.0.1', 'mapped.test': '::ffff:127.0.0.1', 'six.test': '::1' }, connectPorts: [443, origin.port] },
      undefined,
      { observers: [rec.observer], rawTunnels },
    );
    t.teardown(() => gw.close());
    for (const form of LOOPBACK_FORMS(origin.port)) {
      if (rawTunnels) {
        for (const general of [false, true]) {
          const r = await get(gw.port, `http://${form}/small`, general);
          t.equal(r.status, 403, `GET http://${form}/ (${general ? 'node:http' : 'fast path'})`);
          t.match(r.body, /(127\.0\.0\.[12]|\[::1\]):\d+ is a loopback address/, 'the page says why');
        }
      }
      const c = await connectTunnel(gw.port, form);
      t.equal(c.status, 403, `CONNECT ${form} (${rawTunnels ? 'raw handles' : 'net.Socket'})`);
      t.match(c.head, /destination refused: (127\.0\.0\.[12]|\[::1\]):\d+ est une adresse de bouclage/);
    }
    t.ok(rec.rows.length >= LOOPBACK_FORMS(0).length, 'each refusal is recorded');
    for (const row of rec.rows) {
      t.equal(row.decision.action, 'block');
      t.equal(row.decision.rule, 'destination');
      t.equal(row.status, 403);
      t.ok(['127.0.0.1', '127.0.0.2', '::1', 'local.test', 'mapped.test', 'six.test'].includes(row.host), `journaled as ${row.host}: canonical or the name asked for`);
    }
  }
});

t.test('addresses no configuration opens, and private ranges closed by default', async (t) => {
  const rec = recorder();
  const gw = await startGateway({ destinations: { allow: [{ network: '0.0.0.0/0' }, { network: '::/0' }] } }, undefined, { observers: [rec.observer] });
  t.teardown(() => gw.close());
  for (const [host, why] of [
    ['0.0.0.0', 'an unspecified address'],
    ['[::]', 'an unspecified address'],
    ['0.1.2.3', 'an unspecified address'],
    ['169.254.169.254', 'a link-local address'],
    ['[fe80::1]', 'a link-local address'],
    ['224.0.0.1', 'a multicast address'],
    ['[ff02::1]', 'a multicast address'],
    ['255.255.255.255', 'a broadcast address'],
  ]) {
    const r = await get(gw.port, `http://${host}:8080/`);
    t.equal(r.status, 403, `${host}, though every address is allowed`);
    t.ok(r.body.includes(why), why);
  }
  const closed = await startGateway({ destinations: { allow: [] } });
  t.teardown(() => closed.close());
  for (const [host, why] of [
    ['10.1.2.3', 'a private network address'],
    ['172.16.0.1', 'a private network address'],
    ['192.168.1.1', 'a private network address'],
    ['100.64.0.1', 'a private network address'],
    ['[fd00::1]', 'a private network address'],
    ['[::ffff:10.1.2.3]', 'a private network address'],
    ['167772161', 'a private network address'],
  ]) {
    const r = await get(closed.port, `http://${host}:8080/`);
    t.equal(r.status, 403, host);
    t.ok(r.body.includes(why), why);
  }
});

t.test('with 127.0.0.0/8 allowed: origins pass, the gateway\'s own listeners and unsafe ports do not', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const api = await startApi({ hosts: { 'local.test': '127.0.0.1' }, connectPorts: [443, origin.port] });
  t.teardown(() => api.close());
  const metrics = await startMetricsServer(createGatewayMetrics().registry, { host: '127.0.0.1', port: 0 });
  t.teardown(() => metrics.close());
  const port = api.gw.port;
  t.equal((await viaProxy(port, `http://127.0.0.1:${origin.port}/small`)).status, 200, 'an allowed loopback origin');
  t.equal((await viaProxy(port, `http://local.test:${origin.port}/small`)).status, 200, 'by name');
  t.equal((await connectTunnel(port, `127.0.0.1:${origin.port}`)).status, 200, 'CONNECT to it');
  for (const [what, p] of [
    ['metrics', metrics.address.port],
    ['API', api.sup.port],
    ['proxy', port],
  ] as const) {
    for (const form of [`127.0.0.1:${p}`, `2130706433:${p}`, `[::ffff:127.0.0.1]:${p}`, `local.test:${p}`]) {
      const r = await get(port, `http://${form}/metrics`);
      t.equal(r.status, 403, `the ${what} port as ${form}`);
      t.match(r.body, /a service of the gateway itself/);
    }
    const c = await connectTunnel(port, `127.0.0.1:${p}`);
    t.equal(c.status, 403, `CONNECT to the ${what} port`);
  }
  for (const p of [22, 25]) {
    const r = await get(port, `http://127.0.0.1:${p}/`);
    t.equal(r.status, 403, `plain HTTP to port ${p}`);
    t.match(r.body, /port not allowed/);
    const c = await connectTunnel(port, `127.0.0.1:${p}`);
    t.equal(c.status, 403, `CONNECT to port ${p}`);
  }
  await metrics.close();
  const freed = await rawExchange(port, `GET http://127.0.0.1:${metrics.address.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  t.match(freed, /^HTTP\/1\.1 502/, 'a closed listener is forgotten: its port is an ordinary (here refused) origin again');
});

t.test('allow entries: by network and port; httpPorts ranges; listeners the config declares', async (t) => {
  const a = await startOrigin();
  const b = await startOrigin();
  const declared = await startOrigin();
  t.teardown(() => Promise.all([a.close(), b.close(), declared.close()]));
  const gw = await startGateway({
    destinations: { allow: [{ network: '127.0.0.1/32', ports: [a.port, declared.port] }] },
    httpPorts: [80, `${Math.min(a.port, b.port)}-${Math.max(a.port, b.port)}`, declared.port],
    // As in a cluster worker: the metrics listen in another process, on a port the config names.
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: declared.port } },
  });
  t.teardown(() => gw.close());
  t.equal((await viaProxy(gw.port, `http://127.0.0.1:${a.port}/small`)).status, 200, 'the allowed port');
  const other = await get(gw.port, `http://127.0.0.1:${b.port}/small`);
  t.equal(other.status, 403, 'another port of the allowed address');
  t.match(other.body, /loopback/);
  t.equal((await get(gw.port, `http://127.0.0.2:${a.port}/small`)).status, 403, 'another address');
  const self = await get(gw.port, `http://127.0.0.1:${declared.port}/small`);
  t.equal(self.status, 403, 'a listener the config declares is the gateway\'s own, allowed or not');
  t.match(self.body, /the gateway itself/);
  const outside = Math.max(a.port, b.port) + 1 === declared.port ? Math.max(a.port, b.port) + 2 : Math.max(a.port, b.port) + 1;
  t.match((await get(gw.port, `http://127.0.0.1:${outside}/`)).body, /port not allowed/, 'a port outside httpPorts');
});

t.test('the UT1-listed IP is blocked in every form, for HTTP and CONNECT', async (t) => {
  // On real sockets with a loopback address listed as malware and an origin listening on it: a
  // form that escaped canonicalisation would reach it (200). The real UT1 entry, 1.13.249.217, is
  // checked through the gate itself below, so no test ever connects off this machine.
  const listed = http.createServer((_q, s) => s.end('reached'));
  await new Promise<void>((r) => listed.listen(0, '127.13.249.217', r));
  t.teardown(() => new Promise<void>((r) => listed.close(() => r())));
  const p = (listed.address() as AddressInfo).port;
  const lists = writeLists(tmp(), { ...TEST_LISTS, malware: { domains: ['127.13.249.217', '1.13.249.217'] } });
  const rec = recorder();
  const gw: GatewayHandle = await startGateway({ connectPorts: [443, p] }, lists, { observers: [rec.observer] });
  t.teardown(() => gw.close());
  const forms = (v4: string, hex: string, dec: number, oct: string, short: string) => [v4, `${v4}.`, `[::ffff:${v4}]`, `[0:0:0:0:0:ffff:${hex}]`, `[::${v4}]`, String(dec), `0x${hex.replace(':', '').padStart(8, '0')}`, oct, short];
  const loop = forms('127.13.249.217', '7f0d:f9d9', 2131622361, '0177.015.0371.0331', '127.13.63961');
  for (const f of loop) {
    const r = await get(gw.port, `http://${f}:${p}/`);
    t.equal(r.status, 403, `GET http://${f}:${p}/`);
    t.match(r.body, /malware/);
    const c = await connectTunnel(gw.port, `${f}:${p}`);
    t.equal(c.status, 403, `CONNECT ${f}:${p}`);
    t.match(c.head, /category malware/);
  }
  t.ok(rec.rows.every((r) => r.host === '127.13.249.217' && r.decision.category === 'malware'), 'journaled under the canonical address');
  const ut1 = forms('1.13.249.217', '10d:f9d9', 17693145, '01.015.0371.0331', '1.13.63961');
  const gate = gw.gateway.proxy.gate;
  for (const f of ut1) {
    for (const port of [80, 443]) {
      const target = port === 80 ? parseAbsoluteUrl(`http://${f}/`) : connectTarget(`${f}:443`);
      t.ok(target, `${f} reads`);
      const r = gate.enter({ client: '127.0.0.1', mode: 'explicit', method: port === 80 ? 'GET' : 'CONNECT', host: target!.host, port, path: port === 80 ? '/' : '', acceptLanguage: 'en' });
      t.equal(r.kind, 'block', `${port === 80 ? 'GET http://' : 'CONNECT '}${f}`);
      t.equal(r.record?.decision.category, 'malware');
    }
  }
});

t.test('unreadable targets: zone ids, CONNECT with userinfo, odd ports → 400', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const p = await freePort();
  t.match(await rawExchange(gw.port, `GET http://[fe80::1%25lo]:${p}/ HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 400/, 'zone id');
  for (const target of ['user@127.0.0.1:443', 'user:pw@secure.test:443', '127.0.0.1:+443', '[fe80::1%lo]:443']) {
    const c = await connectTunnel(gw.port, target);
    t.equal(c.status, 400, `CONNECT ${target}`);
  }
});

t.test('strict request lines, on real sockets: no version, control bytes, raw UTF-8 or spaces in the target → 400, never forwarded', async (t) => {
  let reached = 0;
  const origin = http.createServer((_q, s) => {
    reached++;
    s.end('reached');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => origin.close(() => r())));
  const p = (origin.address() as AddressInfo).port;
  const gw = await startGateway({ hosts: { 'o.test': '127.0.0.1' } });
  t.teardown(() => gw.close());
  const base = `http://o.test:${p}`;
  for (const [what, head] of [
    ['no HTTP version', `GET ${base}/\r\n\r\n`],
    ['no HTTP version, with headers', `GET ${base}/\r\nHost: o.test\r\n\r\n`],
    ['HTTP/2.0 on an HTTP/1 connection', `GET ${base}/ HTTP/2.0\r\nHost: o.test\r\n\r\n`],
    ['a control byte in the target', `GET ${base}/a\x01b HTTP/1.1\r\nHost: o.test\r\n\r\n`],
    ['DEL in the target', `GET ${base}/a\x7fb HTTP/1.1\r\nHost: o.test\r\n\r\n`],
    ['raw UTF-8 in the target', `GET ${base}/\xc3\xa9t\xc3\xa9 HTTP/1.1\r\nHost: o.test\r\n\r\n`],
    ['a tab in the target', `GET ${base}/a\tb HTTP/1.1\r\nHost: o.test\r\n\r\n`],
    ['a control byte in a header', `GET ${base}/ HTTP/1.1\r\nHost: o.test\r\nX-A: a\x01b\r\n\r\n`],
    ['CONNECT with userinfo', `CONNECT user@o.test:443 HTTP/1.1\r\nHost: o.test\r\n\r\n`],
  ]) {
    const reply = await rawExchange(gw.port, Buffer.from(head, 'latin1'));
    t.match(reply, /^HTTP\/1\.1 400 /, what);
  }
  t.equal(reached, 0, 'the origin saw none of them');
  t.match(await rawExchange(gw.port, `GET ${base}/ HTTP/1.1\r\nHost: o.test\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /, 'a proper request passes');
});
