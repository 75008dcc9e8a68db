#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from './config/load.js';
import type { VigieConfig } from './config/types.js';
import { compilePolicy, Gateway } from './gateway.js';
import { loadUt1Index } from './lists/load.js';
import { createLogger } from './log.js';
import { BUNDLED_UT1 } from './paths.js';
import { decide } from './policy/decide.js';
import type { DecisionRequest } from './policy/types.js';
import { parseAbsoluteUrl, splitAuthority } from './proxy/server.js';

interface CommonOpts {
  config?: string;
  lists?: string;
  data?: string;
}

/** Loads the config and applies the command-line overrides; exits 2 with the reason when invalid. */
function configFrom(opts: CommonOpts): VigieConfig {
  let cfg: VigieConfig;
  try {
    cfg = loadConfig(opts.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`vigie: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (opts.lists) cfg.lists.ut1 = resolve(opts.lists);
  if (opts.data) cfg.dataDir = resolve(opts.data);
  return cfg;
}

/** `URL` as the gateway would see it: plain http keeps its path, https is a CONNECT to host:port. */
export function requestFor(url: string, client: string, time: number): DecisionRequest {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  const scheme = m ? m[1]!.toLowerCase() : 'http';
  if (scheme === 'https') {
    const rest = url.slice(m![0].length);
    const authority = rest.split(/[/?#]/, 1)[0]!;
    const hp = splitAuthority(authority, 443);
    return { client, scheme: 'connect', host: hp?.host ?? '', port: hp?.port ?? 443, path: '', time };
  }
  const target = parseAbsoluteUrl(m ? `http://${url.slice(m[0].length)}` : `http://${url}`);
  return { client, scheme: 'http', host: target?.host ?? '', port: target?.port ?? 80, path: target?.path ?? '/', time };
}

const program = new Command();
program
  .name('vigie')
  .description('Vigie: filtering proxy for school networks (UT1 lists per age profile, journal, supervision)')
  .version('0.1.0');

const withCommon = (cmd: Command): Command =>
  cmd
    .option('-c, --config <file>', 'JSON config file (default: embedded demo config)')
    .option('-l, --lists <dir>', 'UT1-layout lists folder used instead of the bundled one')
    .option('-d, --data <dir>', 'where state lives (journal, tokens, compiled lists)', 'data');

withCommon(program.command('start'))
  .description('run the gateway')
  .action(async (opts: CommonOpts) => {
    const config = configFrom(opts);
    const log = createLogger(config.log.level);
    const t0 = performance.now();
    const gateway = new Gateway({ config, log });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal });
      await gateway.stop(5000);
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    try {
      await gateway.start();
    } catch (e) {
      log.error(`cannot start: ${(e as Error).message}`);
      process.exit(1);
    }
    log.info('gateway ready', { seconds: ((performance.now() - t0) / 1000).toFixed(2), rssMiB: Math.round(process.memoryUsage().rss / 1048576) });
  });

const parseTime = (v: string): number => {
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidArgumentError('not an ISO 8601 time');
  return t;
};

withCommon(program.command('check'))
  .description('print what the gateway would decide for URL from a client, and why')
  .argument('<url>', 'http://host/path, https://host, or a bare host name')
  .requiredOption('--client <ip>', 'client address (picks the profile)')
  .option('--at <iso-time>', 'decide at this time (schedules), default now', parseTime)
  .option('--json', 'print a JSON object')
  .action(async (url: string, opts: CommonOpts & { client: string; at?: number; json?: boolean }) => {
    const config = configFrom(opts);
    const log = createLogger('error');
    const { index } = await loadUt1Index(config.lists.ut1 ?? BUNDLED_UT1);
    const snapshot = await compilePolicy(config, index, 1, log);
    const req = requestFor(url, opts.client, opts.at ?? Date.now());
    const d = decide(snapshot, req);
    if (opts.json) {
      process.stdout.write(JSON.stringify({ url, client: opts.client, host: req.host, at: new Date(req.time).toISOString(), ...d }, null, 2) + '\n');
    } else {
      const lines = [
        `${d.action === 'allow' ? 'ALLOW' : 'BLOCK'} ${req.scheme === 'connect' ? `CONNECT ${req.host}:${req.port}` : `http://${req.host}${req.port === 80 ? '' : `:${req.port}`}${req.path}`}`,
        `  profile:  ${d.profile ?? '(none: client not in any configured network)'}${d.period !== 'always' ? ` (${d.period} its time window)` : ''}`,
        `  rule:     ${d.rule}`,
        `  category: ${d.category ?? '-'}`,
        `  entry:    ${d.entry ?? '-'}${d.matchKind ? ` (${d.matchKind})` : ''}`,
        `  lists:    ${d.listVersion}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`vigie: ${e.message}\n`);
  process.exit(1);
});
