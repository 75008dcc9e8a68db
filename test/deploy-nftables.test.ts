import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { tmp } from './helpers.js';
import { netnsUnsupported } from './netns-helpers.js';

const run = promisify(execFile);
const FILE = new URL('../deploy/nftables/vigie.nft', import.meta.url).pathname;
const text = readFileSync(FILE, 'utf8');

t.test('the ruleset touches its own table only and names what a school must edit', async (t) => {
  t.notMatch(text, /^\s*flush ruleset/m, 'never wipes the machine\'s other tables');
  t.match(text, /^table inet vigie\ndelete table inet vigie\n/m, 'a reload replaces its own table whole');
  for (const d of ['PUPILS_V4', 'PUPILS_V6', 'VIGIE_HTTP', 'VIGIE_HTTPS']) t.match(text, new RegExp(`^define ${d} = `, 'm'), `define ${d}`);
  t.match(text, /tcp dport 443 redirect to :\$VIGIE_HTTPS/);
  t.match(text, /udp dport \{ 80, 443 \} reject/, 'QUIC closed');
});

// `nft -c` checks against the kernel without committing; it runs in a throwaway network namespace
// all the same, so even a bug here could not change the machine's own ruleset.
const unsupported = await netnsUnsupported();
t.test('nft -c -f accepts deploy/nftables/vigie.nft as shipped', { skip: unsupported ?? false }, async (t) => {
  const { stdout, stderr } = await run('unshare', ['--net', 'nft', '-c', '-f', FILE]);
  t.equal(stdout + stderr, '', 'no complaint');
  const bad = join(tmp(), 'bad.nft');
  writeFileSync(bad, text.replace('redirect to :$VIGIE_HTTPS', 'redirect to :$VIGIE_HTTPZ'));
  await t.rejects(run('unshare', ['--net', 'nft', '-c', '-f', bad]), /VIGIE_HTTPZ/, 'sanity: the same check fails on a broken copy');
});
