import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import t from 'tap';
import { createLogger } from '../src/log.js';
import { exportBundle, signBundle, verifyBundle, type BundlePayload } from '../src/supervision/bundle.js';
import { startOrigin, tmp, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const run = promisify(execFile);
const clients = [{ network: '127.0.0.1/32', profile: 'cycle3' }];
const profiles = { cycle3: { mode: 'blocklist', categories: ['adult'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] } };

/** The academy's bundle server: serves whatever `body` holds, with an ETag, counting requests. */
async function academyServer() {
  const state = { body: '', etag: '"0"', requests: 0, conditional: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    if (req.headers['if-none-match'] === state.etag) {
      state.conditional++;
      res.writeHead(304, { etag: state.etag });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json', etag: state.etag });
    res.end(state.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const serve = (body: unknown) => {
    state.body = typeof body === 'string' ? body : JSON.stringify(body);
    state.etag = `"${state.requests}-${state.body.length}"`;
  };
  return { state, serve, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle.json`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

t.test('fleet pull: good, tampered, stale and invalid bundles', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const academy = await academyServer();
  const origin = await startOrigin();
  const hosts = { 'fleet.test': '127.0.0.1', 'ok.test': '127.0.0.1' };
  const registry = new Registry();
  const logLines: string[] = [];
  const h = await startApi({ clients, profiles, hosts }, { registry, log: createLogger('info', (l) => logLines.push(l)), supervision: { fleet: { url: academy.url, publicKey: pub, intervalSeconds: 3600 } } });
  t.teardown(async () => {
    await h.close();
    await academy.close();
    await origin.close();
  });
  const fleet = h.sup.fleet!;
  const url = (host: string) => `http://${host}:${origin.port}/small`;
  const base = exportBundle(h.gw.gateway.policy);
  const bundle = (version: number, deny: string[]): BundlePayload => ({ ...structuredClone(base), version, lists: { ...structuredClone(base.lists), 'academy-deny': { domains: deny, urls: [], expressions: [] } } });
  const health = async () => (await h.api('GET', '/api/v1/health', { token: null })).json;
  const count = async (outcome: string, reason = '') => (await fleet.metric.get()).values.find((v) => v.labels.outcome === outcome && (v.labels.reason ?? '') === reason)?.value ?? 0;

  // The first poll runs at start, against an empty answer: an error, and nothing changes.
  while (fleet.status.lastOutcome === null) await new Promise((r) => setTimeout(r, 10));
  t.equal(fleet.status.lastOutcome, 'rejected');
  const v0 = h.gw.gateway.policy.version;

  academy.serve(signBundle(bundle(5, ['fleet.test']), priv));
  t.equal(await fleet.pull(), 'applied');
  t.equal(h.gw.gateway.policy.version, v0 + 1);
  t.equal(h.gw.gateway.policy.current.meta.who, 'fleet');
  t.equal((await viaProxy(h.gw.port, url('fleet.test'))).status, 403, 'the bundle is in force');
  t.match((await health()).fleet, { appliedBundleVersion: 5, lastOutcome: 'applied', lastError: null });
  t.equal((await health()).status, 'ok');

  t.equal(await fleet.pull(), 'not-modified', 'ETag: nothing downloaded again');
  t.equal(academy.state.conditional, 1);

  t.test('tampered bundle', async (t) => {
    const signed = signBundle(bundle(6, ['ok.test']), priv);
    const evil = { ...signed, payload: Buffer.from(Buffer.from(signed.payload, 'base64').toString().replace('ok.test', 'xx.test')).toString('base64') };
    academy.serve(evil);
    t.equal(await fleet.pull(), 'rejected');
    t.equal(fleet.status.lastRejection?.reason, 'signature');
    t.equal(h.gw.gateway.policy.version, v0 + 1, 'the current policy stays');
    const hl = await health();
    t.equal(hl.status, 'degraded', 'health reports it');
    t.match(hl.fleet.lastError, /bad signature/);
    t.equal(await count('rejected', 'signature'), 1, 'metric counts it');
    t.ok(logLines.some((l) => /ERROR fleet: bundle rejected \(signature\), the current policy stays/.test(l)), 'the log says so');
    t.match(await registry.metrics(), /vigie_fleet_bundles_total\{outcome="rejected",reason="signature"\} 1/, 'and the gateway registry exposes it');
    const otherKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    academy.serve(signBundle(bundle(6, ['ok.test']), otherKey));
    t.equal(await fleet.pull(), 'rejected', 'signed by another key');
    t.equal(await count('rejected', 'signature'), 2);
    t.equal((await viaProxy(h.gw.port, url('ok.test'))).status, 200);
  });

  t.test('stale bundle', async (t) => {
    academy.serve(signBundle(bundle(4, ['ok.test']), priv));
    t.equal(await fleet.pull(), 'rejected');
    t.equal(fleet.status.lastRejection?.reason, 'stale');
    t.match(fleet.status.lastError, /older than the applied version 5/);
    t.equal(h.gw.gateway.policy.version, v0 + 1);
    t.equal(await count('rejected', 'stale'), 1);
    academy.serve(signBundle(bundle(5, ['fleet.test']), priv));
    t.equal(await fleet.pull(), 'current', 'the same version again changes nothing');
    t.equal(h.gw.gateway.policy.version, v0 + 1);
  });

  t.test('invalid bundle, properly signed', async (t) => {
    const bad = bundle(7, ['not a host']);
    academy.serve(signBundle(bad, priv));
    t.equal(await fleet.pull(), 'rejected');
    t.equal(fleet.status.lastRejection?.reason, 'invalid');
    t.match(fleet.status.lastError, /academy-deny\/domains\/0/);
    const dangling = { ...bundle(7, []), profiles: { ...base.profiles, cycle3: { ...profiles.cycle3, denyLists: ['nowhere'] } } } as unknown as BundlePayload;
    academy.serve(signBundle(dangling, priv));
    t.equal(await fleet.pull(), 'rejected');
    t.match(fleet.status.lastError, /unknown academy list "nowhere"/);
    academy.serve('{"format": "vigie-signed-policy/1"');
    t.equal(await fleet.pull(), 'rejected');
    t.equal(fleet.status.lastRejection?.reason, 'format');
    t.equal(h.gw.gateway.policy.version, v0 + 1, 'the current policy stays');
    t.equal((await viaProxy(h.gw.port, url('fleet.test'))).status, 403);
  });

  t.test('a newer bundle made with the CLI (export, sign) is applied; history says where it came from', async (t) => {
    const dir = tmp('vigie-academy-');
    const keyFile = join(dir, 'academy.key');
    writeFileSync(keyFile, priv);
    const cli = ['--import', 'tsx', 'src/cli.ts'];
    await run(process.execPath, [...cli, 'policy', 'export', '--data', h.gw.config.dataDir, '--bundle-version', '9', '--out', join(dir, 'b.json')]);
    await run(process.execPath, [...cli, 'policy', 'sign', '--key', keyFile, '--in', join(dir, 'b.json'), '--out', join(dir, 'b.signed.json')]);
    const signed = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'b.signed.json'), 'utf8'));
    t.equal(verifyBundle(signed, publicKey).version, 9);
    academy.serve(signed);
    t.equal(await fleet.pull(), 'applied');
    t.equal(fleet.status.appliedBundleVersion, 9);
    t.equal((await health()).status, 'ok', 'healthy again after a good bundle');
    const hist = await h.api('GET', '/api/v1/policy/history?limit=1');
    t.match(hist.json.versions[0], { who: 'fleet', action: 'fleet.apply', bundleVersion: 9 });
    t.equal(await count('applied'), 2);
    const lists = (await h.api('GET', '/api/v1/lists')).json.academy as { name: string; version: number }[];
    t.equal(lists.find((l) => l.name === 'academy-deny')!.version, v0 + 1, 'a list the new bundle left alone keeps the version that changed it');
  });
});

t.test('RSA keys sign and verify too; the wrong algorithm is refused', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const payload: BundlePayload = { format: 'vigie-policy/1', version: 1, created: new Date().toISOString(), origin: 't', profiles: {}, lists: {} };
  const signed = signBundle(payload, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  t.equal(signed.alg, 'rsa-sha256');
  t.equal(verifyBundle(signed, rsa.publicKey).version, 1);
  t.throws(() => verifyBundle(signed, ed.publicKey), /signed with rsa-sha256/);
});
