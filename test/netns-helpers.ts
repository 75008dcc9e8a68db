/**
 * A small network of its own for the transparent-mode tests: a client namespace and a gateway
 * namespace joined by a veth pair, the gateway routing a made-up "internet" (an uplink where
 * everything vanishes), and nftables rules loaded inside the gateway namespace only. The machine's
 * own interfaces, routes and ruleset are never touched, and nothing leaves the machine: the only
 * addresses used are in the namespaces (RFC 2544 benchmarking and RFC 5737/3849 documentation
 * ranges). Everything made is removed at teardown, and at the next run if a test process died.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Test } from 'tap';

/** Addresses inside the test network. */
export const NET = {
  client4: '198.18.0.2',
  gateway4: '198.18.0.1',
  pupils4: '198.18.0.0/24',
  client6: 'fd5e:18::2',
  gateway6: 'fd5e:18::1',
  pupils6: 'fd5e:18::/64',
  /** Somewhere on the "internet" beyond the gateway: routed to its uplink, where it vanishes. */
  remote4: '203.0.113.10',
  remote6: '2001:db8::10',
} as const;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && code !== 0 ? err.message : '') });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

const has = (tool: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const PREFIX = 'vigie-t';

/** Namespaces left by a test process that died before its teardown (its pid is gone). */
function removeStale(): void {
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${PREFIX}(\\d+)-\\S+)`).exec(line);
    if (!m) continue;
    const pid = Number(m[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive || pid === process.pid) {
      try {
        execFileSync('ip', ['netns', 'del', m[1]!], { stdio: 'ignore' });
      } catch {
        // gone meanwhile
      }
    }
  }
}

let support: Promise<string | null> | null = null;

/**
 * Why namespace tests cannot run here, or null when they can. A missing tool fails under CI=true
 * (.ci/apt-packages installs nftables and iproute2); a machine that cannot create namespaces
 * (no CAP_SYS_ADMIN/CAP_NET_ADMIN, e.g. an unprivileged container) is a reason to skip.
 */
export function netnsUnsupported(): Promise<string | null> {
  support ??= (async () => {
    const missing = ['ip', 'nft'].filter((tool) => !has(tool));
    if (missing.length) {
      const why = `${missing.join(' and ')} not installed (Debian: iproute2, nftables)`;
      if (process.env.CI === 'true') throw new Error(`${why}: .ci/apt-packages lists them, so CI must have them`);
      return why;
    }
    removeStale();
    const probe = `${PREFIX}${process.pid}-probe`;
    const r = await run('ip', ['netns', 'add', probe]);
    if (r.code !== 0) return `this machine cannot create network namespaces: ${r.stderr.trim()}`;
    await run('ip', ['netns', 'del', probe]);
    return null;
  })();
  return support;
}

export interface NetnsPair {
  readonly client: string;
  readonly gateway: string;
  /** Runs a command inside a namespace and waits for it. */
  exec(ns: string, argv: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Starts a long-running command inside a namespace; killed (by its pid) at teardown. */
  spawn(ns: string, argv: string[]): ChildProcess;
  /** Loads an nftables ruleset in the gateway namespace. */
  nft(ruleset: string): Promise<void>;
}

let counter = 0;

/**
 * Creates the client and gateway namespaces, the veth pair between them (IPv4 and IPv6), the
 * client's default routes through the gateway and the gateway's uplink; removes them all
 * when `t` ends (and on process exit, should the teardown not run).
 */
export async function netnsPair(t: Test): Promise<NetnsPair> {
  const id = `${PREFIX}${process.pid}-${counter++}`;
  const client = `${id}-client`;
  const gateway = `${id}-gw`;
  const children = new Set<ChildProcess>();
  let removed = false;
  const removeSync = (): void => {
    if (removed) return;
    removed = true;
    for (const c of children) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
    for (const ns of [client, gateway]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // never created
      }
    }
  };
  process.once('exit', removeSync);
  t.teardown(async () => {
    process.off('exit', removeSync);
    await Promise.all([...children].map((c) => new Promise<void>((r) => {
      if (c.exitCode !== null || c.signalCode !== null) return r();
      c.once('exit', () => r());
      c.kill('SIGTERM');
    })));
    removeSync();
  });

  const ipn = (ns: string, ...args: string[]) => must('ip', ['-n', ns, ...args]);
  await must('ip', ['netns', 'add', client]);
  await must('ip', ['netns', 'add', gateway]);
  // Created inside the namespaces directly: the veth ends never appear in the machine's own.
  await must('ip', ['link', 'add', 'veth0', 'netns', client, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', gateway]);
  for (const ns of [client, gateway]) {
    await ipn(ns, 'link', 'set', 'lo', 'up');
    await ipn(ns, 'link', 'set', 'veth0', 'up');
  }
  await ipn(client, 'addr', 'add', `${NET.client4}/24`, 'dev', 'veth0');
  await ipn(gateway, 'addr', 'add', `${NET.gateway4}/24`, 'dev', 'veth0');
  await ipn(client, 'addr', 'add', `${NET.client6}/64`, 'dev', 'veth0', 'nodad');
  await ipn(gateway, 'addr', 'add', `${NET.gateway6}/64`, 'dev', 'veth0', 'nodad');
  await ipn(client, 'route', 'add', 'default', 'via', NET.gateway4);
  await ipn(client, '-6', 'route', 'add', 'default', 'via', NET.gateway6);
  // The gateway's uplink to the "internet": a veth whose other end (in the same namespace, with no
  // address) answers nothing, so what is routed there vanishes. (A dummy device would do, but its
  // module is not always there.)
  await ipn(gateway, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'void');
  await ipn(gateway, 'link', 'set', 'void', 'up');
  await ipn(gateway, 'link', 'set', 'uplink', 'up');
  await ipn(gateway, 'addr', 'add', '203.0.113.1/24', 'dev', 'uplink');
  await ipn(gateway, 'addr', 'add', '2001:db8::1/64', 'dev', 'uplink', 'nodad');
  await must('ip', ['netns', 'exec', gateway, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);

  return {
    client,
    gateway,
    exec: (ns, argv, opts) => run('ip', ['netns', 'exec', ns, ...argv], opts),
    spawn: (ns, argv) => {
      const c = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(c);
      return c;
    },
    nft: async (ruleset) => {
      await must('ip', ['netns', 'exec', gateway, 'nft', '-f', '-'], ruleset);
    },
  };
}

/**
 * The shipped ruleset (deploy/nftables/vigie.nft) with its defines set for a test network:
 * what is tested is the file a school installs, not a copy of it.
 */
export function shippedRuleset(defines: { PUPILS_V4: string; PUPILS_V6: string; VIGIE_HTTP: number; VIGIE_HTTPS: number }): string {
  let text = readFileSync(new URL('../deploy/nftables/vigie.nft', import.meta.url), 'utf8');
  for (const [name, value] of Object.entries(defines)) {
    const line = new RegExp(`^define ${name} = .*$`, 'm');
    if (!line.test(text)) throw new Error(`deploy/nftables/vigie.nft has no "define ${name}" line`);
    text = text.replace(line, `define ${name} = ${typeof value === 'number' ? value : `{ ${value} }`}`);
  }
  return text;
}

/** Resolves with the first stdout line matching `re` from a spawned process (or rejects on exit). */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms: ${buf}${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before printing ${re}: ${buf}${err}`));
    });
  });
}
