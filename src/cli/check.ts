import { InvalidArgumentError, type Command } from 'commander';
import { compilePolicy } from '../gateway.js';
import { loadUt1Index } from '../lists/load.js';
import { resolveUt1Dir } from '../lists/update.js';
import { createLogger } from '../log.js';
import { decide } from '../policy/decide.js';
import { retargetFor } from '../policy/safesearch.js';
import { PolicyStore } from '../policy/store.js';
import type { DecisionRequest } from '../policy/types.js';
import { parseAbsoluteUrl, splitAuthority } from '../proxy/server.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

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

export function registerCheck(program: Command): void {
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
      // The same policy the running gateway would serve: its lists (updated ones included) and
      // the latest version the supervision API stored.
      const { index } = await loadUt1Index(await resolveUt1Dir(config), { dataDir: config.dataDir, log });
      const store = new PolicyStore(config, log);
      await store.load();
      const snapshot = await compilePolicy(config, index, store.version, log, store);
      const req = requestFor(url, opts.client, opts.at ?? Date.now());
      const d = decide(snapshot, req);
      // What is allowed may still be connected elsewhere: the profile's SafeSearch enforcement.
      const retarget = d.action === 'allow' ? retargetFor(snapshot, d.profile, req.host) : null;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ url, client: opts.client, host: req.host, at: new Date(req.time).toISOString(), ...d, retarget }, null, 2) + '\n');
      } else {
        const lines = [
          `${d.action === 'allow' ? 'ALLOW' : 'BLOCK'} ${req.scheme === 'connect' ? `CONNECT ${req.host}:${req.port}` : `http://${req.host}${req.port === 80 ? '' : `:${req.port}`}${req.path}`}`,
          `  profile:  ${d.profile ?? '(none: client not in any configured network)'}${d.period !== 'always' ? ` (${d.period} its time window)` : ''}`,
          `  rule:     ${d.rule}`,
          `  category: ${d.category ?? '-'}`,
          `  entry:    ${d.entry ?? '-'}${d.matchKind ? ` (${d.matchKind})` : ''}`,
          `  lists:    ${d.listVersion}`,
        ];
        if (retarget) lines.push(`  connect:  ${retarget.host} instead (${retarget.engine} SafeSearch, set by the profile's "safeSearch")`);
        process.stdout.write(lines.join('\n') + '\n');
      }
    });
}
