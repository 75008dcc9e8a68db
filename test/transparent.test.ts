import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { MetricsObserver } from '../src/metrics/observer.js';
import type { ConnectionRecord } from '../src/proxy/events.js';
import { extension, handshake, helloBody, records, sniExtension } from './clienthello-helpers.js';
import { connectTunnel, startGateway, startOrigin, testCert, type GatewayHandle } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TLS origin answering with its own name, so a test sees where a connection landed. */
async function tlsStandIn(t: Test, who: string, host = '127.0.0.1', port = 0) {
  const server = https.createServer(testCert(), (req, res) => res.end(`${who} ${req.headers.host}\n`));
  await new Promise<void>((r, j) => server.once('error', j).listen(port, host, () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

/** Records the gateway hands its observers (what the journal and the metrics get). */
function recorder() {
  const rows: ConnectionRecord[] = [];
  return { rows, observers: [{ tunnelOpened: (r: ConnectionRecord) => rows.push(r), requestDone: (r: ConnectionRecord) => rows.push(r) }] };
}

async function gatewayWith(t: Test, doc: Record<string, unknown>, rec: { rows: ConnectionRecord[]; observers: object[] } = recorder()): Promise<GatewayHandle & { rows: ConnectionRecord[]; https: number; http: number }> {
  const g = await startGateway(doc, undefined, { observers: rec.observers });
  t.teardown(() => g.close());
  const find = (kind: string) => g.gateway.transparentListening.find((l) => l.kind === kind)?.port ?? 0;
  return { ...g, rows: rec.rows, https: find('https'), http: find('http') };
}

/**
 * A TLS handshake (the test certificate's CA checked; its names are the stand-ins', so the name
 * check is left out) and one GET over `socket`; resolves with the body.
 */
function tlsOver(socket: net.Socket, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, servername, ca: testCert().cert, checkServerIdentity: () => undefined }, () => {
      s.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out.slice(out.indexOf('\r\n\r\n') + 4)));
    s.on('error', (e) => {
      socket.destroy();
      reject(e);
    });
  });
}

/** A TLS client straight to the transparent HTTPS listener, as a redirected device would be. */
const tlsGet = (port: number, servername: string | undefined, localAddress = '127.0.0.1') => tlsOver(net.connect({ host: '127.0.0.1', port, localAddress }), servername);

t.test('transparent HTTPS: decided on the server name, connected by that name, refused with access_denied and recorded', async (t) => {
  const origin = await tlsStandIn(t, 'origin');
  const g = await gatewayWith(t, { hosts: { 'secure.test': '127.0.0.1', 'adult.test': '127.0.0.1' }, transparent: { https: [{ host: '127.0.0.1', port: 0, targetPort: origin }] }, connectPorts: [origin] });
  t.equal(await tlsGet(g.https, 'secure.test'), 'origin secure.test\n', 'the TLS session is with the origin: its certificate, end to end');
  t.match(g.rows.at(-1), { kind: 'tunnel', host: 'secure.test', port: origin, status: 200, client: '127.0.0.1', decision: { action: 'allow', profile: 'cycle3' } });
  await t.rejects(tlsGet(g.https, 'adult.test'), { code: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' }, 'a blocked name gets the access_denied alert');
  t.match(g.rows.at(-1), { host: 'adult.test', status: 403, decision: { action: 'block', category: 'adult' } }, 'and a journal row');
  await t.rejects(tlsGet(g.https, undefined), { code: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' }, 'no server name: refused');
  t.match(g.rows.at(-1), { host: '', status: 403, decision: { action: 'block', rule: 'invalid-host' } }, 'and recorded');
  // An address as server name (Node never sends one: a built ClientHello).
  const s = net.connect({ host: '127.0.0.1', port: g.https });
  s.on('error', () => {});
  s.write(records(handshake(helloBody([sniExtension('127.0.0.1')]))));
  const alert = await new Promise<Buffer>((r) => s.once('data', r));
  t.same([...alert], [21, 3, 3, 0, 2, 2, 49], 'an address as server name: refused (access_denied)');
  s.destroy();
  t.match(g.rows.at(-1), { host: '127.0.0.1', status: 403, decision: { action: 'block', rule: 'invalid-host' } });
  await t.rejects(tlsGet(g.https, 'secure.test', '127.0.0.9'), { code: 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED' }, 'a client outside the configured networks');
  t.match(g.rows.at(-1), { client: '127.0.0.9', decision: { rule: 'no-client' } });
});

t.test('transparent HTTPS: a ClientHello split over segments, over the size bound, and silence', async (t) => {
  const origin = await tlsStandIn(t, 'origin');
  const g = await gatewayWith(t, { hosts: { 'secure.test': '127.0.0.1' }, transparent: { https: [{ host: '127.0.0.1', port: 0, targetPort: origin }] }, connectPorts: [origin], timeouts: { headersMs: 400 } });
  // A relay that delivers the client's first bytes in three segments 30 ms apart.
  const relayed = new Set<net.Socket>();
  const splitter = net.createServer((c) => {
    relayed.add(c);
    const up = net.connect({ host: '127.0.0.1', port: g.https, noDelay: true });
    let first = true;
    c.on('data', async (d: Buffer) => {
      if (!first) return void up.write(d);
      first = false;
      c.pause();
      for (const [a, b] of [[0, 3], [3, 100], [100, d.length]]) {
        up.write(d.subarray(a, b));
        await sleep(30);
      }
      c.on('data', (more: Buffer) => up.write(more));
      c.resume();
    });
    up.pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => splitter.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const c of relayed) c.destroy();
    splitter.close();
  });
  t.equal(await tlsGet((splitter.address() as net.AddressInfo).port, 'secure.test'), 'origin secure.test\n', 'split over three TCP segments: relayed whole');

  const big = net.connect({ host: '127.0.0.1', port: g.https });
  t.teardown(() => big.destroy());
  big.write(records(handshake(helloBody([sniExtension('secure.test'), extension(21, Buffer.alloc(20_000))]))));
  const bigAnswer = await new Promise<Buffer>((r) => {
    const got: Buffer[] = [];
    big.on('data', (d: Buffer) => got.push(d));
    big.on('close', () => r(Buffer.concat(got)));
    big.on('error', () => {});
  });
  t.same([...bigAnswer], [21, 3, 3, 0, 2, 2, 50], 'over 16 KiB: a decode_error alert, and closed');

  const mute = net.connect({ host: '127.0.0.1', port: g.https });
  const t0 = Date.now();
  await new Promise((r) => mute.on('close', r).on('error', () => {}));
  t.ok(Date.now() - t0 >= 300, 'a client that sends nothing is closed after timeouts.headersMs');
  t.equal(g.rows.length, 1, 'only the decided connection is recorded');
});

t.test('transparent HTTP: origin form, the target from Host, the port the listener stands for', async (t) => {
  const origin = await startOrigin();
  t.teardown(origin.close);
  const g = await gatewayWith(t, { hosts: { 'site.test': '127.0.0.1', 'adult.test': '127.0.0.1' }, transparent: { http: [{ host: '127.0.0.1', port: 0, targetPort: origin.port }] }, httpPorts: [origin.port] });
  const get = (host: string | undefined, path = '/headers') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: g.http, path, headers: host === undefined ? {} : { host }, agent: false, setHost: host !== undefined });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const ok = await get('site.test');
  t.equal(ok.status, 200);
  t.match(JSON.parse(ok.body), { url: '/headers', headers: { host: 'site.test' } }, 'forwarded as the device sent it');
  t.match(g.rows.at(-1), { kind: 'request', host: 'site.test', port: origin.port, path: '/headers', status: 200 });
  const blocked = await get('adult.test', '/x');
  t.equal(blocked.status, 403, 'blocked: the block page, as in explicit mode');
  t.match(blocked.body, /adult/);
  t.match(g.rows.at(-1), { host: 'adult.test', decision: { action: 'block', category: 'adult' } });
});

t.test('SafeSearch: a CONNECT and a ClientHello for www.google.fr land on the enforcing stand-in; staff lands on the original', async (t) => {
  // Both stand-ins on one port number, at two addresses: a retarget keeps the port.
  let port = 0;
  for (let i = 0; i < 20 && port === 0; i++) {
    const p = await tlsStandIn(t, 'safesearch', '127.0.0.2');
    port = await tlsStandIn(t, 'original', '127.0.0.1', p).then(() => p, () => 0);
  }
  t.not(port, 0, 'one free port on both addresses');
  const metrics = new MetricsObserver();
  const rec = recorder();
  const g = await gatewayWith(t, {
    hosts: { 'www.google.fr': '127.0.0.1', 'forcesafesearch.google.com': '127.0.0.2' },
    transparent: { https: [{ host: '127.0.0.1', port: 0, targetPort: port }] },
    connectPorts: [port],
  }, { rows: rec.rows, observers: [...rec.observers, metrics] });
  const viaConnect = async (from: string) => {
    const { status, socket } = await connectTunnel(g.port, `www.google.fr:${port}`, from);
    t.equal(status, 200);
    return tlsOver(socket, 'www.google.fr');
  };
  t.equal(await viaConnect('127.0.0.1'), 'safesearch www.google.fr\n', 'explicit CONNECT, cycle3: the enforcing address, TLS still for www.google.fr');
  t.match(g.rows.at(-1), { host: 'www.google.fr', decision: { action: 'allow', retarget: { engine: 'google', host: 'forcesafesearch.google.com' } } }, 'the row records the retarget');
  t.equal(await viaConnect('127.0.0.5'), 'original www.google.fr\n', 'explicit CONNECT, staff: the original');
  t.notOk(g.rows.at(-1)!.decision.retarget, 'no retarget recorded for staff');
  t.equal(await tlsGet(g.https, 'www.google.fr'), 'safesearch www.google.fr\n', 'transparent ClientHello, cycle3: the enforcing address');
  t.equal(await tlsGet(g.https, 'www.google.fr', '127.0.0.5'), 'original www.google.fr\n', 'transparent ClientHello, staff: the original');
  // The legal journal keeps the retarget with the row (and its export, as a last column).
  const journal = g.gateway.journal!;
  await journal.flush();
  const { rows } = journal.search({ host: 'www.google.fr' }, { limit: 10 });
  t.same(rows.map((r) => [r.client, r.retarget]).sort(), [['127.0.0.1', 'forcesafesearch.google.com'], ['127.0.0.1', 'forcesafesearch.google.com'], ['127.0.0.5', null], ['127.0.0.5', null]]);
  // Metrics: retargets by engine, and tunnels by the way they came in.
  const count = (c: MetricsObserver['byMode'], ...labels: string[]) => c.slot(...labels).value;
  t.equal(count(metrics.retargets, 'google'), 2, 'two retargets counted');
  t.equal(count(metrics.byMode, 'explicit', 'tunnel'), 2);
  t.equal(count(metrics.byMode, 'transparent', 'tunnel'), 2);
});
