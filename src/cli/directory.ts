import type { Command } from 'commander';
import { describeOutcome, importFiles } from '../directory/import.js';
import { profileForUser } from '../directory/levels.js';
import { Directory } from '../directory/store.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

/** `vigie directory import|show`: the academy's AAF exports, in `<dataDir>/directory.db`. */
export function registerDirectory(program: Command): void {
  const directory = program.command('directory').description('the academy directory (AAF exports): who may be identified, with which profile');

  withCommon(directory.command('import'))
    .description('import AAF files (Complet and Delta; Eleve, PersEducNat, EtabEducNat, PersRelEleve), each in one transaction')
    .argument('<files...>', 'ENT_<UAI>_<Complet|Delta>_<date>_<Kind>_<n>.xml files')
    .option('--json', 'print one JSON object per file')
    .action(async (files: string[], opts: CommonOpts & { json?: boolean }) => {
      const config = configFrom(opts);
      const dir = Directory.open(config.dataDir);
      try {
        const outcomes = await importFiles(files, dir);
        // Departed people are kept as long as the journal rows that may name them.
        const purged = dir.purge(config.journal.retentionDays);
        for (const o of outcomes) {
          if (opts.json) {
            const line = o.status === 'refused' ? { file: o.file, status: o.status, line: o.error.line, reason: o.error.reason } : o;
            process.stdout.write(JSON.stringify(line) + '\n');
          } else {
            (o.status === 'imported' ? process.stdout : process.stderr).write(describeOutcome(o) + '\n');
          }
        }
        const c = dir.counts();
        if (!opts.json) process.stdout.write(`directory: ${c.users} users (${Object.entries(c.byRole).map(([r, n]) => `${n} ${r}`).join(', ') || 'none'}), ${c.establishments} establishments, ${c.left} departed kept for requisitions${purged ? `, ${purged} purged` : ''}\n`);
        if (outcomes.some((o) => o.status !== 'imported')) process.exitCode = 1;
      } finally {
        dir.close();
      }
    });

  withCommon(directory.command('show'))
    .description('what the directory knows of a user (AAF id or login) and the profile it gives; never their name')
    .argument('<user>')
    .action((user: string, opts: CommonOpts) => {
      const config = configFrom(opts);
      const dir = Directory.open(config.dataDir);
      try {
        const u = dir.find(user);
        if (!u) {
          process.stderr.write(`vigie: no user "${user}" in the directory\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(JSON.stringify({ ...u, profile: profileForUser(u, config.directory) }, null, 2) + '\n');
      } finally {
        dir.close();
      }
    });
}
