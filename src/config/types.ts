export type Day = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface TimeSlot {
  days: Day[];
  /** "HH:MM", local time in `timezone`. */
  from: string;
  to: string;
}

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

export interface ProfileConfig extends RuleSet {
  description?: string;
  /** When set, the rules above apply within this time window and `otherwise` outside it. */
  schedule?: { within: string; otherwise: RuleSet };
}

export interface ClientRule {
  /** CIDR (IPv4 or IPv6) or a single address. */
  network: string;
  profile: string;
  name?: string;
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
  clients: ClientRule[];
  profiles: Record<string, ProfileConfig>;
  /** Named time windows, e.g. "school": Mon–Fri 08:00–18:00. */
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
    /** UT1 tarball (blacklists.tar.gz layout) fetched by `vigie lists update` and the schedule; null = no updates. */
    updateUrl?: string | null;
    /** Optional checksum file for the tarball (md5/sha1/sha256 hex, `sha256sum` format accepted). */
    checksumUrl?: string | null;
    /** Hours between scheduled updates inside the running gateway; 0 = only on demand. */
    updateIntervalHours?: number;
    /** A download larger than this is refused (and so is one smaller than 1 KiB). */
    maxDownloadBytes?: number;
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
   * APIs only, the default) or "raw" (libuv handles through process.binding, src/proxy/raw.ts:
   * fewer allocations per tunnel, on internals; falls back to "socket" where they are missing).
   * Read at start.
   */
  tunnels: 'socket' | 'raw';
  /**
   * Proxy processes sharing the listening ports (node:cluster); the journal, API and metrics stay
   * in the primary. 1 = one process doing everything. Default: the machine's cores.
   */
  workers: number;
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** The academy's HTTPS API (src/supervision/). */
  supervision: SupervisionConfig;
  /** Prometheus exposition on its own listener (`/metrics`), kept off the proxy port. */
  metrics: { enabled: boolean; listen: ListenAddress };
  /** The legal connection journal (src/journal/), under `<dataDir>/journal/`. */
  journal: JournalConfig;
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
