// The alerts screen in a real Chromium (playwright-core, Debian's /usr/bin/chromium) against a real
// gateway: a pupil device trips the safeguarding threshold, the referent signs in, sees the alert
// with why it fired, is refused a dismissal without a reason, and acknowledges it (audited).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CHROMIUM, withChromium } from './browser-helpers.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { tmp, viaProxy, writeLists } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const SCREENS = join(PACKAGE_ROOT, '.tap', 'screens');

await withChromium('alerts browser test', run);

async function run(): Promise<void> {
  execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/build-console.mjs')]);
  mkdirSync(SCREENS, { recursive: true });
  const { chromium } = await import('playwright-core');
  const h = await startApi(
    { clients: [{ network: '127.0.0.0/24', profile: 'college' }], profiles: { college: { mode: 'blocklist', categories: ['agressif', 'drogue'] } }, hosts: { 'fight.test': '127.0.0.1' } },
    { lists: writeLists(tmp(), { agressif: { domains: ['fight.test'] }, drogue: { domains: ['weed.test'] } }) },
  );
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
  });
  for (let i = 0; i < 5; i++) await viaProxy(h.gw.port, 'http://fight.test/', { localAddress: '127.0.0.7' });
  const referent = await h.tokenFor('referent', 'CPE test');

  t.test('the referent acknowledges an alert in the console', async (t) => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`https://127.0.0.1:${h.sup.port}/admin/`);
    await page.getByLabel('Jeton d’accès').fill(referent);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.locator('#alerts-open').waitFor();
    t.same(await page.locator('nav a').allTextContents(), ['Alertes'], 'the referent sees the alerts only');
    t.match(await page.locator('#alerts-open').textContent(), '1 alerte(s) ouverte(s)');
    const row = page.locator('tbody tr').first();
    t.match(await row.textContent(), /protection : blocages répétés.*college.*127\.0\.0\.7.*agressif.*5/);
    await row.locator('summary').click();
    t.match(await row.locator('ul.evidence').textContent(), /fight\.test/);
    await page.screenshot({ path: join(SCREENS, 'referent-alert-open.png'), fullPage: true });
    const id = (await row.locator('form.alert-handle').getAttribute('id'))!.slice('handle-'.length);
    await page.locator(`#dismiss-${id}`).click();
    await row.getByRole('alert').waitFor();
    t.match(await row.getByRole('alert').textContent(), /body\/reason/, 'a dismissal without a reason is refused, naming the field');
    await row.getByLabel('Motif (journalisé)').fill('élève vu par le CPE');
    await page.locator(`#ack-${id}`).click();
    await page.getByText('0 alerte(s) ouverte(s)').waitFor();
    await page.screenshot({ path: join(SCREENS, 'referent-alerts.png'), fullPage: true });
    const a = (await h.api('GET', '/api/v1/alerts?status=acknowledged', { token: referent })).json.alerts[0];
    t.match(a, { id, status: 'acknowledged', reason: 'élève vu par le CPE', by: /CPE test/ });
    const audit = (await h.api('GET', '/api/v1/audit?action=alert', {})).json.entries;
    t.ok(audit.some((e: any) => e.action === 'alert.acknowledge' && e.target === id), 'audited');
    t.same(errors.filter((e) => !/status of 400/.test(e)), [], 'no error in the page console');
    await page.close();
  });
}
