// The `vigie` command line; loaded by src/cli.ts once V8's heap flags are set.
import { Command } from 'commander';
import { registerAcademy } from './academy.js';
import { registerCa } from './ca.js';
import { registerCheck } from './check.js';
import { registerDirectory } from './directory.js';
import { registerJournal } from './journal.js';
import { registerLists } from './lists.js';
import { registerStart } from './start.js';
import { registerToken } from './token.js';
import { registerPolicy } from './policy.js';

const program = new Command();
program
  .name('vigie')
  .description('Vigie: filtering proxy for school networks (UT1 lists per age profile, journal, supervision)')
  .version('0.1.0');

// One module per command family, in src/cli/.
registerStart(program);
registerCheck(program);
registerJournal(program);
registerLists(program);
registerToken(program);
registerPolicy(program);
registerDirectory(program);
registerAcademy(program);
registerCa(program);

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`vigie: ${e.message}\n`);
  process.exit(1);
});
