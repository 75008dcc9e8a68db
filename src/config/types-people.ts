// The config's sections for people and their signals: the directory and logins (src/directory/,
// src/auth/), teachers' unblocks, reports, alerts and where notifications go. Re-exported by types.ts.
import type { ListenAddress } from './types.js';

/** How many watched blocks, within how long, from one client or user, raise a safeguarding alert. */
export interface AlertThreshold {
  count: number;
  minutes: number;
}

export interface AlertsConfig {
  /** false: no safeguarding signals nor per-device malware events; the gateway's own security events stay on. */
  enabled: boolean;
  /** Categories (UT1 or academy lists) whose blocks are watched, for every profile not in `profiles`. */
  watch: string[];
  threshold: AlertThreshold;
  /** Per profile: its own watched categories and threshold (`watch: []` watches nothing for it). */
  profiles: Record<string, { watch?: string[]; threshold?: AlertThreshold }>;
  /** The academy's file of watched search terms (one per line, `#` comments); null = none. Matched only where interception is `full`. */
  terms: string | null;
  /** An open alert for the same client or user and rule takes new hits for this long instead of a new alert. */
  dedupMinutes: number;
  /** Notifications sent per hour at most (all alerts); the others are kept in the queue, counted. */
  maxPerHour: number;
  security: {
    /** Categories whose hits from one device are security events (malware callbacks, phishing). */
    categories: string[];
    /** Unknown API tokens from one address within a minute that raise an event (at most 10: past that the address gets 429s). */
    authFailuresPerMinute: number;
  };
}

export interface DirectoryConfig {
  /** Level (`6e`, `CM1`, `PS`, `CYCLE3`...) or role (`teacher`, `staff`, `direction`) → profile, over the defaults. */
  levels: Record<string, string>;
  /** Class (`<structure>$<class>` as in the AAF) → profile; wins over the level. */
  classes: Record<string, string>;
  /** A folder where AAF files are dropped: the running gateway imports what appears there; null = none. */
  watch: string | null;
}

export interface LdapConfig {
  /** `ldap://` or `ldaps://`. */
  url: string;
  /** DN template for a direct bind, `{login}` replaced (escaped): `uid={login},ou=people,dc=...`. */
  bindDn?: string;
  /** Or search then bind: the base and a filter with `{login}` (escaped), e.g. `(uid={login})`. */
  searchBase?: string;
  searchFilter?: string;
  /** The account that searches (anonymous when absent) and a file holding its password. */
  searchBindDn?: string;
  searchBindPasswordFile?: string;
  /** An attribute of the user's entry that holds the AAF id (e.g. `ENTPersonJointure`, `employeeNumber`). */
  idAttribute?: string;
  /** STARTTLS on an `ldap://` URL. */
  startTls?: boolean;
  /** A PEM file of the CA that signed the LDAP server's certificate (default: the system's). */
  caFile?: string;
  /** Connecting and each operation; default 5000. */
  timeoutMs?: number;
}

export interface AuthConfig {
  /** Shown by browsers in the proxy login prompt. */
  realm: string;
  ldap: LdapConfig | null;
  /** How long a successful check is remembered (hashed, in memory). */
  cacheSeconds: number;
  cacheMax: number;
  /** Failed checks allowed per client address and minute before further ones are refused unchecked. */
  failuresPerMinute: number;
  /** The captive portal for `auth: required` networks in transparent mode (src/auth/portal.ts); null = none. */
  portal: PortalConfig | null;
}

export interface PortalConfig {
  /** Where the portal's HTTPS server listens (an address of the gateway the clients reach directly). */
  listen: ListenAddress;
  /** The portal's address as clients reach it (`https://portail.ecole.lan:8444`); null = https://<listen host>:<port>. */
  url: string | null;
  /** A portal login ends after this long without traffic from its address (default 30). */
  idleMinutes: number;
  /** Explicit-proxy clients without credentials: `challenge` (407, default) or `portal` (like transparent ones). */
  explicit: 'challenge' | 'portal';
  /** PEM files; null = the supervision API's certificate (configured or generated). */
  cert: string | null;
  key: string | null;
}

export interface OverridesConfig {
  /** Longest unblock a teacher may ask for. */
  maxMinutes: number;
  /** Categories (UT1 or academy lists) no override ever opens. */
  nonOverridable: string[];
  /** The console the block page links staff to (`…/admin/`); null = https://<supervision.names[0]>:<port>/admin/. */
  consoleUrl: string | null;
}

/** How grave an event is (RFC 5424 severities, the ones Vigie uses), least grave first. */
export type Severity = 'info' | 'notice' | 'warning' | 'error' | 'critical';

export interface SmtpConfig {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure?: boolean;
  /** Refuse to send without STARTTLS (default false: a school relay on the LAN may not offer it). */
  requireTls?: boolean;
  /** A PEM file of the CA that signed the relay's certificate (default: the system's). */
  caFile?: string;
  user?: string;
  /** A file holding the password (never in the config, never logged). */
  passwordFile?: string;
  from: string;
  to: string[];
  /** Events below this severity are not mailed (default `warning`; reports and safeguarding alerts are `notice`...). */
  minSeverity?: Severity;
}

export interface SyslogConfig {
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
  /** RFC 5424 facility number (default 16, local0). */
  facility?: number;
  /** Events below this severity are not sent (default `info`: everything). */
  minSeverity?: Severity;
}

export interface NotificationsConfig {
  /** URLs receiving one JSON POST per event. */
  webhooks: string[];
  /** E-mail through a relay; null = none. */
  smtp: SmtpConfig | null;
  /** RFC 5424 messages to a syslog collector (the academy's SIEM); null = none. */
  syslog: SyslogConfig | null;
}

export interface ReportsConfig {
  /** Reports one client address may send per hour (on the proxy port). */
  perClientPerHour: number;
  /** Open reports kept at most; older closed ones are dropped first. */
  maxQueued: number;
  /** Where the block page's report form posts; null = http://<first proxy listen address>/report. */
  url: string | null;
}
