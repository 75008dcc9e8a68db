/**
 * X.509 certificates written with node-forge's ASN.1 and signed with node:crypto.
 *
 * Why not `cert.sign()`: node-forge signs in JavaScript (19.6 ms per RSA-2048 certificate measured
 * for issue #24) and only with RSA keys; node:crypto signs natively (0.36 ms RSA-2048, less with
 * ECDSA P-256, which both the school CA and the leaf key use). node-forge still writes the
 * structure (names, extensions), which it does well; the key is given as its SubjectPublicKeyInfo
 * DER, so any key type node:crypto makes fits.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type Forge from 'node-forge';

// node-forge (~4 MiB of heap once loaded) is loaded at the first certificate: the proxy imports
// this module for interception, which most gateways and proxy threads never turn on.
let forge: typeof Forge;
let asn1: typeof Forge.asn1;
let pki: typeof Forge.pki;
let U: Forge.asn1.Class;
function loadForge(): void {
  if (forge) return;
  forge = createRequire(import.meta.url)('node-forge') as typeof Forge;
  ({ asn1, pki } = forge);
  U = asn1.Class.UNIVERSAL;
}

/** ecdsa-with-SHA256 and sha256WithRSAEncryption (RFC 5758, RFC 4055). */
const SIG_OID = { ec: '1.2.840.10045.4.3.2', rsa: '1.2.840.113549.1.1.11' } as const;

export interface CertificateSpec {
  /** Hex, positive (the first byte below 0x80). */
  serialHex: string;
  subject: Forge.pki.CertificateField[];
  /** Fields, or the issuer certificate's own subject as it is encoded (so the names match byte for byte). */
  issuer: Forge.pki.CertificateField[] | Forge.asn1.Asn1;
  notBefore: Date;
  notAfter: Date;
  /** node-forge extension objects (`basicConstraints`, `subjectAltName`, ...). */
  extensions: object[];
  /** The certified key's SubjectPublicKeyInfo, DER. */
  publicKey: Buffer;
  /** The issuer's private key (the subject's own for a self-signed certificate). */
  signer: KeyObject;
}

/** The key identifier of RFC 5280 §4.2.1.2 (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  loadForge();
  const spki = asn1.fromDer(forge.util.createBuffer(spkiDer.toString('binary')));
  const bits = (spki.value as Forge.asn1.Asn1[])[1]!.value as string;
  // The BIT STRING's first byte counts unused bits.
  return createHash('sha1').update(Buffer.from(bits.slice(1), 'binary')).digest();
}

const time = (d: Date): Forge.asn1.Asn1 =>
  d.getUTCFullYear() < 2050 ? asn1.create(U, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d)) : asn1.create(U, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));

/** Names in UTF8String (RFC 5280 §4.1.2.4), which forge would write as PrintableString, invalid for "École"; countries stay PrintableString. */
const utf8 = (f: Forge.pki.CertificateField): Forge.pki.CertificateField => (f.name === 'countryName' ? f : { ...f, valueTagClass: asn1.Type.UTF8 as unknown as Forge.asn1.Class });

/** The subject of a certificate (DER) as forge's ASN.1, untouched. */
export function subjectOf(der: Buffer): Forge.asn1.Asn1 {
  loadForge();
  const cert = asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
  const tbs = (cert.value as Forge.asn1.Asn1[])[0]!.value as Forge.asn1.Asn1[];
  // version [0] is present in a v3 certificate: serial, signature, issuer, validity, subject.
  return tbs[tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 5 : 4]!;
}

type ForgeCertificate = Forge.pki.Certificate & { generateSubjectKeyIdentifier(): Forge.util.ByteStringBuffer };
type ForgePkiInternals = {
  distinguishedNameToAsn1(dn: unknown): Forge.asn1.Asn1;
  certificateExtensionsToAsn1(exts: unknown[]): Forge.asn1.Asn1;
};

/** A public key's parsed form and identifier, kept while its Buffer lives (the leaf key is the same for every host). */
const parsedKeys = new WeakMap<Buffer, { spki: Forge.asn1.Asn1; ski: string }>();
function parsedKey(der: Buffer): { spki: Forge.asn1.Asn1; ski: string } {
  let k = parsedKeys.get(der);
  if (k === undefined) parsedKeys.set(der, (k = { spki: asn1.fromDer(forge.util.createBuffer(der.toString('binary'))), ski: keyIdentifier(der).toString('binary') }));
  return k;
}

/** A DER length octets (X.690 §8.1.3). */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** The certificate, DER. */
export function buildCertificate(spec: CertificateSpec): Buffer {
  loadForge();
  const holder = pki.createCertificate() as ForgeCertificate;
  const key = parsedKey(spec.publicKey);
  // forge derives the subject key identifier from an RSA key object it does not have here.
  holder.generateSubjectKeyIdentifier = () => forge.util.createBuffer(key.ski);
  holder.setSubject(spec.subject.map(utf8));
  const issuer = Array.isArray(spec.issuer) ? null : spec.issuer;
  if (issuer === null) holder.setIssuer((spec.issuer as Forge.pki.CertificateField[]).map(utf8));
  holder.setExtensions(spec.extensions as Forge.pki.CertificateField[]);
  const algorithm = asn1.create(U, asn1.Type.SEQUENCE, true, [asn1.create(U, asn1.Type.OID, false, asn1.oidToDer(spec.signer.asymmetricKeyType === 'ec' ? SIG_OID.ec : SIG_OID.rsa).getBytes())]);
  // RSA's AlgorithmIdentifier carries NULL parameters; ECDSA's none (RFC 5758 §3.2).
  if (spec.signer.asymmetricKeyType !== 'ec') (algorithm.value as Forge.asn1.Asn1[]).push(asn1.create(U, asn1.Type.NULL, false, ''));
  const tbs = asn1.create(U, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes())]),
    asn1.create(U, asn1.Type.INTEGER, false, forge.util.hexToBytes(spec.serialHex)),
    algorithm,
    issuer ?? (pki as unknown as ForgePkiInternals).distinguishedNameToAsn1(holder.issuer),
    asn1.create(U, asn1.Type.SEQUENCE, true, [time(spec.notBefore), time(spec.notAfter)]),
    (pki as unknown as ForgePkiInternals).distinguishedNameToAsn1(holder.subject),
    key.spki,
    (pki as unknown as ForgePkiInternals).certificateExtensionsToAsn1(holder.extensions),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, spec.signer);
  // Certificate ::= SEQUENCE { tbs, algorithm, BIT STRING signature }, put together from the DER
  // already made rather than encoding the TBS a second time.
  const algorithmDer = Buffer.from(asn1.toDer(algorithm).getBytes(), 'binary');
  const bits = Buffer.concat([Buffer.from([0x03]), derLength(signature.length + 1), Buffer.from([0]), signature]);
  const body = Buffer.concat([tbsDer, algorithmDer, bits]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

export const pemOf = (der: Buffer, label = 'CERTIFICATE'): string => `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
