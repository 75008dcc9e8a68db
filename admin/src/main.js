// The console: signs in with a token checked against the API (whoami), then shows the screens the
// token's role may use. Everything is rendered by Preact (text, never server HTML).
import { render } from 'preact';
import { useState, useEffect } from 'preact/hooks';
import { api, setToken, hasToken } from './api.js';
import { t, setLang, currentLang, LANGS } from './i18n.js';
import { html, ErrorBox } from './ui.js';
import { Dashboard } from './screens/dashboard.js';
import { Profiles } from './screens/profiles.js';
import { Lists } from './screens/lists.js';
import { Journal, Decision } from './screens/journal.js';
import { Requisition } from './screens/requisition.js';
import { Policy } from './screens/policy.js';
import { Audit } from './screens/audit.js';
import { Tokens } from './screens/tokens.js';
import { Overrides } from './screens/overrides.js';
import { Reports } from './screens/reports.js';
import { Weekly } from './screens/weekly.js';
import { Alerts } from './screens/alerts.js';

const SCREENS = {
  dashboard: { roles: ['admin', 'supervisor'], view: Dashboard },
  profiles: { roles: ['admin', 'supervisor'], view: Profiles },
  lists: { roles: ['admin', 'supervisor'], view: Lists },
  journal: { roles: ['supervisor'], view: Journal },
  decision: { roles: ['admin', 'supervisor'], view: Decision },
  requisition: { roles: ['requisition'], view: Requisition },
  policy: { roles: ['admin', 'supervisor'], view: Policy },
  audit: { roles: ['admin', 'supervisor'], view: Audit },
  tokens: { roles: ['admin'], view: Tokens },
  overrides: { roles: ['teacher', 'supervisor', 'admin'], view: Overrides },
  reports: { roles: ['supervisor', 'admin'], view: Reports },
  weekly: { roles: ['supervisor', 'admin'], view: Weekly },
  alerts: { roles: ['admin', 'referent', 'supervisor'], view: Alerts },
};
export const screensFor = (role) => Object.keys(SCREENS).filter((k) => SCREENS[k].roles.includes(role));

function SignIn({ onSignedIn, error, busy }) {
  const submit = (e) => {
    e.preventDefault();
    onSignedIn(e.currentTarget.elements.token.value.trim());
  };
  return html`<form class="signin" onSubmit=${submit} aria-describedby="signin-error">
    <label class="field"><span>${t('token')}</span><input name="token" id="token" type="password" autocomplete="off" required /></label>
    <button type="submit" disabled=${busy}>${busy ? t('checking') : t('signIn')}</button>
    <div id="signin-error">${error ? html`<p class="error" role="alert">${error}</p>` : null}</div>
  </form>`;
}

function App() {
  const [lang, setLangState] = useState(currentLang());
  const [me, setMe] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const screenOf = () => location.hash.slice(1).replace(/^\//, '').split(/[/?]/)[0];
  const [screen, setScreen] = useState(screenOf());

  async function signIn(token) {
    if (token !== undefined) setToken(token);
    setBusy(true);
    setError(null);
    try {
      setMe(await api('GET', '/whoami'));
    } catch (e) {
      setToken('');
      setMe(null);
      setError(e.status === 401 ? t('badToken') : `${e.status || ''} ${e.message}`);
    } finally {
      setBusy(false);
    }
  }
  useEffect(() => { if (hasToken()) signIn(); }, []);
  useEffect(() => {
    const onHash = () => setScreen(screenOf());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const changeLang = (l) => { setLang(l); setLangState(l); };
  const signOut = () => { setToken(''); setMe(null); };

  const allowed = me ? screensFor(me.role) : [];
  const current = allowed.includes(screen) ? screen : allowed[0];
  const View = current ? SCREENS[current].view : null;
  return html`<div key=${lang}>
    <header>
      <h1>Vigie</h1>
      ${me ? html`<p class="who" id="who">${t('signedAs', me.name, me.role)}</p><button type="button" onClick=${signOut}>${t('signOut')}</button>` : null}
      <label class="lang"><span>${t('language')}</span>
        <select id="lang" value=${lang} onChange=${(e) => changeLang(e.currentTarget.value)}>${LANGS.map((l) => html`<option value=${l}>${l === 'fr' ? 'Français' : 'English'}</option>`)}</select>
      </label>
    </header>
    ${!me ? html`<main><${SignIn} onSignedIn=${signIn} error=${error} busy=${busy} /></main>` : html`
      <nav aria-label=${t('nav')}><ul>${allowed.map((k) => html`<li><a href=${`#${k}`} id=${`nav-${k}`} aria-current=${k === current ? 'page' : undefined}>${t(k)}</a></li>`)}</ul></nav>
      <main id="screen">${View ? html`<${View} me=${me} />` : html`<p>${t('noRoleScreens')}</p>`}</main>`}
  </div>`;
}

setLang(currentLang());
render(html`<${App} />`, document.getElementById('app'));
export { ErrorBox };
