import type { AlertsConfig, AuthConfig, DirectoryConfig, NotificationsConfig, OverridesConfig, ReportsConfig } from './types-people.js';
export type { AlertThreshold, AlertsConfig, DirectoryConfig, LdapConfig, AuthConfig, PortalConfig, OverridesConfig, Severity, SmtpConfig, SyslogConfig, NotificationsConfig, ReportsConfig } from './types-people.js';

export type Day = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface TimeSlot {
  days: Day[];
  /** "HH:MM", local time in `timezone`. */
  from: string;
  to: string;
}

/**
 * School holidays, under `times.holidays`: every date from `from` to `to` (both included, local
 * dates in `timezone`) is out of school, so no time window is open on it.
 */
export interface HolidayPeriod {
  /** "YYYY-MM-DD". */
  from: string;
  to: string;
  name?: string;
}

/** The holiday periods of a `times` section (the one key of it that is not a time window). */
export const holidaysOf = (times: Record<string, unknown>): HolidayPeriod[] => (Array.isArray(times.holidays) ? (times.holidays as HolidayPeriod[]) : []);

/** The time windows of a `times` section, without its `holidays`. */
export const windowsOf = (times: Record<string, TimeSlot[]>): [string, TimeSlot[]][] => Object.entries(times).filter(([name]) => name !== 'holidays');

/** What a profile does during one period: squidGuard's `pass` line. */
export interface RuleSet {
  /** blocklist: everything but the listed categories; allowlist: only the listed categories. */
  mode: 'blocklist' | 'allowlist';
  /** UT1 categories blocked (blocklist mode) or allowed (allowlist mode). */
  categories: string[];
  /** The profile's own entries (domains or host/path prefixes); allow wins over any block. */
  allow: string[];
  deny: string[];
  /** Academy lists (folders of lists/academy/) applied as allow or deny lists. */
  allowLists: string[];
  denyLists: string[];
}

/**
 * SafeSearch and YouTube restricted mode without interception: a profile's requests and tunnels
 * for these engines are connected to the provider's enforcing address instead (lists/safesearch.json).
 */
export interface SafeSearchSettings {
  google: boolean;
  bing: boolean;
  duckduckgo: boolean;
  youtube: 'strict' | 'moderate' | 'off';
}

/** TLS interception for a profile (docs/interception.md): off, block pages over HTTPS, or every HTTPS request decided on its URL. */
export type InterceptMode = 'off' | 'block-pages' | 'full';

export interface ProfileConfig extends RuleSet {
  description?: string;
  /** Absent = off: tunnels stay end to end (the school CA is never used for this profile). */
  intercept?: InterceptMode;
  /** Absent keys come from the embedded profile of the same name, else everything on (strict). */
  safeSearch: SafeSearchSettings;
  /** When set, the rules above apply within this time window and `otherwise` outside it. */
  schedule?: { within: string; otherwise: RuleSet };
}

/** A profile as a file or the API may give it: every key optional, SafeSearch switches one by one. */
export type ProfileInput = Omit<Partial<ProfileConfig>, 'safeSearch'> & { safeSearch?: Partial<SafeSearchSettings> };

export interface InterceptionConfig {
  /** Folder of the school CA (`vigie ca init`): ca.key.pem, ca.cert.pem; null = `<dataDir>/ca`. */
  ca: string | null;
  /** Never intercepted, whatever the profile says: tunnelled end to end. */
  exclude: {
    /** List categories (UT1 `bank` by default). */
    categories: string[];
    /** Domains (and their subdomains). */
    domains: string[];
    /** Also the shipped list of health, government-identity and certificate-pinned hosts (lists/interception-exclude.json). */
    shipped: boolean;
  };
  /**
   * PEM files of extra CAs trusted for origins, besides Node's bundled store: an academy's own
   * PKI, or a test CA. Never a way to turn verification off.
   */
  extraRoots: string[];
  /** Validity of a leaf certificate; it is made again at three quarters of it. */
  leafHours: number;
  /** Leaf certificates (with their TLS context) kept in memory, least recently used dropped. */
  leafCacheSize: number;
}

export interface ClientRule {
  /** CIDR (IPv4 or IPv6) or a single address. */
  network: string;
  profile: string;
  name?: string;
  /** `required`: clients of this network must say who they are (see `auth`); default `none`. */
  auth?: 'none' | 'required';
  /**
   * With the captive portal: the profile of this network's clients before they log in, for their
   * HTTPS (e.g. the ENT, the portal, the academy allowlist). Absent = their HTTPS is blocked.
   */
  unauthenticatedProfile?: string;
}

export interface DestinationAllow {
  /** CIDR (IPv4 or IPv6) or a single address. */
  network: string;
  /** Only these ports; absent = any port the scheme allows (httpPorts, connectPorts). */
  ports?: number[];
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface TransparentListener extends ListenAddress {
  /**
   * The port the redirected clients were connecting to, which a `redirect` does not pass on: the
   * origin's port. Default 80 for `http` listeners, 443 for `https`; one listener per port meant.
   */
  targetPort?: number;
}

export interface Timeouts {
  /** Connecting to an origin (TCP). */
  connectMs: number;
  /** Waiting for a client's request headers. */
  headersMs: number;
  /** Waiting for an origin's response headers. */
  upstreamResponseMs: number;
  /** Idle keep-alive client connections and idle tunnels. */
  idleMs: number;
}

export interface VigieConfig {
  listen: ListenAddress[];
  /**
   * Listeners for traffic the gateway's firewall redirects (nftables `redirect` of TCP 80/443 from
   * the pupil networks, deploy/nftables/): plain HTTP decided on its Host header, HTTPS on the
   * TLS ClientHello's server name, without terminating TLS. Empty = off.
   */
  transparent: { http: TransparentListener[]; https: TransparentListener[] };
  clients: ClientRule[];
  profiles: Record<string, ProfileConfig>;
  /**
   * Named time windows, e.g. "school": Mon–Fri 08:00–18:00; the key `holidays` holds holiday
   * periods instead (HolidayPeriod[]: no window is open on those dates). Read it with
   * holidaysOf() and windowsOf().
   */
  times: Record<string, TimeSlot[]>;
  timezone: string;
  /** Ports CONNECT may reach. */
  connectPorts: number[];
  /** Ports plain HTTP may reach: numbers and "from-to" ranges (default: Squid's Safe_ports). */
  httpPorts: (number | string)[];
  /**
   * Loopback and private destinations (RFC 1918, 100.64.0.0/10, fc00::/7) the proxy may connect
   * clients to; every other one stays refused. The gateway's own listeners, unspecified,
   * link-local, multicast and broadcast addresses are refused whatever this says.
   */
  destinations: { allow: DestinationAllow[] };
  /** Static name → address map consulted before DNS (squid's hosts_file). */
  hosts: Record<string, string>;
  dns: {
    /** Name servers ("ip" or "ip:port") queried directly, TTLs honoured; null = the system resolver. */
    servers: string[] | null;
    timeoutMs: number;
    /** Upper bound on a cached answer's life, and how long a failure is remembered. */
    maxTtlSeconds: number;
    negativeTtlSeconds: number;
  };
  lists: {
    /** UT1-layout folder; null = the bundled lists/ut1. */
    ut1: string | null;
    /** Academy lists folder; null = the bundled lists/academy. */
    academy: string | null;
    /**
     * Extra domain lists extending UT1 categories (one folder per list, `sources.json` naming the
     * category each extends); null = the bundled lists/extra (adult sites), false = none.
     */
    extra?: string | false | null;
    /** UT1 tarball (blacklists.tar.gz layout) fetched by `vigie lists update` and the schedule; null = no updates. */
    updateUrl?: string | null;
    /** Optional checksum file for the tarball (md5/sha1/sha256 hex, `sha256sum` format accepted). */
    checksumUrl?: string | null;
    /** Hours between scheduled updates inside the running gateway; 0 = only on demand. */
    updateIntervalHours?: number;
    /** A download larger than this is refused (and so is one smaller than 1 KiB). */
    maxDownloadBytes?: number;
    /** Extraction stops past this many bytes, or past 20x the bytes downloaded, whichever is lower. */
    maxExtractBytes?: number;
  };
  dataDir: string;
  timeouts: Timeouts;
  limits: {
    maxHeaderBytes: number;
    /** Keep-alive sockets kept open per origin. */
    maxSocketsPerOrigin: number;
    decisionCacheSize: number;
  };
  /** Name used in the Via header and pages. */
  proxyName: string;
  /**
   * How connections are accepted and CONNECT tunnels relayed: "socket" (net.Socket, public Node
   * APIs only, the default) or "raw" (opt-in: libuv handles through process.binding,
   * src/proxy/raw.ts; about half the CPU per tunnel set-up, on internals; falls back to "socket"
   * where they are missing or fail their self-test). Read at start.
   */
  tunnels: 'socket' | 'raw';
  /** What every intercepting profile shares (src/tls/, src/proxy/intercept.ts, docs/interception.md). */
  interception: InterceptionConfig;
  /**
   * Proxy workers sharing the listening ports; the journal, API and metrics stay in the primary.
   * 1 = one process doing everything. Default: the machine's cores.
   */
  workers: number;
  /**
   * How workers run (docs/design/workers.md): "threads" share one copy of the lists (Node
   * ≥ 22.12, SO_REUSEPORT), "processes" each hold one (node:cluster, every Node); "auto"
   * (default) takes threads where the runtime allows.
   */
  workersRuntime?: 'auto' | 'threads' | 'processes';
  /**
   * Threads runtime: the main thread serves proxy traffic beside `workers − 1` threads (default
   * true: one isolate less, docs/design/workers.md); false = `workers` threads, the main thread
   * keeps to the journal, metrics and API. Processes ignore it (the primary never serves).
   */
  mainThreadServes?: boolean;
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** The academy's HTTPS API (src/supervision/). */
  supervision: SupervisionConfig;
  /** Prometheus exposition on its own listener (`/metrics`), kept off the proxy port. */
  metrics: { enabled: boolean; listen: ListenAddress };
  /** The legal connection journal (src/journal/), under `<dataDir>/journal/`. */
  journal: JournalConfig;
  /** The academy directory (AAF exports) and how its people map to profiles (src/directory/). */
  directory: DirectoryConfig;
  /** How clients of `auth: required` networks prove who they are (src/auth/). */
  auth: AuthConfig;
  /** Teachers' temporary unblocks (POST /api/v1/overrides). */
  overrides: OverridesConfig;
  /** Where escalated reports (and later other events) are sent. */
  notifications: NotificationsConfig;
  /** Reports sent from the block page and `/report` on the proxy port. */
  reports: ReportsConfig;
  /** Safeguarding signals for the school's referent and the security alert chain (src/alerts/). */
  alerts: AlertsConfig;
}


export interface JournalConfig {
  enabled: boolean;
  /** Days a month is kept after it ends (French law: one year). */
  retentionDays: number;
  /** Keep the query string of plain-HTTP paths (dropped by default: minimal data). */
  keepQuery: boolean;
  /** When rows cannot be written: `block` new connections (legal duty), or `allow` and count losses. */
  overflow: 'block' | 'allow';
  /** Rows waiting to be written beyond which the overflow policy applies. */
  queueMax: number;
  /** Longest wait before queued rows go to the writer. */
  flushMs: number;
  /**
   * Nice value of the journal's writer thread (Linux) while it keeps up, so its transactions yield
   * the core to the proxy; 0 = unchanged. Above 5 only when the process may boost it back (see
   * src/journal/worker.ts).
   */
  writerNice: number;
  /** Longest time range a requisition export may cover, in days (CLI and API). */
  maxExportDays: number;
  /**
   * Group that may read the journal and its backups (name or gid): files 0640 and the folder
   * setgid to it; null: files 0600, owner only.
   */
  group: string | number | null;
  /** Daily online backup of the journal, verified, the newest `keep` kept; null: none. */
  backup: JournalBackupConfig | null;
  /** Ships the journal to the academy's PostgreSQL copy (src/journal/ship.ts); absent or null = off. */
  ship?: JournalShipConfig | null;
}

export interface JournalBackupConfig {
  /** Folder of the backup files (`journal-<UTC time>.db`); relative to the working directory. */
  dir: string;
  /** Local hour (config `timezone`) the daily backup starts; default 2. */
  hour?: number;
  /** Backups kept, newest first; default 14. */
  keep?: number;
}

export interface JournalShipConfig {
  /** postgres://user@host:port/db (a password is better kept in ~/.pgpass or PGPASSWORD than here). */
  url: string;
  /** This gateway's name in the academy (unique). */
  gatewayId: string;
  /** Establishment served (UAI, e.g. 0801234X), for academy-wide filters. */
  uai?: string | null;
  /** Rows per PostgreSQL transaction. Default 5000. */
  batchRows?: number;
  /** Shipping lag beyond which the gateway reports itself degraded. Default 300. */
  maxLagSeconds?: number;
  /** Seconds between fleet status reports into the same database; 0 = none. Default 60. */
  fleetSeconds?: number;
}

export interface SupervisionConfig {
  enabled: boolean;
  listen: ListenAddress;
  /** DNS names and addresses put in the generated certificate's SAN. */
  names: string[];
  /** PEM files; both null = a self-signed pair generated once under dataDir. */
  cert: string | null;
  key: string | null;
  /** Pull mode: poll a signed policy bundle at the academy; null = off. */
  fleet: { url: string; publicKey: string; intervalSeconds?: number } | null;
}
