/**
 * The school's own certificate authority, for optional TLS interception (docs/interception.md).
 * `vigie ca init` makes it under `<dataDir>/ca/`: the private key (0600, never leaves the
 * gateway), and the certificate as PEM and DER for deployment by GPO or MDM. The gateway signs its
 * short-lived leaf certificates with it (src/tls/leaf.ts).
 *
 * Key: ECDSA P-256 (ANSSI RGS B1 and DAT-NT-19 accept it; every browser and OS the schools use
 * trusts it in a root), chosen over RSA because each new host's leaf is signed on the proxy's path.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type forge from 'node-forge';
import { buildCertificate, keyIdentifier, pemOf, subjectOf } from './x509.js';

export const CA_FILES = { key: 'ca.key.pem', cert: 'ca.cert.pem', der: 'ca.cert.der' } as const;

/** Ten years: a root is deployed once to every device; renew it (and redeploy) before then. */
const CA_DAYS = 3650;

export interface CaPaths {
  dir: string;
  key: string;
  cert: string;
  der: string;
}

export const caPaths = (dir: string): CaPaths => ({ dir, key: join(dir, CA_FILES.key), cert: join(dir, CA_FILES.cert), der: join(dir, CA_FILES.der) });

export class CaError extends Error {}

/** A random positive serial of 16 bytes (RFC 5280 §4.1.2.2: at most 20, unpredictable per CA/B BR). */
export const serialHex = (): string => {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
};

/** Creates the CA; refuses to overwrite an existing one (devices trust it: replacing it is a redeployment). */
export function initCa(dir: string, name: string, now = new Date()): CaPaths {
  const p = caPaths(dir);
  if (existsSync(p.key) || existsSync(p.cert)) throw new CaError(`a CA already exists in ${dir} (remove ${CA_FILES.key} and ${CA_FILES.cert} first to make a new one, then redeploy it)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const subject = [
    { name: 'commonName', value: name },
    { name: 'organizationName', value: name },
    { shortName: 'OU', value: 'Vigie interception CA' },
    { name: 'countryName', value: 'FR' },
  ];
  const der = buildCertificate({
    serialHex: serialHex(),
    subject,
    issuer: subject,
    notBefore: new Date(now.getTime() - 3_600_000),
    notAfter: new Date(now.getTime() + CA_DAYS * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ],
    publicKey: spki,
    signer: privateKey,
  });
  // The key first, created 0600: never readable by others, not even for a moment.
  writeFileSync(p.key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  chmodSync(p.key, 0o600);
  writeFileSync(p.cert, pemOf(der), { mode: 0o644 });
  writeFileSync(p.der, der, { mode: 0o644 });
  return p;
}

/** The CA as the gateway uses it. */
export interface SchoolCa {
  readonly cert: X509Certificate;
  readonly certPem: string;
  readonly key: KeyObject;
  /** Its subject as encoded in it, for the leaves' issuer (the names must match byte for byte). */
  readonly subject: forge.asn1.Asn1;
  readonly keyId: Buffer;
  readonly notAfter: Date;
}

/** Reads `<dir>/ca.*`; a clear error when missing, unreadable, mismatched or expired. */
export function loadCa(dir: string, now = Date.now()): SchoolCa {
  const p = caPaths(dir);
  if (!existsSync(p.key) || !existsSync(p.cert)) throw new CaError(`no school CA in ${dir}: run \`vigie ca init --data <dataDir>\` (see docs/interception.md)`);
  if (process.platform !== 'win32' && (statSync(p.key).mode & 0o077) !== 0) throw new CaError(`${p.key} is readable by others: chmod 600 it (the CA key signs certificates every device trusts)`);
  const certPem = readFileSync(p.cert, 'utf8');
  const cert = new X509Certificate(certPem);
  const key = createPrivateKey(readFileSync(p.key));
  if (!cert.checkPrivateKey(key)) throw new CaError(`${p.key} does not match ${p.cert}`);
  if (!cert.ca) throw new CaError(`${p.cert} is not a CA certificate`);
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now) throw new CaError(`the school CA expired on ${notAfter.toISOString()}: make a new one and redeploy it`);
  const subject = subjectOf(cert.raw);
  return { cert, certPem, key, subject, keyId: keyIdentifier(cert.publicKey.export({ type: 'spki', format: 'der' })), notAfter };
}

/** What `vigie ca show` prints. */
export function describeCa(dir: string): string {
  const p = caPaths(dir);
  const ca = loadCa(dir);
  const der = ca.cert.raw;
  const spki = createHash('sha256').update(ca.cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  return [
    `subject:        ${ca.cert.subject.replace(/\n/g, ', ')}`,
    `SHA-256:        ${createHash('sha256').update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:')}`,
    `SHA-1:          ${createHash('sha1').update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:')}`,
    `SPKI SHA-256:   ${spki}`,
    `valid from:     ${new Date(ca.cert.validFrom).toISOString()}`,
    `expires:        ${ca.notAfter.toISOString()}`,
    `certificate:    ${p.cert}`,
    `                ${p.der}`,
    `private key:    ${p.key}`,
    '',
  ].join('\n');
}
