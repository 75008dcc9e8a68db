import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { PolicyStore } from '../src/policy/store.js';
import { exportBundle, signBundle, type BundlePayload } from '../src/supervision/bundle.js';
import { TEST_LISTS, tmp, writeLists } from './helpers.js';
import { REPO, writeJson } from './service-cli.js';

const run = promisify(execFile);

/** `vigie ...` as a child process: exit code and both outputs. */
async function vigie(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: REPO, timeout: 60_000 });
  if (input !== undefined) p.child.stdin!.end(input);
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const ut1 = writeLists(tmp(), TEST_LISTS);

t.test('vigie policy verify checks the policy inside a good signature', async (t) => {
  const dir = tmp();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = join(dir, 'academy.pub');
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // Exported and signed here (other tests run those commands); verified by the CLI.
  const store = new PolicyStore(resolveConfig({ dataDir: join(dir, 'data') }), silentLogger);
  await store.load();
  const bundle = exportBundle(store);
  const verify = (payload: BundlePayload) => vigie(['policy', 'verify', '-k', pub], JSON.stringify(signBundle(payload, privatePem)));
  const bad = structuredClone(bundle);
  bad.profiles.cycle3!.denyLists = ['no-such-list'];
  bad.lists['academy-deny']!.domains.push('not a host');
  delete bad.profiles.cycle1;
  const [good, refused] = await Promise.all([verify(bundle), verify(bad)]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /^good signature, valid policy: bundle version 1 /);
  t.equal(refused.code, 1, 'a good signature on an invalid policy fails');
  t.match(refused.stderr, /good signature, but the policy inside is invalid/);
  t.match(refused.stderr, /\/profiles\/cycle3\/denyLists\/0: unknown academy list "no-such-list"/);
  t.match(refused.stderr, /\/lists\/academy-deny\/domains\/\d+: not a hostname/);
  t.match(refused.stderr, /profile "cycle1" is used by client network/, "checked against this gateway's client networks");
});

t.test('config errors in dns and supervision.fleet name their JSON path and stop the start (exit 2)', async (t) => {
  // Every case is in config.test.ts; here, that `vigie start` stops on them.
  const dir = tmp();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ dns: { servers: ['not an ip'] } }, /\/dns\/servers\/0: "not an ip" is not a name server address/],
    [{ supervision: { fleet: { url: 'https://academy.test/policy.json', publicKey: join(dir, 'missing.pem') } } }, /\/supervision\/fleet\/publicKey: cannot read the public key file/],
  ];
  const results = await Promise.all(cases.map(([doc], i) => vigie(['start', '--config', writeJson(join(dir, `vigie${i}.json`), { listen: [{ host: '127.0.0.1', port: 0 }], ...doc }), '--data', join(dir, 'data')])));
  cases.forEach(([doc, re], i) => {
    t.equal(results[i]!.code, 2, `${JSON.stringify(doc)}: exit 2`);
    t.match(results[i]!.stderr, re);
  });
});

t.test('vigie check: --at without an offset is in the config timezone; the data dir is printed', async (t) => {
  const dir = tmp();
  const data = join(dir, 'data');
  // Noumea is UTC+11: 10:00 there is 23:00 UTC the day before, outside school hours anywhere in Europe.
  const file = writeJson(join(dir, 'vigie.json'), { timezone: 'Pacific/Noumea', lists: { ut1 } });
  const at = async (time: string) => JSON.parse((await vigie(['check', 'games.test', '--client', '127.0.0.1', '--config', file, '--data', data, '--at', time, '--json'])).stdout);
  // The compiled lists are cached in the data dir by the first run; the others run side by side.
  const local = await at('2026-11-24T10:00');
  t.match(local, { at: '2026-11-23T23:00:00.000Z', timezone: 'Pacific/Noumea', action: 'block', period: 'within', dataDir: data });
  const [utc, text, bad] = await Promise.all([
    at('2026-11-24T10:00:00Z'),
    vigie(['check', 'games.test', '--client', '127.0.0.1', '--config', file, '--data', data, '--at', '2026-11-24T10:00']),
    vigie(['check', 'games.test', '--client', '127.0.0.1', '--config', file, '--data', data, '--at', '2026-13-45T09:00']),
  ]);
  t.match(utc, { at: '2026-11-24T10:00:00.000Z', action: 'allow', period: 'otherwise' }, 'an explicit offset wins');
  t.match(text.stdout, /^BLOCK http:\/\/games\.test\//);
  t.match(text.stdout, /at: {7}2026-11-23T23:00:00\.000Z \(Pacific\/Noumea: 2026-11-24 10:00\)/);
  t.match(text.stdout, new RegExp(`data: {5}${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  t.not(bad.code, 0);
  t.match(bad.stderr, /ISO 8601/);
});
