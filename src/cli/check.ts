import { InvalidArgumentError, type Command } from 'commander';
import { compilePolicy } from '../gateway.js';
import { loadUt1Index } from '../lists/load.js';
import { resolveUt1Dir } from '../lists/update.js';
import { createLogger } from '../log.js';
import { decide } from '../policy/decide.js';
import { PolicyStore } from '../policy/store.js';
import { requestFor } from '../policy/request.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

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
}
