// Bundles the console (admin/src/, Preact + htm) into admin/console.js with esbuild (already here
// through tsx): one file, no CDN at run time, nothing inline, so the page's CSP needs no 'unsafe-inline'.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'admin/src/main.js')],
  outfile: join(root, 'admin/console.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  legalComments: 'none',
  logLevel: 'warning',
});
