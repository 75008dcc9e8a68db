// The console in a real Chromium (playwright-core driving Debian's /usr/bin/chromium) against a
// real gateway: sign-in per role, a wrong token, list and profile edits the proxy obeys, journal
// search with "why?", a requisition export and its chain head, a rollback, a teacher's unblock from
// the block page's link, a report escalated to a webhook, the weekly summary. Screenshots go to
// .tap/screens/ (not committed); any error in a page's console fails the test.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { CHROMIUM, withChromium } from './browser-helpers.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startOrigin, tmp, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const SCREENS = join(PACKAGE_ROOT, '.tap', 'screens');

await withChromium('console browser tests', run);

async function run(): Promise<void> {
  // The test drives what `npm run build` produces; rebuilding is ~50 ms and keeps it current.
  execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/build-console.mjs')]);
  mkdirSync(SCREENS, { recursive: true });
  const { chromium } = await import('playwright-core');

  const origin = await startOrigin();
  // The academy's webhook: records what escalations post.
  const hooked: unknown[] = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => { hooked.push(JSON.parse(body)); res.end('ok'); });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const names = ['www.site.test', 'listed.test', 'entry.test', 'games.test', 'adult.test'];
  const h = await startApi({
    clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }, { network: '127.0.0.3/32', profile: 'college' }],
    profiles: {
      cycle3: { mode: 'blocklist', categories: ['adult', 'malware', 'games'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
      college: { mode: 'blocklist', categories: ['adult', 'games'], allowLists: [], denyLists: [] },
    },
    hosts: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])),
    notifications: { webhooks: [`http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`] },
  });
  const site = (host: string, from = '127.0.0.1') => viaProxy(h.gw.port, `http://${host}:${origin.port}/small`, { localAddress: from });
  const context = await chromium.launchPersistentContext(tmp('vigie-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    locale: 'fr-FR',
  });
  t.teardown(async () => {
    await context.close();
    await h.close();
    await origin.close();
    hook.close();
  });
  const base = `https://127.0.0.1:${h.sup.port}/admin/`;
  const tokens = { admin: h.admin, supervisor: await h.tokenFor('supervisor', 'IEN test'), requisition: await h.tokenFor('requisition', 'OPJ test'), teacher: await h.tokenFor('teacher', 'Mme Martin') };

  /** A fresh page signed in as `token`, collecting console errors (each test asserts none). */
  async function signIn(token: string, width = 1280, hash = '') {
    const page = await context.newPage();
    await page.setViewportSize({ width, height: 900 });
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.accept());
    await page.goto(base + hash);
    await page.evaluate('sessionStorage.clear()');
    await page.getByLabel('Jeton d’accès').fill(token);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    /** Ends the page: any error its console logged fails the test. */
    const done = async (t: { same(a: unknown, b: unknown, m: string): unknown }, expected: RegExp[] = []) => {
      t.same(errors.filter((e) => !expected.some((x) => x.test(e))), [], 'no error in the page console');
      await page.close();
    };
    return { page, done };
  }
  const navOf = async (page: import('playwright-core').Page) => (await page.locator('nav a').allTextContents());
  const shot = (page: import('playwright-core').Page, name: string) => page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
  /** The screen has everything it asked for (no 'loading' line left): quicker than waiting for an idle network. */
  const loaded = (page: import('playwright-core').Page) => page.locator('main').getByText(/^(Chargement…|Loading…)$/).first().waitFor({ state: 'detached' });
  /** The page is no wider than its window (tables scroll inside their own box). */
  const noOverflow = (page: import('playwright-core').Page) => page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');

  t.test('the page is served with a strict CSP and no inline code', async (t) => {
    const r = await h.api('GET', '/admin/', { token: null });
    const csp = String(r.headers['content-security-policy']);
    t.notMatch(csp, /unsafe-inline|unsafe-eval/);
    t.match(csp, /script-src 'self'/);
    t.notMatch(r.text, /<script>|style=|\son[a-z]+=/i, 'no inline script, style or handler');
  });

  t.test('a wrong token is an error, not a signed-in page', async (t) => {
    const page = await context.newPage();
    await page.goto(base);
    await page.getByLabel('Jeton d’accès').fill('not-a-token');
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.getByRole('alert').waitFor();
    t.match(await page.getByRole('alert').textContent(), /Jeton refusé/);
    t.equal(await page.locator('nav').count(), 0, 'no panel shown');
    await shot(page, 'signin-wrong-token');
    await page.close();
  });

  t.test('each role sees only its screens', async (t) => {
    const expect = {
      admin: ['Tableau de bord', 'Profils', 'Listes de l’académie', 'Décision', 'Versions de la politique', 'Journal d’audit', 'Jetons', 'Déblocages temporaires', 'Signalements', 'Synthèse de la semaine', 'Alertes'],
      supervisor: ['Tableau de bord', 'Profils', 'Listes de l’académie', 'Journal des connexions', 'Décision', 'Versions de la politique', 'Journal d’audit', 'Déblocages temporaires', 'Signalements', 'Synthèse de la semaine', 'Alertes'],
      requisition: ['Réquisitions'],
      teacher: ['Déblocages temporaires'],
    };
    for (const role of ['admin', 'supervisor', 'requisition', 'teacher'] as const) {
      const { page, done } = await signIn(tokens[role]);
      await page.locator('#who').waitFor();
      t.match(await page.locator('#who').textContent(), `(${role})`);
      t.same(await navOf(page), expect[role], `${role}: its screens`);
      for (const [i, link] of (await page.locator('nav a').all()).entries()) {
        await link.click();
        await page.locator('main h2').first().waitFor();
        await loaded(page);
        await shot(page, `${role}-${i}-${(await page.locator('main h2').first().textContent())!.replace(/\W+/g, '-')}`);
        t.ok(await noOverflow(page), `${role}: screen ${i} fits 1280 px`);
      }
      if (role === 'supervisor') {
        await page.locator('#nav-policy').click();
        await page.locator('#policy-table').waitFor();
        t.equal(await page.locator('[id^=rollback-]').count(), 0, 'a supervisor gets no rollback button');
      }
      await done(t);
    }
  });

  t.test('at 390 px every screen fits the window, in English too', async (t) => {
    const { page, done } = await signIn(tokens.supervisor, 390);
    await page.locator('#who').waitFor();
    await page.locator('#lang').selectOption('en');
    await page.locator('nav a', { hasText: 'Connection journal' }).waitFor();
    for (const link of await page.locator('nav a').all()) {
      await link.click();
      await loaded(page);
      t.ok(await noOverflow(page), `${await link.textContent()}: no horizontal overflow at 390 px`);
    }
    await shot(page, 'supervisor-390-en');
    await page.locator('#lang').selectOption('fr');
    await done(t);
  });

  t.test('an admin adds a deny entry to an academy list and the proxy blocks it', async (t) => {
    t.equal((await site('listed.test')).status, 200, 'reachable before');
    const { page, done } = await signIn(tokens.admin);
    await page.locator('#nav-lists').click();
    await page.locator('#list-select').selectOption('academy-deny');
    await page.getByLabel('Coller plusieurs entrées (une par ligne)').fill('listed.test\nnot a domain!');
    await page.locator('#list-add').click();
    await page.getByRole('alert').waitFor();
    t.match(await page.getByRole('alert').textContent(), /not a domain!/, 'the bad line is named');
    await page.getByLabel('Coller plusieurs entrées (une par ligne)').fill('listed.test');
    await page.getByLabel('Motif (journalisé)').fill('test console');
    await page.locator('#list-add').click();
    await page.locator('#list-entries li', { hasText: 'listed.test' }).waitFor();
    await shot(page, 'admin-list-added');
    t.equal((await site('listed.test')).status, 403, 'blocked after');
    await done(t, [/the server responded with a status of 400/]); // the refused paste, on purpose
  });

  t.test('an admin adds and removes a profile entry', async (t) => {
    const { page, done } = await signIn(tokens.admin);
    await page.locator('#nav-profiles').click();
    await page.getByRole('button', { name: 'cycle3', exact: true }).click();
    await page.locator('#profile-view h3', { hasText: 'cycle3' }).waitFor();
    await page.getByLabel('Entrée (domaine, domaine/chemin)').fill('entry.test');
    await page.locator('#profile-entry-form button').click();
    await page.locator('#entries-deny li', { hasText: 'entry.test' }).waitFor();
    t.equal((await site('entry.test')).status, 403, 'the profile entry blocks');
    t.equal((await site('entry.test', '127.0.0.3')).status, 200, 'another profile is not affected');
    await page.getByRole('button', { name: 'Retirer entry.test' }).click();
    await page.locator('#entries-deny li', { hasText: 'entry.test' }).waitFor({ state: 'detached' });
    t.equal((await site('entry.test')).status, 200, 'removed: reachable again');
    await done(t);
  });

  t.test('a supervisor finds a device’s visits and asks why one was blocked', async (t) => {
    for (const host of ['www.site.test', 'listed.test']) await site(host);
    await h.gw.gateway.journal!.flush();
    const { page, done } = await signIn(tokens.supervisor);
    await page.locator('#nav-journal').click();
    await page.getByLabel('Poste (adresse)').fill('127.0.0.1');
    await page.getByLabel('Site').fill('listed.test');
    await page.getByRole('button', { name: 'Rechercher' }).click();
    await page.locator('#journal-table tbody tr').first().waitFor();
    const rows = await page.locator('#journal-table tbody tr').allTextContents();
    t.ok(rows.length >= 2 && rows.every((r) => r.includes('listed.test')), 'only that host');
    await page.locator('#journal-table tbody tr', { hasText: 'block' }).first().getByRole('button', { name: 'Pourquoi ?' }).click();
    await page.locator('#explanation').waitFor();
    t.match(await page.locator('#explanation').textContent(), /academy-deny/);
    await shot(page, 'supervisor-journal-why');
    await done(t);
  });

  t.test('a requisition exports with a reference, and the export is audited', async (t) => {
    const { page, done } = await signIn(tokens.requisition);
    await page.getByLabel('Numéro de réquisition (obligatoire)').fill('PV 2026/0099');
    await page.getByLabel('Poste (adresse)').fill('127.0.0.1');
    await page.getByRole('button', { name: 'Exporter' }).click();
    await page.locator('#export-result').waitFor();
    t.match(await page.locator('#export-result').textContent(), /ligne\(s\) exportée\(s\)/);
    t.match(await page.locator('#export-digest').textContent(), /SHA-256 [0-9a-f]{64}/);
    t.match(await page.locator('#export-head').textContent(), /^\d+:[0-9a-f]{64}$/, 'the chain head the export reached');
    await shot(page, 'requisition-export');
    const audit = await h.api('GET', '/api/v1/audit?action=journal.export&limit=10');
    const entry = audit.json.entries.find((e: { action: string; details: { reference?: string } }) => e.action === 'journal.export' && e.details.reference === 'PV 2026/0099');
    t.ok(entry, 'the export is in the audit with its reference');
    t.equal(entry.details.filter.client, '127.0.0.1');
    await done(t);
  });

  t.test('an admin compares two versions and rolls back', async (t) => {
    const { page, done } = await signIn(tokens.admin);
    await page.locator('#nav-policy').click();
    await page.locator('#policy-table').waitFor();
    const current = (await h.api('GET', '/api/v1/policy')).json.version as number;
    await page.locator('#policy-table tbody tr').first().getByRole('button', { name: 'Comparer avec la précédente' }).click();
    await page.locator('#policy-diff li').first().waitFor();
    await shot(page, 'admin-policy-diff');
    await page.locator('#rollback-1').click();
    await page.getByRole('status').filter({ hasText: `version ${current + 1}` }).waitFor();
    t.equal((await h.api('GET', '/api/v1/policy')).json.version, current + 1);
    t.equal((await site('listed.test')).status, 200, 'version 1 did not list listed.test');
    await done(t);
  });

  t.test('an admin creates and revokes a token', async (t) => {
    const { page, done } = await signIn(tokens.admin);
    await page.locator('#nav-tokens').click();
    await page.getByLabel('Nom').fill('CPE test');
    await page.getByRole('button', { name: 'Créer' }).click();
    await page.locator('#new-token code').waitFor();
    const secret = (await page.locator('#new-token code').textContent())!;
    t.equal((await h.api('GET', '/api/v1/whoami', { token: secret })).json.name, 'CPE test');
    await page.getByRole('button', { name: 'Révoquer CPE test' }).click();
    await page.getByRole('button', { name: 'Révoquer CPE test' }).waitFor({ state: 'detached' });
    t.equal((await h.api('GET', '/api/v1/whoami', { token: secret })).status, 401, 'revoked');
    await shot(page, 'admin-tokens');
    await done(t);
  });

  t.test('a teacher unblocks a site for a class from the block page’s link, then ends it', async (t) => {
    const page403 = await site('games.test', '127.0.0.3');
    t.equal(page403.status, 403, 'blocked for both classes first');
    t.match(page403.body.toString(), /#\/overrides\/new\?host=games\.test&amp;network=127\.0\.0\.3%2F32|#\/overrides\/new\?host=games\.test&network=127\.0\.0\.3%2F32/, 'the block page links staff to the form');
    const { page, done } = await signIn(tokens.teacher, 1280, '#/overrides/new?host=games.test&network=127.0.0.3%2F32');
    await page.locator('#override-form').waitFor();
    t.equal(await page.getByLabel('Site').inputValue(), 'games.test', 'host prefilled from the link');
    t.equal(await page.getByLabel('Réseau de la classe (CIDR)').inputValue(), '127.0.0.3/32', 'network prefilled');
    await page.getByLabel(/Durée en minutes/).fill('5');
    await page.getByLabel('Motif (journalisé)').fill('atelier jeux mathématiques');
    await page.getByRole('button', { name: 'Débloquer' }).click();
    await page.locator('#override-made').waitFor();
    t.equal((await site('games.test', '127.0.0.3')).status, 200, 'a pupil of that class reaches it');
    t.equal((await site('games.test', '127.0.0.1')).status, 403, 'another class does not');
    await page.getByLabel('Site').fill('adult.test');
    await page.getByRole('button', { name: 'Débloquer' }).click();
    await page.getByRole('alert').filter({ hasText: 'adult' }).waitFor();
    t.pass('a non-overridable host is refused, with its category');
    await shot(page, 'teacher-overrides');
    await page.getByRole('button', { name: 'Terminer games.test' }).click();
    await page.getByRole('button', { name: 'Terminer games.test' }).waitFor({ state: 'detached' });
    t.equal((await site('games.test', '127.0.0.3')).status, 403, 'ended: blocked again');
    await done(t, [/422/]);
  });

  t.test('a report from the block page reaches the queue and an escalation the webhook', async (t) => {
    const sent = await new Promise<number>((resolve, reject) => {
      const body = 'host=games.test&kind=allow&comment=jeu+de+calcul';
      const req = http.request({ host: '127.0.0.1', port: h.gw.port, method: 'POST', path: '/report', localAddress: '127.0.0.3', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end(body);
    });
    t.equal(sent, 200);
    const { page, done } = await signIn(tokens.supervisor);
    await page.locator('#nav-reports').click();
    await page.locator('#reports-open').filter({ hasText: '1 signalement' }).waitFor();
    t.equal(await page.getByRole('button', { name: 'Accepter games.test' }).count(), 0, 'a supervisor cannot accept (admin only)');
    await page.getByRole('button', { name: 'Transmettre à l’académie games.test' }).click();
    await page.locator('#report-step').getByLabel('Motif (journalisé)').fill('à voir par la DANE');
    await page.getByRole('button', { name: 'Valider' }).click();
    await page.locator('#report-done').waitFor();
    t.match(hooked, [{ event: 'report.escalated', report: { host: 'games.test', kind: 'allow', profile: 'college' }, reason: 'à voir par la DANE' }]);
    await shot(page, 'supervisor-reports');
    await page.locator('#nav-weekly').click();
    await page.locator('#weekly-table tbody tr').first().waitFor();
    t.match(await page.locator('#weekly').textContent(), /games\.test/, 'the week shows the blocked site');
    await shot(page, 'supervisor-weekly');
    await done(t);
  });
}
