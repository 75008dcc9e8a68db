import os from 'node:os';
import { canonicalIp } from './address.js';

/**
 * The sockets this process listens on (proxy, metrics, API, and any listener added later): the
 * proxy never connects a client to one of them, whatever the configuration allows. Each listener
 * adds itself once bound (the real port, also when the config said 0) and removes itself when it
 * closes, so an ephemeral port freed and taken again by someone else is not refused.
 */
export class OwnListeners {
  /** Port → how many listeners answer on each (canonical) address of it; '*' = every local address. */
  private readonly ports = new Map<number, Map<string, number>>();

  /** Records a bound listener; returns the function that forgets it. */
  add(host: string, port: number): () => void {
    const key = canonicalIp(host) || host;
    let m = this.ports.get(port);
    if (!m) this.ports.set(port, (m = new Map()));
    const wildcard = key === '0.0.0.0' || key === '::';
    const k = wildcard ? '*' : key;
    m.set(k, (m.get(k) ?? 0) + 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const n = (m.get(k) ?? 1) - 1;
      if (n > 0) m.set(k, n);
      else m.delete(k);
      if (m.size === 0 && this.ports.get(port) === m) this.ports.delete(port);
    };
  }

  /** Whether connecting to `address` (canonical) on `port` would reach one of this process's listeners. */
  has(address: string, port: number): boolean {
    const m = this.ports.get(port);
    if (m === undefined) return false;
    return m.has(address) || (m.has('*') && isLocalAddress(address));
  }
}

/**
 * Whether `address` (canonical) reaches this machine: loopback, unspecified (which the kernel
 * sends to loopback), or an address of one of its interfaces.
 */
export function isLocalAddress(address: string): boolean {
  if (address.startsWith('127.') || address === '::1' || address === '0.0.0.0' || address === '::') return true;
  for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) if (canonicalIp(i.address) === address) return true;
  return false;
}

/** This process's listeners: the gate consults it, every listener adds itself to it. */
export const ownListeners = new OwnListeners();
