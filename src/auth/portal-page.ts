import { escapeHtml, type Lang } from '../proxy/pages.js';

/**
 * The captive portal's pages, French first, English on request (Accept-Language or the switch
 * link). No script at all and the style in its own file, so the CSP forbids inline code; labels,
 * `lang`, autocomplete hints and an error announced by `role="alert"` for screen readers.
 */

export const PORTAL_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const PORTAL_CSS = `*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;max-width:28em;margin:3em auto;padding:0 1em;color:#1b1b1b;line-height:1.5}
h1{font-size:1.5em;color:#000091}
label{display:block;font-weight:600;margin-top:1em}
input{display:block;width:100%;font-size:1em;padding:.5em;border:1px solid #666;border-radius:4px}
input:focus,button:focus,a:focus{outline:3px solid #0a76f6;outline-offset:2px}
button{margin-top:1.5em;font-size:1em;padding:.6em 1.2em;background:#000091;color:#fff;border:0;border-radius:4px;cursor:pointer}
.error{border-left:4px solid #ce0500;background:#ffe9e9;padding:.5em 1em;margin:1em 0}
.note{color:#555;font-size:.9em}
nav{text-align:right;font-size:.9em}
footer{margin-top:2em;color:#666;font-size:.85em}
`;

const T = {
  fr: {
    other: ['en', 'English'],
    title: 'Connexion au réseau de l’école',
    lead: 'Identifiez-vous avec votre compte de l’établissement pour accéder à Internet.',
    login: 'Identifiant',
    password: 'Mot de passe',
    submit: 'Se connecter',
    note: 'Votre identifiant est associé à cet appareil jusqu’à la déconnexion ou après une période sans activité. Les connexions sont journalisées conformément à la loi.',
    invalid: 'Identifiant ou mot de passe incorrect.',
    limited: 'Trop d’essais depuis cet appareil. Réessayez dans une minute.',
    unavailable: 'L’annuaire de l’établissement ne répond pas. Réessayez dans un instant.',
    expired: 'Le formulaire a expiré. Réessayez.',
    connectedTitle: 'Vous êtes connecté',
    connectedAs: 'Connecté en tant que',
    goOn: 'Continuer vers',
    logout: 'Se déconnecter',
    loggedOutTitle: 'Vous êtes déconnecté',
    loggedOut: 'Cet appareil n’est plus associé à votre compte.',
    again: 'Se connecter à nouveau',
    notServed: 'Cet appareil ne fait pas partie des réseaux servis par cette passerelle.',
  },
  en: {
    other: ['fr', 'Français'],
    title: 'Log in to the school network',
    lead: 'Log in with your school account to use the Internet.',
    login: 'Login',
    password: 'Password',
    submit: 'Log in',
    note: 'Your login is bound to this device until you log out or after a while without activity. Connections are logged as the law requires.',
    invalid: 'Wrong login or password.',
    limited: 'Too many attempts from this device. Try again in a minute.',
    unavailable: 'The school directory does not answer. Try again in a moment.',
    expired: 'The form has expired. Please try again.',
    connectedTitle: 'You are logged in',
    connectedAs: 'Logged in as',
    goOn: 'Continue to',
    logout: 'Log out',
    loggedOutTitle: 'You are logged out',
    loggedOut: 'This device is no longer bound to your account.',
    again: 'Log in again',
    notServed: 'This device is not on a network this gateway serves.',
  },
} as const;

export type PortalError = 'invalid' | 'limited' | 'unavailable' | 'expired';

/** Where the signed return URL travels: kept across the language switch and the form. */
export interface ReturnTo {
  to: string;
  sig: string;
}

function shell(lang: Lang, title: string, body: string, extraHead = ''): string {
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><link rel="stylesheet" href="/portal.css">${extraHead}
</head><body>
<main>
<h1>${title}</h1>
${body}
</main>
<footer>Vigie</footer>
</body></html>
`;
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;

export function loginPage(lang: Lang, csrf: string, back: ReturnTo | null, error: PortalError | null = null, login = ''): string {
  const t = T[lang];
  const [otherLang, otherName] = t.other;
  const q = back ? `&to=${encodeURIComponent(back.to)}&sig=${encodeURIComponent(back.sig)}` : '';
  const alert = error ? `<p class="error" id="error" role="alert">${t[error]}</p>\n` : '';
  const described = error ? ' aria-describedby="error" aria-invalid="true"' : '';
  return shell(
    lang,
    t.title,
    `<nav><a href="/?lang=${otherLang}${q}" hreflang="${otherLang}" lang="${otherLang}">${otherName}</a></nav>
<p>${t.lead}</p>
${alert}<form method="post" action="/login">
${hidden('csrf', csrf)}${hidden('lang', lang)}${back ? hidden('to', back.to) + hidden('sig', back.sig) : ''}
<label for="login">${t.login}</label>
<input id="login" name="login" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="128" value="${escapeHtml(login)}"${described}>
<label for="password">${t.password}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="256"${described}>
<button type="submit">${t.submit}</button>
</form>
<p class="note">${t.note}</p>`,
  );
}

/** After a login (and whenever a logged-in device opens the portal): who, where to go on, log out. */
export function connectedPage(lang: Lang, csrf: string, user: string, goOn: string | null): string {
  const t = T[lang];
  // A meta refresh, not a redirect: CSP's form-action would stop the login form's redirect to another site.
  const refresh = goOn ? `<meta http-equiv="refresh" content="1;url=${escapeHtml(goOn)}">` : '';
  const link = goOn ? `<p>${t.goOn} <a href="${escapeHtml(goOn)}">${escapeHtml(goOn)}</a></p>\n` : '';
  return shell(
    lang,
    t.connectedTitle,
    `<p>${t.connectedAs} <strong>${escapeHtml(user)}</strong>.</p>
${link}<form method="post" action="/logout">
${hidden('csrf', csrf)}${hidden('lang', lang)}
<button type="submit">${t.logout}</button>
</form>`,
    refresh,
  );
}

export function loggedOutPage(lang: Lang): string {
  const t = T[lang];
  return shell(lang, t.loggedOutTitle, `<p>${t.loggedOut}</p>\n<p><a href="/?lang=${lang}">${t.again}</a></p>`);
}

export function notServedPage(lang: Lang): string {
  const t = T[lang];
  return shell(lang, t.title, `<p class="error" role="alert">${t.notServed}</p>`);
}
