import { InvalidArgumentError, type Command } from 'commander';
import { profileForUser, type DirectoryUser } from '../directory/levels.js';
import { Directory } from '../directory/store.js';
import { compilePolicy } from '../gateway.js';
import { categoryLabel } from '../lists/labels.js';
import { loadListSet } from '../lists/set.js';
import { createLogger } from '../log.js';
import { decide } from '../policy/decide.js';
import { InterceptExclusions, tlsTreatment } from '../policy/interception.js';
import { retargetFor } from '../policy/snapshot.js';
import { PolicyStore } from '../policy/store.js';
import { requestFor } from '../policy/request.js';
import { parseTimeIn } from '../policy/schedule.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

/** `2026-12-07 08:10` in `timezone`, for people. */
const localTime = (t: number, timezone: string): string =>
  new Intl.DateTimeFormat('sv-SE', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(t);

/** A present user of `<dataDir>/directory.db`, or exit 1 saying why not. */
function findUser(dataDir: string, idOrLogin: string): DirectoryUser {
  let dir: Directory;
  try {
    dir = Directory.open(dataDir, { readonly: true });
  } catch {
    process.stderr.write(`vigie: no directory in ${dataDir} (vigie directory import FILE...)\n`);
    process.exit(1);
  }
  try {
    const u = dir.find(idOrLogin);
    if (!u) {
      process.stderr.write(`vigie: no user "${idOrLogin}" in the directory\n`);
      process.exit(1);
    }
    return u;
  } finally {
    dir.close();
  }
}

export function registerCheck(program: Command): void {
  // Checked here, read in the action: a time without an offset is in the config's time zone.
  const checkTime = (v: string): string => {
    if (Number.isNaN(parseTimeIn(v, 'UTC'))) throw new InvalidArgumentError('not an ISO 8601 time');
    return v;
  };

  withCommon(program.command('check'))
    .description('print what the gateway would decide for URL from a client, and why')
    .argument('<url>', 'http://host/path, https://host, or a bare host name')
    .option('--client <ip>', 'client address (picks the profile)')
    .option('--user <id>', 'a directory user (AAF id or login): their profile instead of the address\'s')
    .option('--at <iso-time>', "decide at this time (schedules), default now; without an offset it is in the config's timezone", checkTime)
    .option('--json', 'print a JSON object')
    .action(async (url: string, opts: CommonOpts & { client?: string; user?: string; at?: string; json?: boolean }) => {
      const config = configFrom(opts);
      if (!opts.client && !opts.user) {
        process.stderr.write('vigie: give --client <ip>, --user <id>, or both\n');
        process.exit(2);
      }
      const user = opts.user ? findUser(config.dataDir, opts.user) : null;
      // A user the directory maps to no profile browses with the address's profile, as the gate does.
      const userProfile = user ? (profileForUser(user, config.directory) ?? undefined) : undefined;
      const log = createLogger('error');
      // The same policy the running gateway would serve: its lists (updated ones included) and
      // the latest version the supervision API stored.
      const lists = await loadListSet(config, log);
      const store = new PolicyStore(config, log);
      await store.load();
      const snapshot = await compilePolicy(config, lists.ut1, store.version, log, store, lists.extra);
      const req = requestFor(url, opts.client ?? '', opts.at === undefined ? Date.now() : parseTimeIn(opts.at, config.timezone));
      const d = decide(snapshot, req, userProfile);
      const labels = d.category ? { fr: categoryLabel(d.category, 'fr'), en: categoryLabel(d.category, 'en') } : null;
      // What is allowed may still be connected elsewhere: the profile's SafeSearch enforcement.
      const retarget = d.action === 'allow' ? retargetFor(snapshot, d.profile, req.host) : null;
      // For HTTPS (CONNECT): terminated with the school CA, excluded from it, or tunnelled untouched.
      const tls = req.scheme === 'connect' ? tlsTreatment(config, new InterceptExclusions(config, snapshot), d, req.host) : null;
      const who = user ? { user: { id: user.id, role: user.role, level: user.level, classes: user.classes, profile: userProfile ?? null } } : {};
      if (opts.json) {
        process.stdout.write(JSON.stringify({ url, client: opts.client ?? null, ...who, host: req.host, at: new Date(req.time).toISOString(), timezone: config.timezone, dataDir: config.dataDir, ...d, list: d.list ?? null, categoryLabel: labels, retarget, tls }, null, 2) + '\n');
      } else {
        const lines = [
          `${d.action === 'allow' ? 'ALLOW' : 'BLOCK'} ${req.scheme === 'connect' ? `CONNECT ${req.host}:${req.port}` : `http://${req.host}${req.port === 80 ? '' : `:${req.port}`}${req.path}`}`,
          ...(user ? [`  user:     ${user.id} (${user.role}${user.level ? `, ${user.level}` : ''}${user.classes.length ? `, ${user.classes.join(' ')}` : ''}) → ${userProfile ? `profile ${userProfile} from the directory` : 'no profile from the directory: the address decides'}`] : []),
          `  profile:  ${d.profile ?? '(none: client not in any configured network)'}${d.period !== 'always' ? ` (${d.period} its time window)` : ''}`,
          `  rule:     ${d.rule}`,
          `  category: ${d.category ?? '-'}${labels?.fr ? ` (${labels.fr}${labels.en && labels.en !== labels.fr ? ` / ${labels.en}` : ''})` : ''}`,
          `  list:     ${d.list ?? '-'}`,
          `  entry:    ${d.entry ?? '-'}${d.matchKind ? ` (${d.matchKind})` : ''}`,
          `  lists:    ${d.listVersion}`,
          `  policy:   version ${d.policyVersion}`,
          `  at:       ${new Date(req.time).toISOString()} (${config.timezone}: ${localTime(req.time, config.timezone)})`,
          `  data:     ${config.dataDir}`,
        ];
        if (tls !== null) lines.push(`  tls:      ${tls}${tls === 'intercept' ? ' (terminated with the school CA: docs/interception.md)' : tls === 'exclude' ? ' (never intercepted: interception.exclude)' : ''}`);
        if (retarget) lines.push(`  connect:  ${retarget.host} instead (${retarget.engine} SafeSearch, set by the profile's "safeSearch")`);
        process.stdout.write(lines.join('\n') + '\n');
      }
    });
}
