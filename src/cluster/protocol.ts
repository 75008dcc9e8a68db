import type { SessionChange } from '../auth/sessions.js';
import type { VigieConfig } from '../config/types.js';
import type { Override } from '../policy/overrides.js';
import type { NewReport } from '../proxy/report.js';
import type { MemoryFigures } from './memory.js';
import type { EventBatch } from './relay.js';
import type { SharedLists } from './shared-lists.js';

/**
 * What the primary tells a worker to serve: the config in force and a lists generation. The
 * policy itself is read from disk by the worker (the store's latest version, the compiled lists
 * cache), which the primary wrote before it sends this.
 */
export interface PolicyNotice {
  t: 'policy';
  seq: number;
  config: VigieConfig;
  /** Changes when the primary loaded another UT1 index: the worker reloads its lists. */
  lists: number;
  /** Proxy threads: the primary's lists in shared memory, viewed instead of read from disk. */
  shared?: SharedLists | null;
}

/** The captive portal's address and the key its links are signed with (src/auth/portal-link.ts). */
export interface PortalInit {
  base: string | null;
  key: string;
}

export type ToWorker =
  /** `policy`: what already serves (a replacement worker applies it before it listens). */
  | { t: 'init'; id: number; config: VigieConfig; admit: boolean; policy: PolicyNotice | null; overrides: readonly Override[]; portal: PortalInit }
  | PolicyNotice
  /** Teachers' unblocks in force, the whole list, after every change. */
  | { t: 'overrides'; list: readonly Override[] }
  /** Whether new connections may be taken (the primary's journal can record them). */
  | { t: 'admit'; ok: boolean }
  /** Address ↔ user sessions opened or closed in the primary (the API): workers identify with the same. */
  | { t: 'sessions'; changes: SessionChange[] }
  /** Addresses over their LDAP failure limit anywhere in the gateway, each until when (ms since epoch). */
  | { t: 'auth-limits'; list: [string, number][] }
  | { t: 'stop'; graceMs: number }
  /** Asks for its memory figures (SIGUSR2). */
  | { t: 'memory' };

export type FromWorker =
  /** The worker's code is loaded and listens for messages: the primary answers with `init`. */
  | { t: 'hello' }
  | { t: 'listening'; addresses: { host: string; port: number }[] }
  | { t: 'listen-failed'; message: string }
  /** A policy notice was applied (or failed to, then `error` says why and the previous one serves). */
  | { t: 'applied'; seq: number; policyVersion: number; listsLoaded: boolean; error?: string }
  | { t: 'ev'; b: EventBatch }
  /** A failed LDAP check from `client`, sent at once (not batched): the primary counts them for every worker. */
  | { t: 'auth-failed'; client: string }
  /** A report sent on the proxy port: the primary queues it. */
  | { t: 'report'; r: NewReport }
  | { t: 'stopped'; requests: number; tunnels: number }
  | { t: 'memory'; m: MemoryFigures };
