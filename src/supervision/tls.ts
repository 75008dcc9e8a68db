import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { selfSignedCertificate, type KeyAndCert } from '../tls/selfsigned.js';

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** The names a generated certificate covers: the configured ones and the listen address. */
export function certificateNames(config: VigieConfig): string[] {
  const s = config.supervision;
  const names = [...s.names];
  if (!WILDCARD.has(s.listen.host)) names.push(s.listen.host);
  return [...new Set(names)];
}

/**
 * The API's key and certificate: the configured PEM files, or a self-signed pair generated once
 * under `<dataDir>/supervision/` (regenerated only when the configured names change).
 */
export async function loadOrCreateCertificate(config: VigieConfig, log: Logger): Promise<KeyAndCert & { generated: boolean; file: string }> {
  const s = config.supervision;
  if (s.cert || s.key) {
    if (!s.cert || !s.key) throw new Error('supervision: set both "cert" and "key", or neither (a self-signed pair is then generated)');
    return { cert: await readFile(s.cert, 'utf8'), key: await readFile(s.key, 'utf8'), generated: false, file: s.cert };
  }
  const dir = join(config.dataDir, 'supervision');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const namesFile = join(dir, 'names.json');
  const names = certificateNames(config);
  try {
    const [cert, key, stored] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8'), readFile(namesFile, 'utf8')]);
    if (JSON.stringify(JSON.parse(stored)) === JSON.stringify(names)) return { cert, key, generated: false, file: certFile };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
  }
  const pair = selfSignedCertificate(names);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyFile, pair.key, { mode: 0o600 });
  await writeFile(certFile, pair.cert, { mode: 0o644 });
  await writeFile(namesFile, JSON.stringify(names) + '\n');
  log.info('supervision: self-signed certificate generated (give cert.pem to API clients as their CA)', { file: certFile, names: names.join(',') });
  return { ...pair, generated: true, file: certFile };
}
