import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { MapIndexBuilder } from '../src/lists/map-index.js';
import { decide, decideCached } from '../src/policy/decide.js';
import { buildSnapshot } from '../src/policy/snapshot.js';
import type { DecisionRequest } from '../src/policy/types.js';

// Decisions without sockets: a snapshot is built from a config and in-memory indexes.
function ut1() {
  const b = new MapIndexBuilder();
  const add = (cat: string, domains: string[], urls: string[] = [], expr: string[] = []) => {
    const c = b.category(cat);
    domains.forEach((d) => b.addDomain(c, d));
    urls.forEach((u) => b.addUrl(c, u));
    expr.forEach((e) => b.addExpression(c, e));
  };
  add('adult', ['adult.test', 'both.test']);
  add('games', ['games.test', 'both.test']);
  add('child', ['kids.test']);
  add('liste_blanche', ['white.test'], ['portal.test/ecole']);
  add('publicite', [], [], ['/banner/']);
  return b.build('lists-v1');
}

function academy() {
  const b = new MapIndexBuilder();
  b.addDomain(b.category('academy-allow'), 'academy-ok.test');
  b.addDomain(b.category('academy-deny'), 'academy-no.test');
  b.addDomain(b.category('academy-allow'), 'allowed.adult.test');
  return b;
}

const doc = {
  clients: [
    { network: '10.0.0.0/8', profile: 'staff' },
    { network: '10.1.0.0/16', profile: 'college' },
    { network: '10.1.2.0/24', profile: 'cycle1' },
    { network: 'fd00::/64', profile: 'college' },
  ],
  profiles: {
    cycle1: { mode: 'allowlist', categories: ['child', 'liste_blanche'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
    college: {
      mode: 'blocklist',
      categories: ['adult', 'games', 'publicite'],
      allow: ['games.test/maths'],
      deny: ['forbidden.test'],
      allowLists: ['academy-allow'],
      denyLists: ['academy-deny'],
      schedule: { within: 'school', otherwise: { mode: 'blocklist', categories: ['adult'] } },
    },
    staff: { mode: 'blocklist', categories: [] },
  },
  times: { school: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }] },
  timezone: 'Europe/Paris',
};

const config = resolveConfig(doc);
const snapshot = buildSnapshot({ config, ut1: ut1(), academy: academy(), policyVersion: 7 });
// Tuesday 2026-11-24 10:00 in Paris (UTC+1) is school time; 20:00 is not; Saturday never is.
const SCHOOL = Date.parse('2026-11-24T09:00:00Z');
const EVENING = Date.parse('2026-11-24T19:00:00Z');
const SATURDAY = Date.parse('2026-11-28T09:00:00Z');

const req = (client: string, host: string, path = '/', over: Partial<DecisionRequest> = {}): DecisionRequest => ({ client, scheme: 'http', host, port: 80, path, time: SCHOOL, ...over });

t.test('client to profile: most specific range wins, IPv4-mapped and IPv6 clients', async (t) => {
  t.equal(decide(snapshot, req('10.9.9.9', 'x.test')).profile, 'staff');
  t.equal(decide(snapshot, req('10.1.9.9', 'x.test')).profile, 'college');
  t.equal(decide(snapshot, req('10.1.2.3', 'x.test')).profile, 'cycle1');
  t.equal(decide(snapshot, req('::ffff:10.1.2.3', 'x.test')).profile, 'cycle1', 'IPv4-mapped address');
  t.equal(decide(snapshot, req('fd00::42', 'x.test')).profile, 'college');
  const out = decide(snapshot, req('192.0.2.1', 'x.test'));
  t.match(out, { action: 'block', rule: 'no-client', profile: null });
  t.match(decide(snapshot, req('not-an-ip', 'x.test')), { rule: 'no-client' });
});

t.test('blocklist profile', async (t) => {
  t.match(decide(snapshot, req('10.1.9.9', 'www.adult.test')), { action: 'block', rule: 'category', category: 'adult', entry: 'adult.test', listVersion: 'lists-v1', policyVersion: 7 });
  t.match(decide(snapshot, req('10.1.9.9', 'open.test')), { action: 'allow', rule: 'default', category: null, entry: null });
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/maths/lesson')), { action: 'allow', rule: 'profile-allow' }, 'profile allow entry wins over a category');
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/arcade')), { action: 'block', category: 'games' });
  t.match(decide(snapshot, req('10.1.9.9', 'allowed.adult.test')), { action: 'allow', rule: 'list-allow', category: 'academy-allow' }, 'academy allow wins over a category');
  t.match(decide(snapshot, req('10.1.9.9', 'academy-no.test')), { action: 'block', rule: 'list-deny', category: 'academy-deny' });
  t.match(decide(snapshot, req('10.1.9.9', 'sub.forbidden.test')), { action: 'block', rule: 'profile-deny', entry: 'forbidden.test' });
  t.match(decide(snapshot, req('10.1.9.9', 'ads.test', '/img/banner/1.png')), { action: 'block', rule: 'category', category: 'publicite', matchKind: 'expression' });
  t.match(decide(snapshot, req('10.9.9.9', 'adult.test')), { action: 'allow' }, 'staff blocks nothing here');
});

t.test('allowlist-only profile', async (t) => {
  t.match(decide(snapshot, req('10.1.2.3', 'kids.test')), { action: 'allow', rule: 'allowlist', category: 'child' });
  t.match(decide(snapshot, req('10.1.2.3', 'portal.test', '/ecole/cp')), { action: 'allow', rule: 'allowlist', matchKind: 'url' });
  t.match(decide(snapshot, req('10.1.2.3', 'portal.test', '/other')), { action: 'block', rule: 'allowlist-only', category: null });
  t.match(decide(snapshot, req('10.1.2.3', 'academy-ok.test')), { action: 'allow', rule: 'list-allow' });
  t.match(decide(snapshot, req('10.1.2.3', 'open.test')), { action: 'block', rule: 'allowlist-only' });
});

t.test('schedules pick the rule set by local time', async (t) => {
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/', { time: SCHOOL })), { action: 'block', period: 'within' });
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/', { time: EVENING })), { action: 'allow', period: 'otherwise' });
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/', { time: SATURDAY })), { action: 'allow', period: 'otherwise' });
  t.match(decide(snapshot, req('10.1.9.9', 'adult.test', '/', { time: EVENING })), { action: 'block', category: 'adult' });
  // 07:59 and 18:00 local are outside [08:00, 18:00)
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/', { time: Date.parse('2026-11-24T06:59:00Z') })), { period: 'otherwise' });
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/', { time: Date.parse('2026-11-24T17:00:00Z') })), { period: 'otherwise' });
  t.match(decide(snapshot, req('10.1.9.9', 'games.test', '/', { time: Date.parse('2026-11-24T16:59:00Z') })), { period: 'within' });
});

t.test('tunnel ports and invalid hosts', async (t) => {
  t.match(decide(snapshot, req('10.1.9.9', 'open.test', '', { scheme: 'connect', port: 443 })), { action: 'allow' });
  t.match(decide(snapshot, req('10.1.9.9', 'open.test', '', { scheme: 'connect', port: 22 })), { action: 'block', rule: 'port' });
  t.match(decide(snapshot, req('10.1.9.9', '', '/')), { action: 'block', rule: 'invalid-host' });
});

t.test('fail closed without lists: only allow entries pass', async (t) => {
  const closed = buildSnapshot({ config, ut1: null, academy: academy(), policyVersion: 1 });
  t.equal(closed.listsLoaded, false);
  t.match(decide(closed, req('10.1.9.9', 'open.test')), { action: 'block', rule: 'fail-closed' });
  t.match(decide(closed, req('10.1.9.9', 'academy-ok.test')), { action: 'allow', rule: 'list-allow' });
  t.match(decide(closed, req('10.1.9.9', 'games.test', '/maths')), { action: 'allow', rule: 'profile-allow' });
});

t.test('cached decisions equal pure decisions', async (t) => {
  const hosts = ['adult.test', 'www.adult.test', 'games.test', 'open.test', 'kids.test', 'portal.test', 'academy-no.test', 'forbidden.test', 'ads.test'];
  const paths = ['/', '/maths/x', '/ecole/a', '/banner/x', '/other'];
  const clients = ['10.1.9.9', '10.1.2.3', '10.9.9.9', '192.0.2.1'];
  let n = 0;
  for (let round = 0; round < 2; round++) {
    for (const c of clients) for (const h of hosts) for (const p of paths) {
      for (const time of [SCHOOL, EVENING]) {
        const r = req(c, h, p, { time });
        t.same(decideCached(snapshot, r), decide(snapshot, r), `${c} ${h}${p}`);
        n++;
      }
    }
  }
  t.ok(n > 500);
});

t.test('the decision cache holds at most limits.decisionCacheSize hosts, and only those seen', async (t) => {
  const cfg = resolveConfig({ ...doc, limits: { decisionCacheSize: 5 } });
  const s = buildSnapshot({ config: cfg, ut1: ut1(), academy: academy(), policyVersion: 3 });
  const rules = [...s.profiles.values()].flatMap((p) => [p.within, p.otherwise]).filter((r) => r !== null);
  t.ok(rules.every((r) => r.cache !== null && r.cache.size === 0), 'empty until used');
  for (let i = 0; i < 20; i++) decideCached(s, req('10.9.9.9', `host${i}.test`));
  const used = rules.filter((r) => r.cache!.size > 0);
  t.equal(used.length, 1, "one rule set saw traffic");
  t.equal(used[0]!.cache!.size, 5, 'bounded: the oldest hosts went');
  t.same(decideCached(s, req('10.9.9.9', 'adult.test')), decide(s, req('10.9.9.9', 'adult.test')));
});

t.test('warnings for unknown categories and lists, never a crash', async (t) => {
  const cfg = resolveConfig({ ...doc, profiles: { ...doc.profiles, staff: { mode: 'blocklist', categories: ['no_such_category'], denyLists: ['no-such-list'], deny: ['bad host'] } } });
  const s = buildSnapshot({ config: cfg, ut1: ut1(), academy: academy(), policyVersion: 2 });
  const msgs = s.warnings.map((w) => w.message).join('\n');
  t.match(msgs, /no_such_category/);
  t.match(msgs, /no-such-list/);
  t.match(msgs, /bad host/);
});
