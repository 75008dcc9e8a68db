import { InvalidArgumentError, type Command } from 'commander';
import { compilePolicy } from '../gateway.js';
import { loadUt1Index } from '../lists/load.js';
import { resolveUt1Dir } from '../lists/update.js';
import { createLogger } from '../log.js';
import { decide } from '../policy/decide.js';
import { retargetFor } from '../policy/safesearch.js';
import { PolicyStore } from '../policy/store.js';
import { requestFor } from '../policy/request.js';
import { parseTimeIn } from '../policy/schedule.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

/** `2026-12-07 08:10` in `timezone`, for people. */
const localTime = (t: number, timezone: string): string =>
  new Intl.DateTimeFormat('sv-SE', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(t);

export function registerCheck(program: Command): void {
  // Checked here, read in the action: a time without an offset is in the config's time zone.
  const checkTime = (v: string): string => {
    if (Number.isNaN(parseTimeIn(v, 'UTC'))) throw new InvalidArgumentError('not an ISO 8601 time');
    return v;
  };

  withCommon(program.command('check'))
    .description('print what the gateway would decide for URL from a client, and why')
    .argument('<url>', 'http://host/path, https://host, or a bare host name')
    .requiredOption('--client <ip>', 'client address (picks the profile)')
    .option('--at <iso-time>', "decide at this time (schedules), default now; without an offset it is in the config's timezone", checkTime)
    .option('--json', 'print a JSON object')
    .action(async (url: string, opts: CommonOpts & { client: string; at?: string; json?: boolean }) => {
      const config = configFrom(opts);
      const log = createLogger('error');
      // The same policy the running gateway would serve: its lists (updated ones included) and
      // the latest version the supervision API stored.
      const { index } = await loadUt1Index(await resolveUt1Dir(config), { dataDir: config.dataDir, log });
      const store = new PolicyStore(config, log);
      await store.load();
      const snapshot = await compilePolicy(config, index, store.version, log, store);
      const req = requestFor(url, opts.client, opts.at === undefined ? Date.now() : parseTimeIn(opts.at, config.timezone));
      const d = decide(snapshot, req);
      // What is allowed may still be connected elsewhere: the profile's SafeSearch enforcement.
      const retarget = d.action === 'allow' ? retargetFor(snapshot, d.profile, req.host) : null;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ url, client: opts.client, host: req.host, at: new Date(req.time).toISOString(), timezone: config.timezone, dataDir: config.dataDir, ...d, retarget }, null, 2) + '\n');
      } else {
        const lines = [
          `${d.action === 'allow' ? 'ALLOW' : 'BLOCK'} ${req.scheme === 'connect' ? `CONNECT ${req.host}:${req.port}` : `http://${req.host}${req.port === 80 ? '' : `:${req.port}`}${req.path}`}`,
          `  profile:  ${d.profile ?? '(none: client not in any configured network)'}${d.period !== 'always' ? ` (${d.period} its time window)` : ''}`,
          `  rule:     ${d.rule}`,
          `  category: ${d.category ?? '-'}`,
          `  entry:    ${d.entry ?? '-'}${d.matchKind ? ` (${d.matchKind})` : ''}`,
          `  lists:    ${d.listVersion}`,
          `  policy:   version ${d.policyVersion}`,
          `  at:       ${new Date(req.time).toISOString()} (${config.timezone}: ${localTime(req.time, config.timezone)})`,
          `  data:     ${config.dataDir}`,
        ];
        if (retarget) lines.push(`  connect:  ${retarget.host} instead (${retarget.engine} SafeSearch, set by the profile's "safeSearch")`);
        process.stdout.write(lines.join('\n') + '\n');
      }
    });
}
