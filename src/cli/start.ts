import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { memoryFigures } from '../cluster/memory.js';
import { createWorkers } from '../cluster/runtime.js';
import { Gateway } from '../gateway.js';
import { releaseHeapWhenIdle } from '../heap-release.js';
import { createLogger } from '../log.js';
import { createGatewayMetrics } from '../metrics/registry.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { AuditLog } from '../supervision/audit.js';
import type { SupervisionServer } from '../supervision/server.js';
import type { PortalServer } from '../auth/portal.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

interface StartOpts extends CommonOpts {
  grace: string;
}

export function registerStart(program: Command): void {
  withCommon(program.command('start'))
    .description('run the gateway (SIGHUP: reload config and lists; SIGTERM: graceful stop)')
    .option('--grace <seconds>', 'on SIGTERM, how long in-flight requests and tunnels may finish before they are cut', '10')
    .action(async (opts: StartOpts) => {
      const config = configFrom(opts);
      const log = createLogger(config.log.level);
      const graceMs = Math.max(0, Number(opts.grace) * 1000 || 0);
      const t0 = performance.now();
      const metrics = config.metrics.enabled ? createGatewayMetrics() : null;
      // workers > 1: this process keeps the journal, metrics and API; worker threads or processes
      // proxy. With threads the main thread proxies too by default (SO_REUSEPORT beside them).
      const clustered = config.workers > 1 ? await createWorkers(config, log) : null;
      const serves = clustered?.mainServes ?? true;
      const gateway = new Gateway({
        config,
        log,
        observers: metrics ? [metrics.observer] : [],
        // Transparent listeners are the main thread's in any case (workers listen on the proxy ports only).
        ...(clustered ? { listen: serves || 'transparent', reusePort: serves, proxyObservers: serves ? [clustered.served] : [], onSwap: clustered.onSwap, onOverrides: clustered.onOverrides } : {}),
      });
      metrics?.bind(() => gateway);
      let metricsServer: MetricsServer | null = null;
      let supervision: SupervisionServer | null = null;
      let portal: PortalServer | null = null;
      // Portal logins go to the API's audit log; before the API starts, or without it, to the same file.
      let ownAudit: AuditLog | null = null;
      const portalAudit = () => supervision?.audit ?? (ownAudit ??= new AuditLog(config.dataDir, config.journal.retentionDays));

      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info('stopping: no new connections; in-flight ones may finish', { signal, graceSeconds: graceMs / 1000 });
        // Gateway.stop closes the listeners, waits for open requests and tunnels (cut after the
        // grace period), then flushes the journal. Workers go first: their last events are journaled.
        // The main thread stops serving as they do (with `mainThreadServes`), then closes the journal.
        await gateway.stop(graceMs, clustered?.stop(graceMs));
        clustered?.mainStopped();
        await metricsServer?.close();
        await supervision?.close();
        await portal?.close();
        log.info('stopped');
        process.exit(0);
      };

      // Reloads run one after the other, and only once the gateway has started.
      const reload = async () => {
        if (stopping) return;
        log.info('reload asked (SIGHUP)', { config: opts.config ?? '<embedded defaults>' });
        let next;
        try {
          next = loadConfig(opts.config);
        } catch (e) {
          log.error(`reload refused, the running config stays: ${(e as Error).message}`);
          return;
        }
        if (opts.lists) next.lists.ut1 = resolve(opts.lists);
        if (opts.data) next.dataDir = resolve(opts.data);
        const { restartNeeded, listsLoaded, overriddenProfiles } = await gateway.reload(next);
        await clustered?.settled();
        log.level = next.log.level;
        if (overriddenProfiles.length) {
          const meta = gateway.policy.current.meta;
          log.warn('reload: these profiles of the config file are not applied: the policy managed over the API or the fleet overrides them (change them there, or roll back)', { profiles: overriddenProfiles.join(','), policyVersion: meta.version, changedBy: meta.who });
        }
        if (restartNeeded.length) log.warn('reload: these settings changed but apply only after a restart', { keys: restartNeeded.join(',') });
        log.info('reloaded', { policyVersion: gateway.snapshot.policyVersion, listsLoaded });
      };

      // Where the memory goes, on demand (docs/design/workers.md): this process, then each worker.
      process.on('SIGUSR2', () => (clustered ? clustered.logMemory() : log.info('memory (MiB)', { pid: process.pid, ...memoryFigures() })));
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      let markReady!: () => void;
      let ready: Promise<unknown> = new Promise<void>((r) => (markReady = r));
      // Registered before start: an unhandled SIGHUP would kill the process.
      process.on('SIGHUP', () => {
        ready = ready.then(reload).catch((e: Error) => log.error(`reload failed: ${e.message}`));
      });

      if (metrics) {
        try {
          metricsServer = await startMetricsServer(metrics.registry, config.metrics.listen);
          const a = metricsServer.address;
          log.info('metrics listening', { address: `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`, path: '/metrics' });
        } catch (e) {
          // Filtering matters more than its metrics: run on, and say so.
          log.error(`metrics: cannot listen on ${config.metrics.listen.host}:${config.metrics.listen.port} (${(e as Error).message}); running without /metrics`);
        }
      }
      // The portal first: workers are told its address when they start. Without it, unauthenticated
      // HTTP gets 503 ("the login portal is not running"), and filtering goes on.
      if (config.auth.portal) {
        // The portal and the API (fastify, swagger, node-forge) are imported only when configured.
        const { portalCertificate, startPortal } = await import('../auth/portal.js');
        portal = await portalCertificate(config, log)
          .then((tls) => startPortal({ config: () => gateway.config, identity: gateway.identity, clients: () => gateway.snapshot?.clients, log, audit: portalAudit }, tls))
          .catch((e: Error) => (log.error(`captive portal not started: ${e.message}`), null));
      }
      try {
        if (clustered) {
          const started = gateway.start();
          started.catch(() => undefined);
          const addresses = await clustered.listen(gateway);
          // A main thread that serves said so itself (Gateway.start).
          if (!serves && !gateway.snapshot?.listsLoaded) log.warn('policy not loaded yet: every request is blocked except the allow lists (fail closed)');
          for (const l of addresses) log.info('proxy listening', { address: l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`, workers: config.workers });
          await started;
          if (serves) clustered.mainListening(gateway.listening);
          await clustered.policyReady();
        } else await gateway.start();
        markReady();
      } catch (e) {
        log.error(`cannot start: ${(e as Error).message}`);
        process.exit(1);
      }
      // Filtering goes on without the API: a port conflict must not take the school offline.
      if (config.supervision.enabled) supervision = await (await import('../supervision/server.js')).startSupervision({ gateway, log, registry: metrics?.registry }).catch((e: Error) => (log.error(`supervision API not started: ${e.message}`), null));
      releaseHeapWhenIdle();
      log.info('gateway ready', { seconds: ((performance.now() - t0) / 1000).toFixed(2), rssMiB: Math.round(process.memoryUsage().rss / 1048576), ...(clustered ? { workers: clustered.workerPids.join(','), runtime: clustered.runtime.kind } : {}) });
    });
}
