// French first, English second: the browser's language picks one, the header's switch changes it.
const FR = {
  title: 'Vigie : console de supervision', token: 'Jeton d’accès', signIn: 'Se connecter', signOut: 'Se déconnecter',
  signedAs: (n, r) => `Connecté : ${n} (${r})`, badToken: 'Jeton refusé : inconnu ou révoqué.', checking: 'Vérification…',
  language: 'Langue', nav: 'Sections', loading: 'Chargement…', none: 'aucun', save: 'Enregistrer', reason: 'Motif (journalisé)',
  add: 'Ajouter', remove: 'Retirer', search: 'Rechercher', next: 'Page suivante', first: 'Première page', close: 'Fermer',
  dashboard: 'Tableau de bord', profiles: 'Profils', lists: 'Listes de l’académie', journal: 'Journal des connexions',
  requisition: 'Réquisitions', policy: 'Versions de la politique', audit: 'Journal d’audit', tokens: 'Jetons', decision: 'Décision',
  health: 'État de la passerelle', status: 'État', policyVersion: 'Version de la politique', policyAge: 'Âge de la politique',
  listsLoaded: 'Listes UT1 chargées', listVersion: 'Version des listes', journalState: 'Journal', writable: 'accessible en écriture',
  notWritable: 'NON accessible en écriture', queue: 'file', lost: 'lignes perdues', yes: 'oui', no: 'non',
  perHour: 'Requêtes et blocages par heure (24 h)', perDay: 'Requêtes et blocages par jour (30 jours)',
  requests: 'Requêtes', blocked: 'Bloquées', topCategories: 'Catégories les plus bloquées', topHosts: 'Sites les plus bloqués (24 h)',
  profile: 'Profil', mode: 'Mode', categories: 'Catégories', schedule: 'Horaires', clients: 'Réseaux', description: 'Description',
  allowEntries: 'Entrées autorisées', denyEntries: 'Entrées bloquées', entry: 'Entrée (domaine, domaine/chemin)', kind: 'Type',
  allow: 'autoriser', deny: 'bloquer', within: 'dans la plage', otherwise: 'hors plage',
  list: 'Liste', filter: 'Filtrer', entries: 'Entrées', bulk: 'Coller plusieurs entrées (une par ligne)', usedBy: 'Utilisée par',
  version: 'Version', changes: 'Modifications récentes', from: 'Du', to: 'Au', client: 'Poste (adresse)', user: 'Utilisateur', host: 'Site',
  method: 'Méthode', httpStatus: 'Statut HTTP', any: 'toutes', time: 'Heure', why: 'Pourquoi ?', rows: (n) => `${n} ligne(s)`, explain: 'Expliquer', url: 'Adresse (URL)', at: 'Date',
  reference: 'Numéro de réquisition (obligatoire)', format: 'Format', export: 'Exporter', exported: (n) => `${n} ligne(s) exportée(s)`,
  chainHead: 'Empreinte SHA-256 de l’export', auditEntry: 'Entrée d’audit', download: 'Télécharger',
  who: 'Qui', what: 'Action', whyCol: 'Motif', diffWith: 'Comparer avec la précédente', rollback: 'Revenir à cette version',
  rolledBack: (v) => `Nouvelle version ${v} en vigueur`, confirmRollback: (v) => `Revenir à la version ${v} ?`,
  actor: 'Auteur', action: 'Action', target: 'Objet', outcome: 'Résultat', source: 'Depuis',
  name: 'Nom', role: 'Rôle', created: 'Créé', revoked: 'Révoqué', create: 'Créer', revoke: 'Révoquer',
  newToken: 'Nouveau jeton (affiché une seule fois) :', confirmRevoke: (n) => `Révoquer le jeton ${n} ?`, done: 'Fait.',
  alerts: 'Alertes', nothingHere: 'Rien à afficher.', noRoleScreens: 'Ce rôle n’a accès à aucun écran de cette console.',
};
const EN = {
  title: 'Vigie: supervision console', token: 'Access token', signIn: 'Sign in', signOut: 'Sign out',
  signedAs: (n, r) => `Signed in: ${n} (${r})`, badToken: 'Token refused: unknown or revoked.', checking: 'Checking…',
  language: 'Language', nav: 'Sections', loading: 'Loading…', none: 'none', save: 'Save', reason: 'Reason (recorded)',
  add: 'Add', remove: 'Remove', search: 'Search', next: 'Next page', first: 'First page', close: 'Close',
  dashboard: 'Dashboard', profiles: 'Profiles', lists: 'Academy lists', journal: 'Connection journal',
  requisition: 'Legal requests', policy: 'Policy versions', audit: 'Audit log', tokens: 'Tokens', decision: 'Decision',
  health: 'Gateway health', status: 'Status', policyVersion: 'Policy version', policyAge: 'Policy age',
  listsLoaded: 'UT1 lists loaded', listVersion: 'List version', journalState: 'Journal', writable: 'writable',
  notWritable: 'NOT writable', queue: 'queue', lost: 'rows lost', yes: 'yes', no: 'no',
  perHour: 'Requests and blocks per hour (24 h)', perDay: 'Requests and blocks per day (30 days)',
  requests: 'Requests', blocked: 'Blocked', topCategories: 'Most blocked categories', topHosts: 'Most blocked hosts (24 h)',
  profile: 'Profile', mode: 'Mode', categories: 'Categories', schedule: 'Schedule', clients: 'Networks', description: 'Description',
  allowEntries: 'Allow entries', denyEntries: 'Deny entries', entry: 'Entry (domain, domain/path)', kind: 'Kind',
  allow: 'allow', deny: 'deny', within: 'within window', otherwise: 'outside window',
  list: 'List', filter: 'Filter', entries: 'Entries', bulk: 'Paste several entries (one per line)', usedBy: 'Used by',
  version: 'Version', changes: 'Recent changes', from: 'From', to: 'To', client: 'Device (address)', user: 'User', host: 'Host',
  method: 'Method', httpStatus: 'HTTP status', any: 'any', time: 'Time', why: 'Why?', rows: (n) => `${n} row(s)`, explain: 'Explain', url: 'Address (URL)', at: 'Date',
  reference: 'Requisition number (mandatory)', format: 'Format', export: 'Export', exported: (n) => `${n} row(s) exported`,
  chainHead: 'SHA-256 fingerprint of the export', auditEntry: 'Audit entry', download: 'Download',
  who: 'Who', what: 'Action', whyCol: 'Reason', diffWith: 'Diff with previous', rollback: 'Roll back to this version',
  rolledBack: (v) => `New version ${v} in force`, confirmRollback: (v) => `Roll back to version ${v}?`,
  actor: 'Actor', action: 'Action', target: 'Target', outcome: 'Outcome', source: 'From',
  name: 'Name', role: 'Role', created: 'Created', revoked: 'Revoked', create: 'Create', revoke: 'Revoke',
  newToken: 'New token (shown only once):', confirmRevoke: (n) => `Revoke token ${n}?`, done: 'Done.',
  alerts: 'Alerts', nothingHere: 'Nothing to show.', noRoleScreens: 'This role has no screen in this console.',
};
const DICTS = { fr: FR, en: EN };
export const LANGS = ['fr', 'en'];

let lang = localStorage.getItem('vigie-lang') || ((navigator.language || 'fr').toLowerCase().startsWith('fr') ? 'fr' : (navigator.language || '').toLowerCase().startsWith('en') ? 'en' : 'fr');
export const currentLang = () => lang;
export function setLang(l) {
  lang = DICTS[l] ? l : 'fr';
  localStorage.setItem('vigie-lang', lang);
  document.documentElement.lang = lang;
  document.title = t('title');
}
/** The text for `key` in the current language (a function entry takes arguments). */
export function t(key, ...args) {
  const v = DICTS[lang][key] ?? FR[key] ?? key;
  return typeof v === 'function' ? v(...args) : v;
}
export const fmtTime = (ms) => new Date(ms).toLocaleString(lang === 'fr' ? 'fr-FR' : 'en-GB');
export const fmtNum = (n) => Number(n).toLocaleString(lang === 'fr' ? 'fr-FR' : 'en-GB');
/** A screen's own texts (keys it alone uses), added to both languages: keeps this file small. */
export function addTexts(fr, en) {
  Object.assign(FR, fr);
  Object.assign(EN, en);
}
