import { InvalidArgumentError, type Command } from 'commander';
import { auditCli, cliUser } from './audit.js';
import { ROLES, TokenStore, type Role } from '../supervision/tokens.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

const parseRole = (v: string): Role => {
  if (!(ROLES as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${ROLES.join(', ')}`);
  return v as Role;
};

/** `vigie token create|revoke|list`: the supervision API's bearer tokens, in `<dataDir>/tokens.json`. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('manage the supervision API tokens (admin, supervisor, requisition, teacher)');

  withCommon(token.command('create'))
    .description('create a token and print it once on stdout (only its hash is kept)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, parseRole)
    .requiredOption('--name <name>', 'who holds it (shown in the audit log)')
    .action(async (opts: CommonOpts & { role: Role; name: string }) => {
      const config = configFrom(opts);
      const store = await TokenStore.open(config.dataDir);
      const { token: secret, record } = await store.create(opts.role, opts.name, cliUser());
      await auditCli(config.dataDir, 'token.create', record.id, { id: record.id, role: record.role, name: record.name });
      process.stderr.write(`created ${record.role} token ${record.id} for "${record.name}"; it is shown only now:\n`);
      process.stdout.write(secret + '\n');
    });

  withCommon(token.command('revoke'))
    .description('revoke a token by id, or every active token with that name (a running gateway refuses it from its next request)')
    .argument('<id-or-name>')
    .action(async (idOrName: string, opts: CommonOpts) => {
      const config = configFrom(opts);
      const store = await TokenStore.open(config.dataDir);
      const revoked = await store.revoke(idOrName);
      if (!revoked.length) {
        process.stderr.write(`vigie: no active token "${idOrName}"\n`);
        process.exit(1);
      }
      await auditCli(config.dataDir, 'token.revoke', idOrName, { revoked: revoked.map((r) => ({ id: r.id, role: r.role, name: r.name })) });
      for (const r of revoked) process.stdout.write(`revoked ${r.id} ${r.role} "${r.name}"\n`);
    });

  withCommon(token.command('list'))
    .description('list tokens (never their secret)')
    .option('--json', 'print JSON')
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const config = configFrom(opts);
      const store = await TokenStore.open(config.dataDir);
      const list = store.list();
      if (opts.json) return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      for (const r of list) process.stdout.write(`${r.id}  ${r.role.padEnd(11)}  ${r.revoked ? `revoked ${r.revoked}` : 'active'.padEnd(32)}  ${r.name}\n`);
    });
}
