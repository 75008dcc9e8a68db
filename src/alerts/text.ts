import type { Alert } from './store.js';

/** French first: the e-mail subject and body of an alert, then the same in English. */
const TITLES: Record<string, [string, string]> = {
  watch: ['Signal de protection : blocages répétés dans des catégories surveillées', 'Safeguarding signal: repeated blocks in watched categories'],
  terms: ['Signal de protection : terme de recherche surveillé', 'Safeguarding signal: watched search term'],
  malware: ['Sécurité : poste demandant un site malveillant ou d’hameçonnage', 'Security: a device asked for a malware or phishing site'],
  'bundle-refused': ['Sécurité : paquet de politique de la flotte refusé', 'Security: fleet policy bundle refused'],
  'fail-closed': ['Sécurité : listes non chargées, tout est bloqué (fermeture par défaut)', 'Security: lists not loaded, failing closed'],
  'unclean-stop': ['Sécurité : arrêt brutal, journal incomplet', 'Security: unclean stop, journal incomplete'],
  'ship-lag': ['Sécurité : retard d’envoi du journal à l’académie', 'Security: journal shipping lags'],
  'auth-failures': ['Sécurité : échecs d’authentification répétés sur l’API', 'Security: repeated API authentication failures'],
  'config-changed': ['Sécurité : configuration modifiée hors de l’API', 'Security: configuration changed outside the API'],
};

export function alertText(a: Alert): { title: string; text: string } {
  const [fr, en] = TITLES[a.type] ?? [a.type, a.type];
  const who = a.subject ?? 'passerelle / gateway';
  const hits = a.evidence.map((e) => `  - ${new Date(e.time).toISOString()} ${e.host}${e.term ? ` (« ${e.term} »)` : ''}`).join('\n');
  const text = [
    `${fr}`,
    `Profil : ${a.profile ?? '-'} ; poste ou utilisateur : ${who} ; catégories : ${a.categories.join(', ') || '-'} ; nombre : ${a.count}`,
    `Règle : ${a.rule}`,
    hits ? `Requêtes en cause (site et heure seulement) :\n${hits}` : '',
    '',
    `${en}`,
    `Profile: ${a.profile ?? '-'}; device or user: ${who}; categories: ${a.categories.join(', ') || '-'}; count: ${a.count}`,
  ].filter((l) => l !== '').join('\n');
  return { title: `${fr} (${a.profile ?? 'passerelle'})`, text };
}
