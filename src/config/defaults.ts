import { availableParallelism } from 'node:os';
import type { ProfileConfig, RuleSet, VigieConfig } from './types.js';

/** Threats to the machine or the network: blocked for everyone, staff included. */
export const SECURITY = ['malware', 'phishing', 'cryptojacking', 'stalkerware', 'ddos', 'dialer'];

/** Content no minor should reach (CNIL/education guidance on protecting minors). */
export const MINORS = ['adult', 'mixed_adult', 'lingerie', 'dating', 'agressif', 'drogue', 'gambling', 'arjel', 'sect', 'dangerous_material'];

/** Ways around the filter: proxies, redirectors, DNS over HTTPS, VPNs, cheating and hacking tools. */
export const BYPASS = [
  'redirector', 'strict_redirector', 'doh', 'vpn', 'residential-proxies', 'remote-control',
  'hacking', 'warez', 'tricheur', 'tricheur_pix',
];

/** Distractions and commercial content kept away from younger pupils. */
export const YOUNG_DISTRACTIONS = [
  'social_networks', 'chat', 'forums', 'shopping', 'celebrity', 'astrology', 'bitcoin', 'financial',
  'publicite', 'marketingware', 'filehosting', 'fakenews',
];

const pupilLists = { allowLists: ['academy-allow'], denyLists: ['academy-deny'] };

function blocklist(categories: string[], extra: Partial<RuleSet> = {}): RuleSet {
  return { mode: 'blocklist', categories, allow: [], deny: [], ...pupilLists, ...extra };
}

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
    },
    cycle2: {
      description: 'CP–CE2 (cycle 2)',
      ...blocklist(unique(SECURITY, MINORS, BYPASS, YOUNG_DISTRACTIONS, ['games', 'manga', 'strong_redirector', 'webmail', 'blog'])),
    },
    cycle3: {
      description: 'CM1–CM2 (cycle 3); games and streaming blocked in school hours',
      ...blocklist(unique(SECURITY, MINORS, BYPASS, YOUNG_DISTRACTIONS, ['games', 'audio-video'])),
      schedule: { within: 'school', otherwise: blocklist(unique(SECURITY, MINORS, BYPASS, YOUNG_DISTRACTIONS)) },
    },
    college: {
      description: 'Collège; social networks, chat and games blocked in school hours',
      ...blocklist(unique(SECURITY, MINORS, BYPASS, ['social_networks', 'chat', 'games', 'bitcoin', 'marketingware'])),
      schedule: { within: 'school', otherwise: blocklist(unique(SECURITY, MINORS, BYPASS, ['bitcoin', 'marketingware'])) },
    },
    staff: {
      description: 'Teachers and staff: security categories only',
      mode: 'blocklist',
      categories: [...SECURITY],
      allow: [],
      deny: [],
      allowLists: ['academy-allow'],
      denyLists: [],
    },
  };
}

/** Squid's default Safe_ports: where plain HTTP may go (http, ftp, https, gopher, wais, ...). */
export const SAFE_PORTS: readonly (number | string)[] = [80, 21, 443, 70, 210, 280, 488, 591, 777, '1025-65535'];

/** The embedded configuration: a one-machine demo where loopback addresses play classrooms. */
export function defaultConfig(): VigieConfig {
  return {
    listen: [{ host: '127.0.0.1', port: 3128 }],
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
    lists: { ut1: null, academy: null, updateUrl: null, checksumUrl: null, updateIntervalHours: 0, maxDownloadBytes: 512 * 1048576 },
    dataDir: 'data',
    timeouts: { connectMs: 10_000, headersMs: 30_000, upstreamResponseMs: 60_000, idleMs: 120_000 },
    limits: { maxHeaderBytes: 16_384, maxSocketsPerOrigin: 256, decisionCacheSize: 20_000 },
    proxyName: 'vigie',
    tunnels: 'socket',
    workers: availableParallelism(),
    log: { level: 'info' },
    supervision: { enabled: true, listen: { host: '127.0.0.1', port: 8443 }, names: ['localhost', '127.0.0.1'], cert: null, key: null, fleet: null },
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: 9464 } },
    journal: { enabled: true, retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 100_000, flushMs: 250, writerNice: 19 },
  };
}
