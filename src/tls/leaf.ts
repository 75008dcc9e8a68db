/**
 * Leaf certificates for intercepted names, signed by the school CA (src/tls/ca.ts).
 *
 * One key pair (ECDSA P-256, made in memory at start, never written) serves every host: a
 * certificate then costs one signature, not a key generation. Each certificate names exactly
 * one host in its SAN, lives `leafHours` (short: a leaked one is soon worthless) and is made
 * again at three quarters of its life. Certificates are kept with their TLS SecureContext in a
 * bounded LRU (lru-cache, the design card's), so a host seen again costs a lookup.
 *
 * Issuing is synchronous (node:crypto signs in the calling thread), so concurrent first
 * connections for one host cannot both build: the first fills the cache before the second runs.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { SchoolCa } from './ca.js';
import { serialHex } from './ca.js';
import { buildCertificate, pemOf } from './x509.js';

export interface Leaf {
  readonly context: tls.SecureContext;
  readonly certPem: string;
  /** ms since the epoch: made again from here (three quarters of its life). */
  readonly renewAt: number;
}

export interface LeafStats {
  /** Certificates signed since start. */
  issued: number;
  /** Contexts served from the cache. */
  hits: number;
}

/** The leaf figures the metrics show: counters since start, and certificates cached now. */
export interface LeafCounts extends LeafStats {
  size: number;
}

/** Backdated so a device whose clock is a little behind still accepts a fresh certificate. */
const BACKDATE_MS = 3_600_000;

export class LeafIssuer {
  private readonly keyPem: string;
  private readonly spki: Buffer;
  private readonly cache: LRUCache<string, Leaf>;

  constructor(
    private readonly ca: SchoolCa,
    private readonly hours: number,
    cacheSize: number,
    /** Counted into (the proxy's tally outlives an issuer made again at a reload). */
    readonly stats: LeafStats = { issued: 0, hits: 0 },
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    this.spki = publicKey.export({ type: 'spki', format: 'der' });
    this.cache = new LRUCache<string, Leaf>({ max: cacheSize });
  }

  /** base64 SHA-256 of the leaf key's SubjectPublicKeyInfo (what Chromium's --ignore-certificate-errors-spki-list takes). */
  get spkiHash(): string {
    return createHash('sha256').update(this.spki).digest('base64');
  }

  /** The TLS context for `host` (a canonical name or address): cached, or issued now. */
  contextFor(host: string, now = Date.now()): tls.SecureContext {
    const cached = this.cache.get(host);
    if (cached !== undefined && cached.renewAt > now) {
      this.stats.hits++;
      return cached.context;
    }
    const leaf = this.issue(host, now);
    this.cache.set(host, leaf);
    return leaf.context;
  }

  /** Signs a certificate for `host` and builds its context (not cached: `contextFor` does that). */
  issue(host: string, now = Date.now()): Leaf {
    const { certPem, renewAt } = this.certificate(host, now);
    // The leaf alone: devices hold the school CA as a root (sending it too would add 0.3 ms of
    // OpenSSL decoding per context, measured in test/bench/intercept.bench.ts, for nothing).
    const context = tls.createSecureContext({ key: this.keyPem, cert: certPem, minVersion: 'TLSv1.2' });
    return { context, certPem, renewAt };
  }

  /** The signed certificate alone (PEM), and when to make it again. */
  certificate(host: string, now = Date.now()): { certPem: string; renewAt: number } {
    const notAfter = Math.min(now + this.hours * 3_600_000, this.ca.notAfter.getTime());
    const der = buildCertificate({
      serialHex: serialHex(),
      // The subject says only the name; browsers read the SAN.
      subject: [{ name: 'commonName', value: host.length <= 64 ? host : host.slice(0, 64) }],
      issuer: this.ca.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }] },
        { name: 'authorityKeyIdentifier', keyIdentifier: this.ca.keyId.toString('binary') },
      ],
      publicKey: this.spki,
      signer: this.ca.key,
    });
    this.stats.issued++;
    return { certPem: pemOf(der), renewAt: now + (notAfter - now) * 0.75 };
  }

  get size(): number {
    return this.cache.size;
  }
}
