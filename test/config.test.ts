import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig, resolveConfig } from '../src/config/load.js';
import { tmp } from './helpers.js';

const problems = (doc: unknown): string => {
  try {
    resolveConfig(doc, 'test.json');
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '';
};

t.test('embedded defaults are valid and describe the demo', async (t) => {
  const cfg = loadConfig();
  t.same(cfg.listen, [{ host: '127.0.0.1', port: 3128 }]);
  t.same(Object.keys(cfg.profiles).sort(), ['college', 'cycle1', 'cycle2', 'cycle3', 'staff']);
  t.equal(cfg.profiles.cycle1!.mode, 'allowlist');
  t.same(cfg.clients.map((c) => [c.network, c.profile]), [
    ['127.0.0.1/32', 'cycle3'], ['127.0.0.2/32', 'cycle1'], ['127.0.0.3/32', 'cycle2'], ['127.0.0.4/32', 'college'], ['127.0.0.5/32', 'staff'],
  ]);
  for (const cat of ['adult', 'agressif', 'dating', 'drogue', 'gambling', 'hacking', 'lingerie', 'mixed_adult', 'malware', 'phishing', 'redirector', 'strict_redirector', 'warez', 'sect', 'doh']) {
    t.ok(cfg.profiles.cycle2!.categories.includes(cat), `cycle2 blocks ${cat}`);
    t.ok(cfg.profiles.cycle3!.categories.includes(cat), `cycle3 blocks ${cat}`);
  }
  t.same(cfg.profiles.staff!.categories.slice(0, 3), ['malware', 'phishing', 'cryptojacking']);
  t.equal(cfg.connectPorts[0], 443);
});

t.test('a partial file merges over the defaults', async (t) => {
  const cfg = resolveConfig({ timeouts: { connectMs: 1234 }, profiles: { extra: { mode: 'blocklist', categories: ['adult'] } } });
  t.equal(cfg.timeouts.connectMs, 1234);
  t.equal(cfg.timeouts.idleMs, 120_000, 'other keys of the section stay');
  t.ok(cfg.profiles.cycle1 && cfg.profiles.extra, 'profiles merge by name');
  t.same(cfg.profiles.extra!.allow, [], 'missing rule lists default to empty');
});

t.test('invalid configs name the path and the reason', async (t) => {
  t.match(problems({ listen: [{ host: '127.0.0.1', port: 70000 }] }), /\/listen\/0\/port: must be <= 65535/);
  t.match(problems({ lisen: [] }), /unknown key "lisen"/);
  t.match(problems({ clients: [{ network: '10.0.0.0/33', profile: 'cycle2' }] }), /\/clients\/0\/network: not an address or CIDR range/);
  t.match(problems({ clients: [{ network: '10.0.0.0/8', profile: 'nobody' }] }), /\/clients\/0\/profile: unknown profile "nobody"/);
  t.match(problems({ profiles: { p: { mode: 'sometimes' } } }), /\/profiles\/p\/mode: must be one of "blocklist", "allowlist"/);
  t.match(problems({ profiles: { p: { mode: 'blocklist', schedule: { within: 'lunch', otherwise: { mode: 'blocklist' } } } } }), /\/profiles\/p\/schedule\/within: unknown time window "lunch"/);
  t.match(problems({ times: { late: [{ days: ['mon'], from: '18:00', to: '08:00' }] } }), /\/times\/late\/0: "from" \(18:00\) must be before "to"/);
  t.match(problems({ hosts: { 'a.test': 'not-an-ip' } }), /\/hosts\/a.test: "not-an-ip" is not an IP address/);
  t.match(problems({ timezone: 'Mars/Olympus' }), /\/timezone: unknown time zone/);
  t.match(problems({ timeouts: { connectMs: 'soon' } }), /\/timeouts\/connectMs: must be integer/);
  t.match(problems({ dns: { servers: ['not an ip'] } }), /\/dns\/servers\/0: "not an ip" is not a name server address/);
  t.equal(problems({ dns: { servers: ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:53'] } }), '', 'ip, ip:port, ipv6, [ipv6]:port');
  t.match(problems({ dns: { servers: ['127.0.0.1:99999'] } }), /\/dns\/servers\/0: /);
  const fleet = (f: Record<string, unknown>) => problems({ supervision: { fleet: { url: 'https://academy.test/policy.json', ...f } } });
  t.match(fleet({}), /\/supervision\/fleet\/publicKey: is required/);
  t.notMatch(fleet({}), /must be null|must match a schema in anyOf/, 'no noise from the null branch');
  t.match(fleet({ publicKey: '/nonexistent/academy.pub' }), /\/supervision\/fleet\/publicKey: cannot read the public key file/);
  t.match(fleet({ publicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }), /\/supervision\/fleet\/publicKey: not a PEM public key/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.match(fleet({ publicKey: ec }), /\/supervision\/fleet\/publicKey: a ec key: use Ed25519 or RSA/);
  const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.equal(fleet({ publicKey: ed }), '', 'an inline Ed25519 key');
  t.match(problems({ profiles: { __proto__x: { mode: 'blocklist' } } }), '', 'ordinary names');
  t.match(problems(JSON.parse('{"profiles": {"__proto__": {"mode": "blocklist"}}}')), /\/profiles: property name must be valid/, '__proto__ is not a name');
});

t.test('config files: unreadable and malformed', async (t) => {
  const dir = tmp();
  t.throws(() => loadConfig(join(dir, 'missing.json')), /missing\.json[\s\S]*cannot read/);
  writeFileSync(join(dir, 'bad.json'), '{ "listen": [ }');
  t.throws(() => loadConfig(join(dir, 'bad.json')), /bad\.json[\s\S]*not valid JSON/);
});

t.test('the example school config in deploy/ is valid', async (t) => {
  const cfg = loadConfig(new URL('../deploy/vigie.example.json', import.meta.url).pathname);
  t.ok(cfg.clients.length >= 4);
  t.not(cfg.listen[0]!.host, '127.0.0.1', 'listens on the LAN');
});

t.test('destination policy keys: defaults, and errors naming the path', async (t) => {
  const cfg = loadConfig();
  t.same(cfg.destinations, { allow: [] }, 'nothing internal is open by default');
  t.same(cfg.httpPorts, [80, 21, 443, 70, 210, 280, 488, 591, 777, '1025-65535'], "Squid's Safe_ports");
  t.equal(problems({ destinations: { allow: [{ network: '10.20.0.10/32', ports: [443] }] }, httpPorts: [80, '8000-8100'] }), '');
  t.match(problems({ destinations: { allow: [{ network: '10.20.0.300/32' }] } }), /\/destinations\/allow\/0\/network: not an address or CIDR range/);
  t.match(problems({ destinations: { allow: [{ ports: [443] }] } }), /\/destinations\/allow\/0\/network: is required/);
  t.match(problems({ destinations: { open: true } }), /\/destinations: unknown key "open"/);
  t.match(problems({ httpPorts: ['9000-8000'] }), /\/httpPorts\/0: "9000-8000" is not a port range/);
  t.match(problems({ httpPorts: ['80-99999'] }), /\/httpPorts\/0: "80-99999" is not a port range/);
  t.match(problems({ httpPorts: [0] }), /\/httpPorts\/0/);
});
