import type { Command } from 'commander';
import { resolve } from 'node:path';
import { caDir } from '../tls/exclusions.js';
import { CaError, describeCa, initCa } from '../tls/ca.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

/** `vigie ca init|show`: the school's own CA for optional TLS interception (docs/interception.md). */
export function registerCa(program: Command): void {
  const ca = program.command('ca').description("the school's own certificate authority for TLS interception (block pages over HTTPS, full-URL decisions)");

  withCommon(ca.command('init'))
    .description('create the CA under <data>/ca (or interception.ca): key 0600, certificate as PEM and DER for GPO/MDM deployment')
    .option('--name <name>', 'its name, as devices show it', 'Vigie school interception CA')
    .action((opts: CommonOpts & { name: string }) => {
      const dir = caDir(configFrom(opts));
      try {
        const p = initCa(resolve(dir), opts.name);
        process.stdout.write(`created the school CA "${opts.name}"\n  private key: ${p.key} (0600: keep it on the gateway, back it up offline)\n  certificate: ${p.cert}\n  for GPO/MDM: ${p.der}\n`);
        process.stdout.write(describeCa(p.dir));
      } catch (e) {
        if (!(e instanceof CaError)) throw e;
        process.stderr.write(`vigie: ${e.message}\n`);
        process.exit(2);
      }
    });

  withCommon(ca.command('show'))
    .description("print the CA's fingerprints, expiry and files")
    .action((opts: CommonOpts) => {
      try {
        process.stdout.write(describeCa(resolve(caDir(configFrom(opts)))));
      } catch (e) {
        if (!(e instanceof CaError)) throw e;
        process.stderr.write(`vigie: ${e.message}\n`);
        process.exit(2);
      }
    });
}
