/**
 * The origin side of an intercepted connection: TLS connections verified at least as a
 * browser would. Node's bundled CA store, the system's where the runtime offers it
 * (tls.getCACertificates, Node 22.15+/23.8+), and `interception.extraRoots`; the name checked
 * (node's checkServerIdentity against the name the client asked for); TLS 1.2 at least; HTTP/1.1.
 * Nothing here can turn verification off: a bad certificate is an error page, never a pass.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { VigieConfig } from '../config/types.js';

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

/**
 * The one TLS context of every origin connection (the pool's and upgrades'). The roots go in one
 * SecureContext made here, not as each connection's `ca` option: given `ca`, node parses the ~150
 * roots into a new context for every upstream connection (3 ms of CPU; bench:intercept-proxy's profile).
 * Certificate errors are classified by src/proxy/target.ts (`classify`: 'certificate').
 */
export function originContext(roots: string[]): tls.SecureContext {
  return tls.createSecureContext({ ca: roots, minVersion: 'TLSv1.2' });
}
