import type { ProxyObserver } from './events.js';

/** Tells every observer of the data plane one event (src/proxy/events.ts). */
export type Emit = <K extends keyof ProxyObserver>(event: K, ...args: Parameters<NonNullable<ProxyObserver[K]>>) => void;

export function emitter(observers: ProxyObserver[]): Emit {
  return (event, ...args) => {
    for (const o of observers) {
      const fn = o[event] as ((...a: unknown[]) => void) | undefined;
      if (fn) fn.apply(o, args);
    }
  };
}
