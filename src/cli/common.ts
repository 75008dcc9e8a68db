import type { Command } from 'commander';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '../config/load.js';
import type { VigieConfig } from '../config/types.js';

export interface CommonOpts {
  config?: string;
  lists?: string;
  data?: string;
}

/** Loads the config and applies the command-line overrides; exits 2 with the reason when invalid. */
export function configFrom(opts: CommonOpts): VigieConfig {
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


/** The options every command that reads the gateway's state takes. */
export const withCommon = (cmd: Command): Command =>
  cmd
    .option('-c, --config <file>', 'JSON config file (default: embedded demo config)')
    .option('-l, --lists <dir>', 'UT1-layout lists folder used instead of the bundled one')
    .option('-d, --data <dir>', 'where state lives (journal, tokens, compiled lists)');
