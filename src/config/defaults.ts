import { availableParallelism } from 'node:os';
import type { InterceptionConfig, ProfileConfig, RuleSet, SafeSearchSettings, VigieConfig } from './types.js';

/** Threats to the machine or the network: blocked for everyone, staff included. */
export const SECURITY = ['malware', 'phishing', 'cryptojacking', 'stalkerware', 'ddos', 'dialer'];

/** Content no minor should reach (CNIL/education guidance on protecting minors). */
export const MINORS = ['adult', 'mixed_adult', 'lingerie', 'dating', 'agressif', 'drogue', 'gambling', 'arjel', 'sect', 'dangerous_material'];

/** Ways around the filter: proxies, redirectors, DNS over HTTPS, VPNs, cheating and hacking tools. */
export const BYPASS = [
  'redirector', 'strict_redirector', 'doh', 'vpn', 'residential-proxies', 'remote-control',
  'hacking', 'warez', 'tricheur', 'tricheur_pix',
];

/**
 * AI chatbots: their terms exclude children under 13 (most 6e-5e pupils included) or require a
 * parent's consent, so every pupil profile blocks them; a school opens them for older pupils by
 * removing `ai` from that profile (docs/lists.md).
 */
export const UNDER_13 = ['ai'];

/** Distractions and commercial content kept away from younger pupils. */
export const YOUNG_DISTRACTIONS = [
  'social_networks', 'chat', 'forums', 'shopping', 'celebrity', 'astrology', 'bitcoin', 'financial',
  'publicite', 'marketingware', 'filehosting', 'fakenews',
];

const pupilLists = { allowLists: ['academy-allow'], denyLists: ['academy-deny'] };

/** Every engine forced safe, YouTube at its strictest: the default for pupils and unknown profiles. */
export const SAFESEARCH_STRICT: Readonly<SafeSearchSettings> = Object.freeze({ google: true, bing: true, duckduckgo: true, youtube: 'strict' });
const SAFESEARCH_COLLEGE: Readonly<SafeSearchSettings> = Object.freeze({ ...SAFESEARCH_STRICT, youtube: 'moderate' });
const SAFESEARCH_OFF: Readonly<SafeSearchSettings> = Object.freeze({ google: false, bing: false, duckduckgo: false, youtube: 'off' });

function blocklist(categories: string[], extra: Partial<RuleSet> = {}): RuleSet {
  return { mode: 'blocklist', categories, allow: [], deny: [], ...pupilLists, ...extra };
}

/** What cycle 2 blocks at every hour on top of the younger pupils' set. */
const CYCLE2_ALWAYS = ['games', 'manga', 'strong_redirector', 'webmail', 'blog'];

const unique = (...groups: string[][]): string[] => [...new Set(groups.flat())];

export function defaultProfiles(): Record<string, ProfileConfig> {
  return {
    cycle1: {
      description: 'Maternelle (cycle 1): only the white lists and the academy allowlist',
      mode: 'allowlist',
      categories: ['liste_blanche', 'child', 'educational_games'],
      allow: [],
      deny: [],
      ...pupilLists,
      safeSearch: { ...SAFESEARCH_STRICT },
    },
    cycle2: {
      description: 'CP–CE2 (cycle 2); streaming blocked in school hours, as for cycle 3',
      ...blocklist(unique(SECURITY, MINORS, UNDER_13, BYPASS, YOUNG_DISTRACTIONS, CYCLE2_ALWAYS, ['audio-video'])),
      schedule: { within: 'school', otherwise: blocklist(unique(SECURITY, MINORS, UNDER_13, BYPASS, YOUNG_DISTRACTIONS, CYCLE2_ALWAYS)) },
      safeSearch: { ...SAFESEARCH_STRICT },
    },
    cycle3: {
      description: 'CM1–CM2 (cycle 3); games and streaming blocked in school hours',
      ...blocklist(unique(SECURITY, MINORS, UNDER_13, BYPASS, YOUNG_DISTRACTIONS, ['games', 'audio-video'])),
      schedule: { within: 'school', otherwise: blocklist(unique(SECURITY, MINORS, UNDER_13, BYPASS, YOUNG_DISTRACTIONS)) },
      safeSearch: { ...SAFESEARCH_STRICT },
    },
    college: {
      description: 'Collège; social networks, chat and games blocked in school hours',
      ...blocklist(unique(SECURITY, MINORS, UNDER_13, BYPASS, ['social_networks', 'chat', 'games', 'bitcoin', 'marketingware'])),
      schedule: { within: 'school', otherwise: blocklist(unique(SECURITY, MINORS, UNDER_13, BYPASS, ['bitcoin', 'marketingware'])) },
      safeSearch: { ...SAFESEARCH_COLLEGE },
    },
    staff: {
      description: 'Teachers and staff: security categories only',
      mode: 'blocklist',
      categories: [...SECURITY],
      allow: [],
      deny: [],
      allowLists: ['academy-allow'],
      denyLists: [],
      safeSearch: { ...SAFESEARCH_OFF },
    },
  };
}

/**
 * Directory levels and roles → profiles: maternelle PS/MS/GS → cycle1, CP–CE2 → cycle2, CM1–CM2 →
 * cycle3, collège 6e–3e → college, every adult → staff.
 */
export const DEFAULT_LEVELS: Readonly<Record<string, string>> = Object.freeze({
  PS: 'cycle1', MS: 'cycle1', GS: 'cycle1', CYCLE1: 'cycle1',
  CP: 'cycle2', CE1: 'cycle2', CE2: 'cycle2', CYCLE2: 'cycle2',
  CM1: 'cycle3', CM2: 'cycle3', CYCLE3: 'cycle3',
  '6e': 'college', '5e': 'college', '4e': 'college', '3e': 'college',
  teacher: 'staff', staff: 'staff', direction: 'staff',
});

/** Squid's default Safe_ports: where plain HTTP may go (http, ftp, https, gopher, wais, ...). */
export const SAFE_PORTS: readonly (number | string)[] = [80, 21, 443, 70, 210, 280, 488, 591, 777, '1025-65535'];

/**
 * A profile's SafeSearch settings with the absent keys filled: from the embedded profile of the
 * same name (so a school redefining `staff` keeps staff's "off"), else everything on, strict:
 * a child-safety switch is on unless a profile turns it off.
 */
export function completeSafeSearch(profileId: string, given: Partial<SafeSearchSettings> | undefined): SafeSearchSettings {
  const base = Object.hasOwn(EMBEDDED_SAFESEARCH, profileId) ? EMBEDDED_SAFESEARCH[profileId]! : SAFESEARCH_STRICT;
  return { ...base, ...given };
}

const EMBEDDED_SAFESEARCH: Readonly<Record<string, SafeSearchSettings>> = Object.freeze(
  Object.fromEntries(Object.entries(defaultProfiles()).map(([id, p]) => [id, p.safeSearch])),
);

/** Interception settings when the file says nothing: the shipped exclusions, UT1 `bank`, 72-hour leaves. */
export const defaultInterception = (): InterceptionConfig => ({
  ca: null,
  exclude: { categories: ['bank'], domains: [], shipped: true },
  extraRoots: [],
  leafHours: 72,
  leafCacheSize: 10_000,
});

/** The port a transparent listener stands for when its entry names none (`targetPort`). */
export const TRANSPARENT_TARGET_PORT = { http: 80, https: 443 } as const;

/** The embedded configuration: a one-machine demo where loopback addresses play classrooms. */
/** Categories a teacher's unblock never opens: adult content, attacks on the device, incitement. */
export const NON_OVERRIDABLE = ['adult', 'mixed_adult', 'malware', 'phishing', 'cryptojacking', 'agressif', 'drogue', 'sect', 'dangerous_material'] as const;

/** Categories whose blocks are watched by default: violence, drugs, sects, weapons and explosives (docs/alerts.md). */
export const ALERT_WATCH = ['agressif', 'drogue', 'sect', 'dangerous_material'] as const;

export function defaultConfig(): VigieConfig {
  return {
    listen: [{ host: '127.0.0.1', port: 3128 }],
    transparent: { http: [], https: [] },
    clients: [
      { network: '127.0.0.1/32', profile: 'cycle3', name: 'demo CM1–CM2' },
      { network: '127.0.0.2/32', profile: 'cycle1', name: 'demo maternelle' },
      { network: '127.0.0.3/32', profile: 'cycle2', name: 'demo CP–CE2' },
      { network: '127.0.0.4/32', profile: 'college', name: 'demo collège' },
      { network: '127.0.0.5/32', profile: 'staff', name: 'demo staff' },
    ],
    profiles: defaultProfiles(),
    times: {
      school: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }],
    },
    timezone: 'Europe/Paris',
    connectPorts: [443],
    httpPorts: [...SAFE_PORTS],
    destinations: { allow: [] },
    hosts: {},
    dns: { servers: null, timeoutMs: 5_000, maxTtlSeconds: 300, negativeTtlSeconds: 10 },
    lists: { ut1: null, academy: null, extra: null, updateUrl: null, checksumUrl: null, updateIntervalHours: 0, maxDownloadBytes: 512 * 1048576, maxExtractBytes: 2 * 1073741824 },
    dataDir: 'data',
    timeouts: { connectMs: 10_000, headersMs: 30_000, upstreamResponseMs: 60_000, idleMs: 120_000 },
    limits: { maxHeaderBytes: 16_384, maxSocketsPerOrigin: 256, decisionCacheSize: 20_000 },
    proxyName: 'vigie',
    // Public Node APIs by default and as the reference; "raw" (Node internals, src/proxy/raw.ts)
    // is opt-in: its set-up rate lead (docs/performance.md, 2026-12-06) was measured on a loaded host.
    tunnels: 'socket',
    interception: defaultInterception(),
    workers: availableParallelism(),
    workersRuntime: 'auto',
    mainThreadServes: true,
    log: { level: 'info' },
    supervision: { enabled: true, listen: { host: '127.0.0.1', port: 8443 }, names: ['localhost', '127.0.0.1'], cert: null, key: null, fleet: null },
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: 9464 } },
    journal: { enabled: true, retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 100_000, flushMs: 50, writerNice: 19, maxExportDays: 31, group: null, backup: null },
    directory: { levels: { ...DEFAULT_LEVELS }, classes: {}, watch: null },
    auth: { realm: 'Vigie', ldap: null, cacheSeconds: 120, cacheMax: 10_000, failuresPerMinute: 10, portal: null },
    overrides: { maxMinutes: 120, nonOverridable: [...NON_OVERRIDABLE], consoleUrl: null },
    notifications: { webhooks: [], smtp: null, syslog: null },
    reports: { perClientPerHour: 10, maxQueued: 5000, url: null },
    alerts: {
      enabled: true,
      watch: [...ALERT_WATCH],
      threshold: { count: 5, minutes: 10 },
      profiles: {},
      terms: null,
      dedupMinutes: 60,
      maxPerHour: 30,
      security: { categories: ['malware', 'phishing'], authFailuresPerMinute: 10 },
    },
  };
}
