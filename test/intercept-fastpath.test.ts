// Requests inside full interception on plain HTTP's fast path (src/proxy/intercept-connection.ts):
// keep-alive requests and verified origin connections reused across client connections, TLS
// sessions resumed with the origin, what the fast path leaves to node's parser (an upload in
// chunks, then more requests on the same connection), SafeSearch headers on the fast path's form.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import type { ConnectionRecord } from '../src/proxy/events.js';
import { linesWith } from '../src/proxy/safesearch-inside.js';
import { connectTunnel, tmp } from './helpers.js';
import { startFullInterception, startNamedOrigins, tlsRequests, vigie } from './intercept-helpers.js';

t.test('linesWith replaces a header of the fast path’s lines, whatever its case, and keeps the others', async (t) => {
  const lines = 'Accept: */*\r\nyoutube-restrict: none\r\nVia: 1.1 vigie\r\n';
  t.equal(linesWith(lines, [['YouTube-Restrict', 'Strict']]), 'Accept: */*\r\nVia: 1.1 vigie\r\nYouTube-Restrict: Strict\r\n');
  t.equal(linesWith(lines, []), lines, 'nothing to set: the same lines');
});

const data = tmp();
const init = await vigie('ca', 'init', '--name', 'École Jules Ferry', '--data', data);
const origins = await startNamedOrigins();
t.teardown(() => origins.close());
const schoolCa = readFileSync(join(data, 'ca', 'ca.cert.pem'), 'utf8');
const rows: ConnectionRecord[] = [];
const g = await startFullInterception(data, origins, { 'good.test': '127.0.0.1', 'expired.test': '127.0.0.1' }, { observers: [{ requestDone: (r: ConnectionRecord) => rows.push(r) }] });
t.teardown(() => g.close());
const at = (host: string) => `${host}:${origins.port}`;

async function through(paths: string[], host = 'good.test') {
  const tunnel = await connectTunnel(g.port, at(host), '127.0.0.1');
  return tlsRequests(tunnel.socket, host, schoolCa, paths, at(host));
}

t.test('keep-alive requests: each decided and journaled, over one verified origin connection shared by client connections', async (t) => {
  t.equal(init.code, 0, init.stderr);
  const before = rows.length;
  const opened = origins.tls.connections;
  const first = await through(['/a', '/adult-corner', '/b']);
  const second = await through(['/c', '/d']);
  t.same([...first, ...second].map((a) => a.status), [200, 403, 200, 200, 200]);
  t.equal(first[2]!.body, `origin ${at('good.test')} /b\n`, 'the client’s Host goes to the origin');
  t.match(first[1]!.body, /Accès bloqué/);
  t.equal(origins.tls.connections - opened, 1, 'one TLS connection to the origin for both client connections');
  const mine = rows.slice(before);
  t.match(mine.map((r) => [r.mode, r.path, r.status]), [['intercepted', '/a', 200], ['intercepted', '/adult-corner', 403], ['intercepted', '/b', 200], ['intercepted', '/c', 200], ['intercepted', '/d', 200]]);
  t.ok(mine.every((r) => r.bytesIn > 0 && r.bytesOut > 0), 'bytes counted both ways');
});

t.test('a new origin connection resumes the TLS session the pool kept for that name', async (t) => {
  const resumed = origins.tls.resumed;
  // The origin closes after `/close`: the next request needs a new connection.
  const answers = await through(['/close', '/after']);
  t.same(answers.map((a) => a.status), [200, 200]);
  t.ok(origins.tls.resumed > resumed, 'resumed with the origin (no full handshake, no second check needed)');
});

t.test('an upload in chunks goes to node’s parser, and the requests after it are still answered', async (t) => {
  const tunnel = await connectTunnel(g.port, at('good.test'), '127.0.0.1');
  const s = tls.connect({ socket: tunnel.socket, servername: 'good.test', ca: schoolCa });
  await new Promise((r) => s.once('secureConnect', r));
  let buf = '';
  s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
  const host = at('good.test');
  s.write(`GET /before HTTP/1.1\r\nHost: ${host}\r\n\r\nPOST /upload HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  await new Promise((r) => s.once('close', r));
  const bodies = buf.split(/\r?\n/).filter((l) => l.startsWith('origin '));
  t.same(bodies, [`origin ${host} /before`, `origin ${host} /upload`, `origin ${host} /after`], 'three answers, in order');
  t.match(rows.at(-2), { mode: 'intercepted', method: 'POST', path: '/upload', status: 200 });
});

t.test('an origin certificate that fails on the fast path: the error page, journaled as certificate', async (t) => {
  const [a] = await through(['/'], 'expired.test');
  t.equal(a!.status, 502);
  t.match(rows.at(-1), { mode: 'intercepted', host: 'expired.test', problem: 'certificate', status: 502 });
});
