// Interception in a real Chromium (playwright-core driving Debian's /usr/bin/chromium) through the
// gateway as its proxy: the French block page of a blocked HTTPS host, where Chromium alone shows
// ERR_TUNNEL_CONNECTION_FAILED. Chromium trusts the leaf key through
// --ignore-certificate-errors-spki-list (the one key every intercepted name's certificate carries),
// as a device given the school CA by GPO/MDM would trust the chain.
import t from 'tap';
import { CHROMIUM, withChromium } from './browser-helpers.js';
import { initCa } from '../src/tls/ca.js';
import { startGateway, tmp, writeLists } from './helpers.js';


await withChromium('interception browser test', run);

async function run(): Promise<void> {
  const { chromium } = await import('playwright-core');
  const data = tmp();
  initCa(`${data}/ca`, 'École test');
  const g = await startGateway(
    { dataDir: data, hosts: { 'adult.test': '127.0.0.1' }, profiles: { cycle3: { mode: 'blocklist', categories: ['adult'], intercept: 'block-pages' } } },
    writeLists(tmp(), { adult: { domains: ['adult.test'] } }),
  );
  const spki = g.gateway.proxy.interception.interceptor!.leaves.spkiHash;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    proxy: { server: `http://127.0.0.1:${g.port}` },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
  });
  t.teardown(async () => {
    await browser.close();
    await g.close();
  });
  t.test('a blocked HTTPS host shows the French block page', async (t) => {
    const page = await browser.newPage({ locale: 'fr-FR' });
    const response = await page.goto('https://adult.test/some/page');
    t.equal(response?.status(), 403, 'the block page answers 403');
    t.match(await page.locator('h1').textContent(), 'Accès bloqué', 'in French, inside HTTPS');
    t.match(await page.locator('dl').textContent(), /adult\.test/);
    const security = await response!.securityDetails();
    t.equal(security?.issuer, 'École test', 'over a certificate of the school CA');
  });
}
