// The captive portal in a real Chromium (playwright-core driving Debian's /usr/bin/chromium): a
// device that is not logged in asks for a site, lands on the portal, logs in against a real slapd,
// is sent back to the site, browses with its user's profile, and the journal rows carry the user.
// Chromium uses the gateway as its HTTP proxy with `explicit: "portal"`, which is what a device
// whose HTTP is redirected sees; the portal on 127.0.0.1 is reached directly (loopback bypasses the proxy).
import t from 'tap';
import { CHROMIUM, chromiumMissing } from './browser-helpers.js';
import { startPortal } from '../src/auth/portal.js';
import { importFiles } from '../src/directory/import.js';
import { Directory } from '../src/directory/store.js';
import { silentLogger } from '../src/log.js';
import { aafName, pupil, writeAaf } from './aaf-helpers.js';
import { startGateway, startOrigin, testCert, tmp } from './helpers.js';
import { PEOPLE, slapdMissing, startSlapd, TEST_USERS } from './slapd-helpers.js';

const skip = chromiumMissing() || slapdMissing();

t.test('Chromium: redirected to the portal, logs in, browses as its user', { skip }, async (t) => {
  const { chromium } = await import('playwright-core');
  const slapd = await startSlapd([...TEST_USERS, { uid: 'theo', password: 'Collège-3e', aafId: '1000003' }]);
  t.teardown(() => slapd.stop());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const dataDir = tmp();
  const dir = Directory.open(dataDir);
  await importFiles([writeAaf(tmp(), aafName('0781234A', 'Complet', '20260901', 'Eleve'), [pupil('1000003', { mef: '10310019110' })])], dir);
  dir.close();
  const gw = await startGateway({
    dataDir,
    clients: [{ network: '127.0.0.1/32', profile: 'cycle1', auth: 'required', unauthenticatedProfile: 'ent' }],
    profiles: { ent: { mode: 'allowlist', categories: [], allow: ['ent.test'] }, cycle1: { mode: 'allowlist', categories: ['child'] }, college: { mode: 'blocklist', categories: ['adult'] } },
    hosts: { 'www.site.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
    auth: { ldap: { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber' }, portal: { listen: { host: '127.0.0.1', port: 0 }, explicit: 'portal' } },
  });
  t.teardown(() => gw.close());
  const portal = await startPortal({ config: () => gw.gateway.config, identity: gw.gateway.identity, clients: () => gw.gateway.snapshot.clients, log: silentLogger }, testCert());
  t.teardown(() => portal.close());

  const context = await chromium.launchPersistentContext(tmp('vigie-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--proxy-server=http://127.0.0.1:${gw.port}`],
    ignoreHTTPSErrors: true,
    locale: 'fr-FR',
  });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => errors.push(e.message));
  const t0 = Date.now();

  const wanted = `http://www.site.test:${origin.port}/small?cours=1`;
  await page.goto(wanted);
  t.ok(page.url().startsWith(`${portal.url}/?to=`), `redirected to the portal: ${page.url()}`);
  t.equal(await page.title(), 'Connexion au réseau de l’école');
  await page.getByLabel('Identifiant').fill('theo');
  await page.getByLabel('Mot de passe').fill('faux');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  t.equal(await page.getByRole('alert').textContent(), 'Identifiant ou mot de passe incorrect.', 'a wrong password is said, accessibly');
  await page.getByLabel('Mot de passe').fill('Collège-3e');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL(wanted, { timeout: 10_000 });
  t.match(await page.textContent('body'), /hello from origin/, 'back on the page first asked for, through the proxy');
  const blocked = await page.goto(`http://adult.test:${origin.port}/small`);
  t.equal(blocked?.status(), 403, 'the user\'s profile (college) blocks adult sites');
  t.equal((await page.goto(`http://www.site.test:${origin.port}/small`))?.status(), 200, 'and allows what cycle1, the room\'s profile, would not');
  t.same(errors.filter((e) => !/status of (401|403)/.test(e)), [], 'no error in the pages but the 401 and 403 asked for (no CSP violation)');

  await new Promise((r) => setTimeout(r, 100));
  await gw.gateway.journal!.flush();
  const rows = gw.gateway.journal!.search({ from: t0 - 1000 }, { limit: 50 }).rows;
  const visits = rows.filter((r) => r.host === 'www.site.test' || r.host === 'adult.test');
  t.ok(visits.length >= 3, `${visits.length} journal rows for the sites visited`);
  t.same([...new Set(visits.map((r) => r.user))], ['1000003'], 'every one carries the user\'s AAF id');
  t.same([...new Set(visits.map((r) => r.profile))], ['college']);
  // Chromium's own background connections before the login are tunnels under the unauthenticated profile.
  t.same(rows.filter((r) => r.user === null && !(r.profile === 'ent' && r.method === 'CONNECT')), [], 'anonymous rows: only pre-login tunnels');
});
