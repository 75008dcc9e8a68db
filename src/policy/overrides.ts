import ipaddr from 'ipaddr.js';
import { parseNetwork, type Addr } from '../net/address.js';
import type { CategoryIndex } from '../lists/types.js';
import type { PolicySnapshot } from './snapshot.js';
import type { Decision, DecisionRule } from './types.js';

/** A teacher's temporary unblock of a host (and its subdomains) for one client network. */
export interface Override {
  readonly id: string;
  /** Normalised host name (no www. stripping: `example.org` also covers `www.example.org`). */
  readonly host: string;
  /** The class's network, as given (CIDR). */
  readonly network: string;
  readonly reason: string;
  /** Who asked for it: `name (token id)`. */
  readonly createdBy: string;
  /** ms since the epoch. */
  readonly created: number;
  readonly expires: number;
}

/**
 * The blocks an override may lift: what the lists and the profile say. Never the guards that come
 * before or after them (client network, ports, host syntax, destination policy), nor a policy that
 * is not loaded (fail closed: nothing is known of the host).
 */
const LIFTABLE: ReadonlySet<DecisionRule> = new Set<DecisionRule>(['category', 'list-deny', 'profile-deny', 'allowlist-only']);

interface Compiled {
  readonly o: Override;
  readonly range: Addr;
  readonly bits: number;
  readonly kind: 'ipv4' | 'ipv6';
}

/**
 * The overrides in force, by host, immutable: a change builds another table, swapped whole like a
 * policy snapshot. Looked up only for a blocked request, and then only when it is not empty.
 */
export class OverrideTable {
  private readonly byHost = new Map<string, Compiled[]>();
  readonly size: number;

  constructor(readonly list: readonly Override[]) {
    for (const o of list) {
      const [range, bits] = parseNetwork(o.network);
      const c: Compiled = { o, range, bits, kind: range.kind() };
      const at = this.byHost.get(o.host);
      if (at) at.push(c);
      else this.byHost.set(o.host, [c]);
    }
    this.size = list.length;
  }

  static readonly EMPTY = new OverrideTable([]);

  /** The override opening `host` (or a parent domain of it) for `client` at `time`, if any. */
  find(client: string, host: string, time: number): Override | null {
    if (this.size === 0) return null;
    let addr: Addr | null = null;
    for (let at = host; ; ) {
      const list = this.byHost.get(at);
      if (list) {
        if (addr === null) {
          try {
            addr = ipaddr.process(client);
          } catch {
            return null;
          }
        }
        for (const c of list) if (c.o.expires > time && addr.kind() === c.kind && addr.match(c.range, c.bits)) return c.o;
      }
      const dot = at.indexOf('.');
      if (dot < 0) return null;
      at = at.slice(dot + 1);
    }
  }
}

/** Does `rule` name a block an override may lift? */
export const liftable = (d: Decision): boolean => d.action === 'block' && LIFTABLE.has(d.rule);

/**
 * The categories no override opens, compiled against a snapshot's indexes (UT1 and academy lists).
 * `hit` looks at the host, its parents, its url entries and expressions: a host blocked for
 * another reason (a profile's deny entry) but also listed as adult stays closed.
 */
export class OverrideGuard {
  private readonly filters: { index: CategoryIndex; want: Uint8Array; expressions: boolean }[] = [];

  constructor(
    readonly snapshot: PolicySnapshot,
    readonly names: readonly string[],
  ) {
    const set = new Set(names);
    for (const index of [snapshot.indexes.ut1, snapshot.indexes.local]) {
      const want = new Uint8Array(index.categories.length);
      let any = false;
      index.categories.forEach((c, i) => {
        if (!set.has(c)) return;
        want[i] = 1;
        any = true;
      });
      if (any) this.filters.push({ index, want, expressions: index.hasExpressions(want) });
    }
  }

  /** The non-overridable category that lists this host (and path), or null. */
  hit(host: string, path: string): string | null {
    for (const f of this.filters) {
      let h = f.index.matchHostAndUrl(host, path, f.want);
      if (!h && f.expressions) h = f.index.matchExpression(host + path, f.want);
      if (h) return f.index.categories[h.category]!;
    }
    return null;
  }
}

/** A blocked decision opened by an override: the blocking category is kept (what was lifted), the rule says why. */
export const overridden = (d: Decision, o: Override): Decision => Object.freeze({ ...d, action: 'allow' as const, rule: 'override' as const, entry: o.host, matchKind: 'domain' as const });
