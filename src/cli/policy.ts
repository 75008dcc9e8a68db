import { readFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { createLogger } from '../log.js';
import { PolicyStore, PolicyValidationError, validateDraft } from '../policy/store.js';
import { BundleError, exportBundle, publicKeyFrom, signBundle, verifyBundle, type BundlePayload } from '../supervision/bundle.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

const readInput = (file?: string): string => readFileSync(file && file !== '-' ? file : 0, 'utf8');
const writeOutput = (text: string, file?: string): void => (file && file !== '-' ? writeFileSync(file, text) : void process.stdout.write(text));

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

/** `vigie policy export|sign|verify`: fleet bundles made from a gateway's current policy. */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('policy bundles for fleet (pull) mode');

  withCommon(policy.command('export'))
    .description("write this gateway's current policy (profiles and academy lists) as an unsigned bundle")
    .option('-o, --out <file>', 'output file (default stdout)')
    .option('--bundle-version <n>', 'bundle version; gateways refuse anything older than what they applied (default: the policy version)', positive)
    .action(async (opts: CommonOpts & { out?: string; bundleVersion?: number }) => {
      const config = configFrom(opts);
      const store = new PolicyStore(config, createLogger('error'));
      await store.load();
      const bundle = exportBundle(store, opts.bundleVersion ?? store.version, config.proxyName);
      writeOutput(JSON.stringify(bundle, null, 1) + '\n', opts.out);
      process.stderr.write(`exported policy version ${store.version} as bundle version ${bundle.version}\n`);
    });

  policy
    .command('sign')
    .description('sign a bundle with a private key (Ed25519 or RSA, PEM) for the gateways to verify')
    .requiredOption('-k, --key <file>', 'private key, PEM (e.g. `openssl genpkey -algorithm ed25519 -out academy.key`)')
    .option('-i, --in <file>', 'bundle from `vigie policy export` (default stdin)')
    .option('-o, --out <file>', 'signed bundle (default stdout)')
    .action((opts: { key: string; in?: string; out?: string }) => {
      let payload: BundlePayload;
      try {
        payload = JSON.parse(readInput(opts.in)) as BundlePayload;
      } catch (e) {
        throw new Error(`bundle: not JSON: ${(e as Error).message}`);
      }
      if (payload.format !== 'vigie-policy/1' || !Number.isSafeInteger(payload.version)) throw new Error('bundle: not an unsigned bundle from `vigie policy export`');
      const signed = signBundle(payload, readFileSync(opts.key, 'utf8'));
      writeOutput(JSON.stringify(signed) + '\n', opts.out);
      process.stderr.write(`signed bundle version ${payload.version} (${signed.alg})\n`);
    });

  withCommon(policy.command('verify'))
    .description("check a signed bundle as a gateway would: the signature against a public key, then the policy inside against this gateway's config (client networks, time windows)")
    .requiredOption('-k, --key <file>', 'public key, PEM')
    .option('-i, --in <file>', 'signed bundle (default stdin)')
    .action(async (opts: CommonOpts & { key: string; in?: string }) => {
      let p: BundlePayload;
      try {
        p = verifyBundle(JSON.parse(readInput(opts.in)), publicKeyFrom(opts.key, (f) => readFileSync(f, 'utf8')));
      } catch (e) {
        process.stderr.write(`vigie: ${e instanceof BundleError ? `${e.reason}: ` : ''}${(e as Error).message}\n`);
        process.exit(1);
      }
      // What the gateway checks next, before it applies the bundle: a good signature on a bad policy is still refused.
      const config = configFrom(opts);
      try {
        await validateDraft({ profiles: structuredClone(p.profiles), lists: Object.fromEntries(Object.entries(p.lists).map(([n, l]) => [n, { ...l, changedIn: 0 }])) }, config);
      } catch (e) {
        if (!(e instanceof PolicyValidationError)) throw e;
        process.stderr.write(`vigie: good signature, but the policy inside is invalid (a gateway would refuse bundle version ${p.version}):\n${e.problems.map((x) => `  ${x.field}: ${x.message}${x.entry ? ` (${JSON.stringify(x.entry)})` : ''}`).join('\n')}\n`);
        process.exit(1);
      }
      process.stdout.write(`good signature, valid policy: bundle version ${p.version} from ${p.origin}, ${Object.keys(p.profiles).length} profiles, ${Object.keys(p.lists).length} academy lists\n`);
    });
}
