import { categoryWithLabel } from '../lists/labels.js';
import type { Decision } from '../policy/types.js';
import type { DestinationRefusal } from './destinations.js';

export type Lang = 'fr' | 'en';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESC[c]!);

/** Picks French or English from Accept-Language by quality; French when nothing says otherwise. */
export function pickLang(acceptLanguage: string | undefined): Lang {
  if (!acceptLanguage) return 'fr';
  let best: Lang = 'fr';
  let bestQ = -1;
  for (const part of acceptLanguage.split(',')) {
    const [tag = '', ...params] = part.trim().toLowerCase().split(';');
    const lang = tag.slice(0, 2);
    if (lang !== 'fr' && lang !== 'en') continue;
    const q = params.find((p) => p.trim().startsWith('q='));
    const quality = q ? Number(q.trim().slice(2)) : 1;
    if (Number.isFinite(quality) && quality > bestQ) {
      best = lang;
      bestQ = quality;
    }
  }
  return best;
}

const T = {
  fr: {
    blockedTitle: 'Accès bloqué',
    blockedLead: 'Ce site n’est pas accessible depuis le réseau de l’école.',
    site: 'Site demandé',
    profile: 'Profil',
    category: 'Catégorie',
    reason: 'Motif',
    none: 'aucune',
    help: 'Si vous pensez que ce site devrait être accessible, signalez-le à votre enseignant ou au référent numérique.',
    refusedTitle: 'Accès refusé',
    refusedLead: 'Ce poste ne fait pas partie des réseaux servis par cette passerelle.',
    badTitle: 'Requête invalide',
    errorTitle: 'Site injoignable',
    reportLead: 'Ce site devrait être accessible ? Signalez-le au référent de l’école (aucune donnée vous concernant n’est transmise).',
    comment: 'Commentaire (facultatif)',
    send: 'Signaler',
    unblock: 'Personnel : débloquer temporairement ce site pour la classe',
  },
  en: {
    blockedTitle: 'Access blocked',
    blockedLead: 'This site cannot be reached from the school network.',
    site: 'Requested site',
    profile: 'Profile',
    category: 'Category',
    reason: 'Reason',
    none: 'none',
    help: 'If you think this site should be reachable, tell your teacher or the school’s IT contact.',
    refusedTitle: 'Access refused',
    refusedLead: 'This device is not on a network served by this gateway.',
    badTitle: 'Bad request',
    errorTitle: 'Site unreachable',
    reportLead: 'Should this site be reachable? Report it to the school’s contact (nothing about you is sent).',
    comment: 'Comment (optional)',
    send: 'Report',
    unblock: 'Staff: unblock this site for the class for a while',
  },
} as const;

const REASONS: Record<Lang, Record<string, string>> = {
  fr: {
    category: 'catégorie bloquée pour ce profil',
    'list-deny': 'liste de blocage de l’académie',
    'profile-deny': 'bloqué pour ce profil',
    'allowlist-only': 'seuls les sites autorisés sont accessibles pour ce profil',
    'fail-closed': 'les listes de filtrage ne sont pas encore chargées',
    'invalid-host': 'nom de site invalide',
    port: 'port non autorisé',
    destination: 'adresse interne ou réservée, que la passerelle ne joint pas pour un poste',
    'no-client': 'poste non autorisé',
    override: 'déblocage temporaire',
  },
  en: {
    category: 'category blocked for this profile',
    'list-deny': 'academy block list',
    'profile-deny': 'blocked for this profile',
    'allowlist-only': 'only allowed sites can be reached with this profile',
    'fail-closed': 'the filtering lists are not loaded yet',
    'invalid-host': 'invalid site name',
    port: 'port not allowed',
    destination: 'an internal or reserved address, which the gateway does not reach for a device',
    'no-client': 'device not allowed',
    override: 'temporary unblock',
  },
};

export function page(lang: Lang, title: string, body: string): string {
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}h1{color:#b00020}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1em}dt{font-weight:600}footer{margin-top:2em;color:#666;font-size:.85em}</style>
</head><body>
<h1>${title}</h1>
${body}
<footer>Vigie</footer>
</body></html>
`;
}

/** What a destination refusal says about the address (src/proxy/destinations.ts). */
const DESTINATIONS: Record<Lang, Record<DestinationRefusal, string>> = {
  fr: {
    self: 'un service de la passerelle elle-même',
    loopback: 'une adresse de bouclage (loopback)',
    private: 'une adresse de réseau privé',
    'link-local': 'une adresse lien-local',
    multicast: 'une adresse multicast',
    broadcast: 'une adresse de diffusion (broadcast)',
    unspecified: 'une adresse non spécifiée',
  },
  en: {
    self: 'a service of the gateway itself',
    loopback: 'a loopback address',
    private: 'a private network address',
    'link-local': 'a link-local address',
    multicast: 'a multicast address',
    broadcast: 'a broadcast address',
    unspecified: 'an unspecified address',
  },
};

/** One line on why a destination is refused: `127.0.0.1:9464 is a service of the gateway itself`. */
export function destinationText(lang: Lang, address: string, port: number, why: DestinationRefusal): string {
  const at = `${address.includes(':') ? `[${address}]` : address}:${port}`;
  return lang === 'fr' ? `${at} est ${DESTINATIONS.fr[why]}.` : `${at} is ${DESTINATIONS.en[why]}.`;
}

/** Where the block page's forms lead (src/proxy/report.ts): null = not offered. */
export interface BlockLinks {
  /** `http://<proxy>/report`: anyone may say the site should be allowed. */
  readonly report: string | null;
  /** The console's unblock form, prefilled with the host and the client's network (for staff). */
  readonly unblock: string | null;
}

function reportForm(lang: Lang, host: string, links: BlockLinks): string {
  const t = T[lang];
  let out = '';
  if (links.report) {
    out += `<form method="post" action="${escapeHtml(links.report)}"><p>${t.reportLead}</p>
<input type="hidden" name="host" value="${escapeHtml(host)}"><input type="hidden" name="kind" value="allow">
<p><label for="c">${t.comment}</label><br><textarea id="c" name="comment" rows="3" cols="40" maxlength="500"></textarea></p>
<p><button type="submit">${t.send}</button></p></form>`;
  }
  if (links.unblock) out += `<p><a href="${escapeHtml(links.unblock)}">${t.unblock}</a></p>`;
  return out;
}

/** The block page: names the profile and the category; every request-derived value is escaped. */
export function blockPage(lang: Lang, host: string, decision: Decision, detail = '', links: BlockLinks = { report: null, unblock: null }): string {
  const t = T[lang];
  const reason = (REASONS[lang][decision.rule] ?? decision.rule) + (detail ? ` (${detail})` : '');
  return page(
    lang,
    t.blockedTitle,
    `<p>${t.blockedLead}</p>
<dl>
<dt>${t.site}</dt><dd>${escapeHtml(host)}</dd>
<dt>${t.profile}</dt><dd>${escapeHtml(decision.profile ?? '-')}</dd>
<dt>${t.category}</dt><dd>${escapeHtml(decision.category ? categoryWithLabel(decision.category, lang) : t.none)}</dd>
<dt>${t.reason}</dt><dd>${escapeHtml(reason)}</dd>
</dl>
<p>${t.help}</p>
${reportForm(lang, host, links)}`,
  );
}

export function refusedPage(lang: Lang): string {
  const t = T[lang];
  return page(lang, t.refusedTitle, `<p>${t.refusedLead}</p>`);
}

/** The body of the 302 to the captive portal (browsers follow the Location; this is for the others). */
export function portalPage(lang: Lang, location: string): string {
  const [title, lead, link] = lang === 'fr' ? ['Connexion requise', 'Identifiez-vous pour accéder à Internet depuis ce réseau.', 'Se connecter'] : ['Login required', 'Log in to use the Internet from this network.', 'Log in'];
  return page(lang, title, `<p>${lead}</p>\n<p><a href="${escapeHtml(location)}">${link}</a></p>`);
}

export type UpstreamProblem = 'dns' | 'refused' | 'unreachable' | 'connect-timeout' | 'response-timeout' | 'reset' | 'bad-request' | 'certificate';

const PROBLEMS: Record<Lang, Record<UpstreamProblem, string>> = {
  fr: {
    dns: 'Le nom de ce site n’existe pas ou n’a pas pu être résolu (erreur DNS).',
    refused: 'Le serveur de ce site a refusé la connexion.',
    unreachable: 'Le serveur de ce site est injoignable.',
    'connect-timeout': 'Le serveur de ce site n’a pas répondu à temps (connexion).',
    'response-timeout': 'Le serveur de ce site n’a pas répondu à temps.',
    reset: 'La connexion avec le serveur de ce site a été interrompue.',
    'bad-request': 'La requête n’est pas une requête de proxy valide.',
    certificate: 'Le certificat présenté par ce site n’est pas valide (expiré, pour un autre nom ou d’une autorité inconnue) : la passerelle ne s’y connecte pas, comme un navigateur le refuserait.',
  },
  en: {
    dns: 'This site’s name does not exist or could not be resolved (DNS error).',
    refused: 'This site’s server refused the connection.',
    unreachable: 'This site’s server cannot be reached.',
    'connect-timeout': 'This site’s server did not answer in time (connect).',
    'response-timeout': 'This site’s server did not answer in time.',
    reset: 'The connection to this site’s server was cut.',
    'bad-request': 'This is not a valid proxy request.',
    certificate: 'This site’s certificate is not valid (expired, for another name, or from an unknown authority): the gateway does not connect to it, as a browser would refuse it.',
  },
};

export function problemText(lang: Lang, problem: UpstreamProblem): string {
  return PROBLEMS[lang][problem];
}

export function errorPage(lang: Lang, host: string, problem: UpstreamProblem): string {
  const t = T[lang];
  const title = problem === 'bad-request' ? t.badTitle : t.errorTitle;
  return page(lang, title, `<p>${PROBLEMS[lang][problem]}</p>${host ? `<dl><dt>${t.site}</dt><dd>${escapeHtml(host)}</dd></dl>` : ''}`);
}
