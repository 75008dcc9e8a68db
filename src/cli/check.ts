import { InvalidArgumentError, type Command } from 'commander';
import { profileForUser, type DirectoryUser } from '../directory/levels.js';
import { Directory } from '../directory/store.js';
import { compilePolicy } from '../gateway.js';
import { loadUt1Index } from '../lists/load.js';
import { resolveUt1Dir } from '../lists/update.js';
import { createLogger } from '../log.js';
import { decide } from '../policy/decide.js';
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
  const parseTime = (v: string): number => {
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new InvalidArgumentError('not an ISO 8601 time');
    return t;
  };
  
  withCommon(program.command('check'))
    .description('print what the gateway would decide for URL from a client, and why')
    .argument('<url>', 'http://host/path, https://host, or a bare host name')
    .option('--client <ip>', 'client address (picks the profile)')
    .option('--user <id>', 'a directory user (AAF id or login): their profile instead of the address\'s')
    .option('--at <iso-time>', 'decide at this time (schedules), default now', parseTime)
    .option('--json', 'print a JSON object')
    .action(async (url: string, opts: CommonOpts & { client?: string; user?: string; at?: number; json?: boolean }) => {
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
      const { index } = await loadUt1Index(await resolveUt1Dir(config), { dataDir: config.dataDir, log });
      const store = new PolicyStore(config, log);
      await store.load();
      const snapshot = await compilePolicy(config, index, store.version, log, store);
      const req = requestFor(url, opts.client ?? '', opts.at ?? Date.now());
      const d = decide(snapshot, req, userProfile);
      const who = user ? { user: { id: user.id, role: user.role, level: user.level, classes: user.classes, profile: userProfile ?? null } } : {};
      if (opts.json) {
        process.stdout.write(JSON.stringify({ url, client: opts.client ?? null, ...who, host: req.host, at: new Date(req.time).toISOString(), ...d }, null, 2) + '\n');
      } else {
        const lines = [
          `${d.action === 'allow' ? 'ALLOW' : 'BLOCK'} ${req.scheme === 'connect' ? `CONNECT ${req.host}:${req.port}` : `http://${req.host}${req.port === 80 ? '' : `:${req.port}`}${req.path}`}`,
          ...(user ? [`  user:     ${user.id} (${user.role}${user.level ? `, ${user.level}` : ''}${user.classes.length ? `, ${user.classes.join(' ')}` : ''}) → ${userProfile ? `profile ${userProfile} from the directory` : 'no profile from the directory: the address decides'}`] : []),
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
