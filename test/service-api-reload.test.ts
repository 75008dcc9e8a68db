import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DEAD_DNS, TEST_LISTS, tmp, writeLists } from './helpers.js';
import { freePort, startCli, writeJson } from './service-cli.js';
import { call } from './supervision-helpers.js';

const ut1 = writeLists(tmp(), TEST_LISTS);

t.test('the running gateway: API changes in the process log; SIGHUP names the config profiles the API policy overrides', async (t) => {
  const dir = tmp();
  const data = join(dir, 'data');
  const [port, apiPort] = [await freePort(), await freePort()];
  const doc = (cycle2Categories: string[]) => ({
    listen: [{ host: '127.0.0.1', port }],
    metrics: { enabled: false },
    journal: { enabled: false },
    workers: 1,
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    lists: { ut1 },
    supervision: { listen: { host: '127.0.0.1', port: apiPort } },
    profiles: { cycle2: { mode: 'blocklist', categories: cycle2Categories } },
  });
  const file = writeJson(join(dir, 'vigie.json'), doc(['adult']));
  const cli = startCli(['--config', file, '--data', data]);
  t.teardown(() => void cli.child.kill('SIGKILL'));
  await cli.waitLog(/gateway ready/);
  const admin = readFileSync(join(data, 'admin.token'), 'utf8').trim();
  const ca = readFileSync(join(data, 'supervision', 'cert.pem'), 'utf8');

  const root = await call(apiPort, ca, 'GET', '/');
  t.equal(root.status, 302);
  t.equal(root.headers.location, '/admin/', '/ leads to the console');

  // A file change before the API manages anything applies, and nothing is said about it.
  writeJson(file, doc(['adult', 'games']));
  cli.child.kill('SIGHUP');
  await cli.waitLog(/INFO {2}reloaded /);
  t.notMatch(cli.log(), /not applied/);

  const put = await call(apiPort, ca, 'PUT', '/api/v1/profiles/cycle3?reason=test', { token: admin, body: { mode: 'blocklist', categories: ['adult'] } });
  t.equal(put.status, 200, put.text);
  await cli.waitLog(/INFO {2}policy changed over the API actor="admin \(tk_[0-9a-f]+\)" source=127\.0\.0\.1 action=profile\.replace target=cycle3 version=2/);

  // Now the API manages the policy: the file's cycle2 change does not apply, and the reload says so.
  writeJson(file, doc(['adult', 'games', 'malware']));
  cli.child.kill('SIGHUP');
  await cli.waitLog(/INFO {2}reloaded /, 2);
  t.match(cli.log(), /WARN {2}reload: these profiles of the config file are not applied: the policy managed over the API or the fleet overrides them .* profiles="cycle2,cycle3" policyVersion=2 changedBy="admin \(tk_/);
  const cycle2 = await call(apiPort, ca, 'GET', '/api/v1/profiles/cycle2', { token: admin });
  t.same(cycle2.json.categories, ['adult', 'games'], 'the managed version stays in force');

  cli.child.kill('SIGTERM');
  t.same(await cli.exited, { code: 0, signal: null });
});
