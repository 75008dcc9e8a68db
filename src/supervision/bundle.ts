import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { ProfileConfig } from '../config/types.js';
import type { PolicyStore } from '../policy/store.js';

export const BUNDLE_FORMAT = 'vigie-policy/1';
export const SIGNED_FORMAT = 'vigie-signed-policy/1';

/** A policy as the academy distributes it: profiles and academy lists, with a growing version. */
export interface BundlePayload {
  format: typeof BUNDLE_FORMAT;
  version: number;
  created: string;
  origin: string;
  profiles: Record<string, ProfileConfig>;
  lists: Record<string, { domains: string[]; urls: string[]; expressions: string[] }>;
}

/**
 * The signed form: the payload's exact bytes (base64) and a signature over them, so no JSON
 * canonicalisation is needed to verify.
 */
export interface SignedBundle {
  format: typeof SIGNED_FORMAT;
  alg: 'ed25519' | 'rsa-sha256';
  payload: string;
  signature: string;
}

export class BundleError extends Error {
  constructor(
    readonly reason: 'format' | 'signature' | 'invalid' | 'stale',
    message: string,
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

/** The store's current policy as a bundle payload. */
export function exportBundle(store: PolicyStore, version = store.version, origin = 'vigie'): BundlePayload {
  const s = store.current;
  return {
    format: BUNDLE_FORMAT,
    version,
    created: new Date().toISOString(),
    origin,
    profiles: structuredClone(s.profiles),
    lists: Object.fromEntries(Object.entries(s.lists).map(([n, l]) => [n, { domains: [...l.domains], urls: [...l.urls], expressions: [...l.expressions] }])),
  };
}

function algOf(key: KeyObject): SignedBundle['alg'] {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'rsa') return 'rsa-sha256';
  throw new BundleError('format', `unsupported key type ${key.asymmetricKeyType ?? '?'} (use Ed25519 or RSA)`);
}

export function signBundle(payload: BundlePayload, privateKeyPem: string): SignedBundle {
  const key = createPrivateKey(privateKeyPem);
  const alg = algOf(key);
  const bytes = Buffer.from(JSON.stringify(payload));
  const signature = sign(alg === 'ed25519' ? null : 'sha256', bytes, key);
  return { format: SIGNED_FORMAT, alg, payload: bytes.toString('base64'), signature: signature.toString('base64') };
}

export function publicKeyFrom(pemOrPath: string, read: (file: string) => string): KeyObject {
  const pem = pemOrPath.includes('-----BEGIN') ? pemOrPath : read(pemOrPath);
  return createPublicKey(pem);
}

/** Checks the signature with `publicKey`, then the payload's shape; throws BundleError. */
export function verifyBundle(doc: unknown, publicKey: KeyObject): BundlePayload {
  const b = doc as Partial<SignedBundle> | null;
  if (!b || typeof b !== 'object' || b.format !== SIGNED_FORMAT || typeof b.payload !== 'string' || typeof b.signature !== 'string') {
    throw new BundleError('format', `not a signed bundle (expected {"format": "${SIGNED_FORMAT}", "alg", "payload", "signature"})`);
  }
  const alg = algOf(publicKey);
  if (b.alg !== alg) throw new BundleError('signature', `bundle signed with ${String(b.alg)}, the configured key is ${alg}`);
  const bytes = Buffer.from(b.payload, 'base64');
  if (!verify(alg === 'ed25519' ? null : 'sha256', bytes, publicKey, Buffer.from(b.signature, 'base64'))) {
    throw new BundleError('signature', 'bad signature: the bundle was not signed by the configured key, or was altered');
  }
  let payload: BundlePayload;
  try {
    payload = JSON.parse(bytes.toString('utf8')) as BundlePayload;
  } catch (e) {
    throw new BundleError('invalid', `signed payload is not JSON: ${(e as Error).message}`);
  }
  if (!payload || payload.format !== BUNDLE_FORMAT) throw new BundleError('invalid', `payload format must be "${BUNDLE_FORMAT}"`);
  if (!Number.isSafeInteger(payload.version) || payload.version < 1) throw new BundleError('invalid', 'payload version must be a positive integer');
  if (!payload.profiles || typeof payload.profiles !== 'object' || !payload.lists || typeof payload.lists !== 'object') throw new BundleError('invalid', 'payload needs "profiles" and "lists" objects');
  return payload;
}
