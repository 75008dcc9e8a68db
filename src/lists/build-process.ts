import { writeFile } from 'node:fs/promises';
import { buildUt1Bytes } from './compile.js';

/**
 * Child process entry: compiles the UT1 folder argv[2] into the file argv[3], says so, and exits,
 * giving back to the system all the memory the build took (see buildUt1InProcess).
 */
const [dir, out] = process.argv.slice(2) as [string, string];
const done = (m: unknown, code: number) => (process.send ? process.send(m, () => process.exit(code)) : process.exit(code));
try {
  const { bytes, report } = await buildUt1Bytes(dir, false);
  await writeFile(out, bytes, { mode: 0o600 });
  done({ ok: true, report }, 0);
} catch (e) {
  done({ ok: false, message: (e as Error).message }, 1);
}
