import type { VigieConfig } from '../config/types.js';
import { ServingGateway } from '../serving.js';
import { createLogger, type Fields, type Logger } from '../log.js';
import type { Override } from '../policy/overrides.js';
import type { FromWorker, PolicyNotice, PortalInit, ToWorker } from './protocol.js';
import { memoryFigures } from './memory.js';
import { RelayObserver } from './relay.js';
import { listSetFromShared, type SharedLists } from './shared-lists.js';
import { releaseHeapWhenIdle } from '../heap-release.js';

/**
 * The primary already says what matters once for the whole gateway (lists loaded, policy
 * warnings); a worker repeating it N times would only blur the log. Its own errors stay errors.
 */
function workerLogger(base: Logger, id: number): Logger {
  const tag = (f?: Fields): Fields => ({ worker: id, ...f });
  return {
    debug: (m, f) => base.debug(m, tag(f)),
    info: (m, f) => base.debug(m, tag(f)),
    warn: (m, f) => base.debug(m, tag(f)),
    error: (m, f) => base.error(m, tag(f)),
  };
}

/** ~64 × 256 events waiting in the pipe to the primary. */
const MAX_UNSENT_BATCHES = 64;

/**
 * How a proxy worker talks to the primary: the IPC pipe of a forked process, or the port of a
 * worker thread (threads.ts). `done` runs once the message left (process: written to the pipe).
 */
export interface Channel {
  readonly kind: 'process' | 'thread';
  send(m: FromWorker, done?: () => void): void;
  on(h: (m: ToWorker) => void): void;
  off(h: (m: ToWorker) => void): void;
  connected(): boolean;
  /** Ends this worker (the process, or only this thread). */
  exit(code: number): void;
  /** Says who this worker is in log lines. */
  readonly ids: Fields;
}

const processChannel: Channel = {
  kind: 'process',
  // With a callback, a pipe the primary closed is an argument, not an 'error' event that throws.
  send: (m, done) => (process.connected ? process.send!(m, undefined, {}, () => done?.()) : done?.()),
  on: (h) => process.on('message', h),
  off: (h) => process.off('message', h),
  connected: () => process.connected,
  exit: (code) => process.exit(code),
  ids: { pid: process.pid },
};

/**
 * One proxy worker of `vigie start` in cluster mode: a ServingGateway on the shared ports,
 * with no journal, API or metrics of its own. Its traffic goes to the primary as batched events;
 * its policy follows the primary's notices; it takes new connections only while the primary says
 * the journal can record them. If the primary dies, node:cluster ends this process (fail closed).
 */
export function runProxyWorker(): void {
  // The primary decides when to stop; a signal sent to the whole group (systemd, Ctrl-C) must not
  // cut this worker's connections before their grace period.
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => undefined);
  runProxyMember(processChannel);
}

/** A proxy worker on `channel`: asks the primary for its init, then serves (a process or a thread). */
export function runProxyMember(channel: Channel): void {
  releaseHeapWhenIdle();
  // Before init, other notices are stale: init carries the current admit state and policy.
  const onFirst = (first: ToWorker) => {
    if (first.t !== 'init') return;
    channel.off(onFirst);
    start(channel, first.id, first.config, first.admit, first.policy, first.overrides, first.portal).catch((e: Error) => {
      process.stderr.write(`proxy worker ${first.id}: ${e.stack ?? e.message}\n`);
      channel.exit(1);
    });
  };
  channel.on(onFirst);
  // Messages sent before a listener exists are lost: ask for the config once listening for it.
  channel.send({ t: 'hello' });
}

async function start(channel: Channel, id: number, config: VigieConfig, admit: boolean, policy: PolicyNotice | null, overrides: readonly Override[], portal: PortalInit): Promise<void> {
  const send = channel.send;
  const base = createLogger(config.log.level);
  const log = workerLogger(base, id);
  let admitted = admit;
  // Batches the primary has not taken off the pipe yet: when it falls that far behind, a journal
  // under `block` could not keep up either, so new work is refused as it would be there.
  let unsent = 0;
  const sent = () => void unsent--;
  const relay = new RelayObserver((b) => {
    unsent++;
    send({ t: 'ev', b }, sent);
  });
  const mayLag = !config.journal.enabled || config.journal.overflow === 'allow';
  // A thread views the lists of the main thread's notices (shared memory); a process reads the disk.
  let shared: SharedLists | null = null;
  const threaded = channel.kind === 'thread';
  const listSet = threaded
    ? (c: VigieConfig, l: Logger, dir: string) => {
        if (!shared) return import('../lists/set.js').then((m) => m.loadListSet(c, l, dir));
        log.debug('proxy worker: lists viewed in shared memory', { ...channel.ids, version: shared.report.version, bytes: shared.ut1.byteLength + (shared.extra?.file.byteLength ?? 0) });
        return listSetFromShared(shared);
      }
    : undefined;
  // What serves, alone: the journal, alerts, reports and list updates are the primary's.
  const gateway = new ServingGateway({ config, log, observers: [relay], admit: () => admitted && channel.connected() && (mayLag || unsent < MAX_UNSENT_BATCHES), worker: { reports: (r) => send({ t: 'report', r }) }, reusePort: threaded, listSet });
  gateway.overrides.replace(overrides);
  // Sessions are the primary's (API, portal): this copy follows them, idle ones included.
  const identity = gateway.identity;
  identity.sessions.follower = true;
  identity.portal.base = portal.base;
  identity.portal.key = Buffer.from(portal.key, 'base64');
  if (identity.verifier) identity.verifier.onCount = (outcome) => relay.authChecked(outcome);
  relay.leafSource = () => gateway.proxy.interception.leafCounts();
  // Failures are counted in the primary too, which tells every worker when an address is over the limit.
  if (identity.verifier) identity.verifier.onFailure = (client) => send({ t: 'auth-failed', client });
  let applied = { config: JSON.stringify(config), lists: -1 };
  let next: PolicyNotice | null = null;
  let applying = false;
  let stopping = false;

  // Latest notice wins: one that arrives while another is being applied replaces any waiting one.
  const apply = async (): Promise<void> => {
    if (applying) return;
    applying = true;
    while (next && !stopping) {
      const n = next;
      next = null;
      let error: string | undefined;
      try {
        if (n.shared !== undefined) shared = n.shared;
        await gateway.policy.load();
        const json = JSON.stringify(n.config);
        if (json !== applied.config) {
          base.level = n.config.log.level;
          await gateway.reload(n.config);
        } else if (n.lists !== applied.lists) await gateway.loadLists();
        else await gateway.recompile();
        applied = { config: json, lists: n.lists };
      } catch (e) {
        error = (e as Error).message;
        log.error(`policy notice ${n.seq} not applied, the previous policy serves: ${error}`);
      }
      send({ t: 'applied', seq: n.seq, policyVersion: gateway.snapshot.policyVersion, listsLoaded: gateway.snapshot.listsLoaded, error });
    }
    applying = false;
  };

  channel.on((m: ToWorker) => {
    switch (m.t) {
      case 'policy':
        next = m;
        void apply();
        break;
      case 'admit':
        admitted = m.ok;
        break;
      case 'sessions':
        for (const c of m.changes) gateway.identity.sessions.apply(c);
        break;
      case 'overrides':
        gateway.overrides.replace(m.list);
        break;
      case 'auth-limits':
        for (const [client, until] of m.list) gateway.identity.verifier?.limitUntil(client, until);
        break;
      case 'memory':
        send({ t: 'memory', m: memoryFigures() });
        break;
      case 'stop':
        if (stopping) return;
        stopping = true;
        void gateway.stop(m.graceMs).then(() => {
          relay.close();
          base.info('proxy worker stopped', { worker: id, ...channel.ids, requests: relay.requests, tunnels: relay.tunnels });
          // The last events and this line reach the primary before the worker leaves.
          send({ t: 'stopped', requests: relay.requests, tunnels: relay.tunnels }, () => channel.exit(0));
        });
        break;
    }
  });

  // At the gateway's start: listen at once, failing closed (no lists yet), and the primary's
  // first notice brings the lists. A replacement worker loads them first: they are compiled.
  await gateway.policy.load();
  await gateway.recompile();
  // The directory is read here too (the primary alone imports the watched folder).
  await gateway.identity.start({ watch: false });
  if (policy) {
    next = policy;
    await apply();
  }
  let addresses;
  try {
    addresses = await gateway.proxy.listen();
  } catch (e) {
    send({ t: 'listen-failed', message: (e as Error).message }, () => channel.exit(1));
    return;
  }
  gateway.listening.push(...addresses);
  if (gateway.proxy.rawProblem) log.warn(`proxy worker: tunnels on net.Socket: ${gateway.proxy.rawProblem}`, channel.ids);
  log.debug('proxy worker listening', { ...channel.ids, addresses: addresses.map((a) => `${a.host}:${a.port}`).join(','), tunnels: gateway.proxy.rawTunnels ? 'raw handles' : 'net.Socket' });
  send({ t: 'listening', addresses });
}


