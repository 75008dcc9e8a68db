/**
 * The origin side of an intercepted connection: a new TLS connection verified at least as a
 * browser would. Node's bundled CA store, the system's where the runtime offers it
 * (tls.getCACertificates, Node 22.15+/23.8+), and `interception.extraRoots`; the name checked
 * (node's checkServerIdentity against the name the client asked for); TLS 1.2 at least; HTTP/1.1.
 * Nothing here can turn verification off: a bad certificate is an error page, never a pass.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import type { VigieConfig } from '../config/types.js';
import type { UpstreamProblem } from './pages.js';
import { classify } from './target.js';

/** The errors node's TLS client gives for a certificate it does not accept (OpenSSL's verify codes and the name check). */
const CERTIFICATE_ERRORS = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

/** What went wrong with the origin, in the journal's and the pages' terms. */
export function upstreamProblem(err: NodeJS.ErrnoException): UpstreamProblem {
  if (err.code === 'ERESPONSETIMEOUT') return 'response-timeout';
  if (err.code !== undefined && CERTIFICATE_ERRORS.has(err.code)) return 'certificate';
  return classify(err);
}

/** The roots origins are checked against; a missing or unreadable extra root is a start error. */
export function trustedRoots(config: VigieConfig): string[] {
  const roots = [...tls.rootCertificates];
  const system = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  if (system !== undefined) {
    try {
      roots.push(...system('system'));
    } catch {
      // The runtime has the call but no system store here: the bundled one stays.
    }
  }
  for (const file of config.interception.extraRoots) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`interception.extraRoots: cannot read ${file}: ${(e as Error).message}`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`interception.extraRoots: ${file} holds no PEM certificate`);
    roots.push(pem);
  }
  return roots;
}

/** The one TLS context of every origin connection (the agent's and upgrades'). */
export function originContext(roots: string[]): tls.SecureContext {
  return tls.createSecureContext({ ca: roots, minVersion: 'TLSv1.2' });
}

/**
 * A keep-alive agent to origins with the checks above (its sockets are reused per address, port
 * and name). The roots go in one SecureContext made here, not as the `ca` option: given `ca`,
 * node parses the ~150 roots into a new context for every upstream connection (3 ms of CPU) and
 * the agent concatenates them into each request's pool key (bench:intercept-proxy's profile).
 */
export function originAgent(config: VigieConfig, secureContext = originContext(trustedRoots(config))): https.Agent {
  return new https.Agent({
    secureContext,
    keepAlive: true,
    maxSockets: config.limits.maxSocketsPerOrigin,
    maxFreeSockets: config.limits.maxSocketsPerOrigin,
    scheduling: 'lifo',
    timeout: config.timeouts.idleMs,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
    rejectUnauthorized: true,
  });
}
