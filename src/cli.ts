#!/usr/bin/env node
// First: sets V8's heap flags before the other modules load (src/heap.ts).
import './heap.js';
import { Command } from 'commander';
import { registerAcademy } from './cli/academy.js';
import { registerCa } from './cli/ca.js';
import { registerCheck } from './cli/check.js';
import { registerDirectory } from './cli/directory.js';
import { registerJournal } from './cli/journal.js';
import { registerLists } from './cli/lists.js';
import { registerStart } from './cli/start.js';
import { registerToken } from './cli/token.js';
import { registerPolicy } from './cli/policy.js';

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
