/**
 * What the proxy benchmark runs against, written into a temp dir at run time: the Debian tools
 * (installed when missing), nginx as the origin, Squid, tinyproxy and the Vigie gateway. Every
 * listener is on 127.0.0.1; only origin.test is ever asked for, mapped to 127.0.0.1 by each
 * proxy's own hosts table so nothing reaches a real resolver.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ORIGIN_HOST = 'origin.test';
export const SMALL_BODY = 'x'.repeat(200);

const TOOLS: [command: string, pkg: string][] = [
  ['squid', 'squid'],
  ['tinyproxy', 'tinyproxy'],
  ['wrk', 'wrk'],
  ['nginx', 'nginx-light'],
  ['openssl', 'openssl'],
  ['curl', 'curl'],
  ['taskset', 'util-linux'],
];

const has = (cmd: string) => {
  try {
    execFileSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Installs the Debian packages whose commands are missing (apt-get update only then). */
export function ensureTools(log: (s: string) => void): void {
  const missing = [...new Set(TOOLS.filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg))];
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const apt = (args: string[]) => execFileSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  try {
    apt(['install', '-y', '-o', 'DPkg::Lock::Timeout=300', ...missing]);
  } catch {
    apt(['update']);
    apt(['install', '-y', '-o', 'DPkg::Lock::Timeout=300', ...missing]);
  }
  // Debian starts the services it installs: they would hold :3128/:8888/:80 and share the CPUs.
  for (const svc of ['squid', 'tinyproxy', 'nginx']) {
    try {
      execFileSync('/bin/sh', ['-c', `command -v systemctl >/dev/null && systemctl stop ${svc} || service ${svc} stop`], { stdio: 'ignore' });
    } catch {
      /* not running, or no init system in this container */
    }
  }
}

export interface Ports {
  plain: number;
  tls: number;
  vigie: number;
  vigieMetrics: number;
  /** The second Vigie, with `tunnels: "raw"`. */
  vigieRaw?: number;
  vigieRawMetrics?: number;
  /** The third Vigie, `workers: 2` and unpinned. */
  vigie2w?: number;
  vigie2wMetrics?: number;
  squid: number;
  tinyproxy: number;
  /** The Node floor peer (test/bench/proxy/node-floor.ts). */
  floor: number;
  /** Vigie's transparent HTTPS listener (issue 22), forwarding to `tls` by the SNI name. */
  transparentTls?: number;
  /** The origin's address this proxy is given for origin.test (ORIGIN_ADDRESSES; default 127.0.0.1). */
  originAddress?: string;
}

/**
 * The origin listens on these loopback addresses, one per proxy under test. A proxy opens one
 * origin connection per tunnel, so at thousands of set-ups a second the ports towards one
 * address:port are soon all in TIME_WAIT (28,000 in the default range, 60 s each), and connect()
 * searches ever longer for a free one: with one origin address, the setup that ran just after
 * another paid for it. Each proxy on its own address starts from a clean slate.
 */
export const ORIGIN_ADDRESSES = { direct: '127.0.0.1', vigie: '127.0.0.2', 'vigie-raw': '127.0.0.3', 'vigie-2w': '127.0.0.4', squid: '127.0.0.5' } as const;

const listenAll = (port: number, ssl: string): string =>
  [...new Set(Object.values(ORIGIN_ADDRESSES))].map((a) => `    listen ${a}:${port}${ssl} backlog=4096;`).join('\n');

/** Origin content and TLS certificate; `bigMiB` is a sparse file, so no disk is written. */
export function writeOrigin(dir: string, ports: Ports, bigMiB: number): string {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  writeFileSync(join(www, '1m'), Buffer.alloc(1 << 20, 'v'));
  const fd = openSync(join(www, 'big'), 'w');
  ftruncateSync(fd, bigMiB * 1048576);
  closeSync(fd);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${ORIGIN_HOST}`, '-addext', `subjectAltName=DNS:${ORIGIN_HOST}`,
      '-keyout', join(dir, 'origin.key'), '-out', join(dir, 'origin.crt')],
    { stdio: 'ignore' },
  );
  const locations = `
    location = /small { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location / { root ${www}; }`;
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `# Origin: one worker (it shares CPU 1 with the load generator), no access log, long idle
# timeouts so that the 10,000 idle tunnels stay open at this end too.
daemon off;
master_process on;
worker_processes 1;
user root root;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 600s;
  keepalive_requests 100000000;
  client_header_timeout 600s;
  server {
${listenAll(ports.plain, '')}${locations}
  }
  server {
${listenAll(ports.tls, ' ssl')}
    ssl_certificate ${dir}/origin.crt;
    ssl_certificate_key ${dir}/origin.key;${locations}
  }
}
`,
  );
  return conf;
}

/** The squid.conf lines every bench Squid shares: files under `d`, no cache, no access log, the bench's host file and resolver. */
export const squidCommon = (d: string): string => `pid_filename ${d}/squid.pid
cache_log ${d}/cache.log
coredump_dir ${d}
access_log none
cache_store_log none
logfile_rotate 0
cache deny all
cache_mem 8 MB
netdb_filename none
pinger_enable off
hosts_file ${d}/hosts
dns_nameservers 127.0.0.1
max_filedescriptors 65536
shutdown_lifetime 0 seconds
client_idle_pconn_timeout 10 minutes
cache_effective_user proxy
`;

export function writeSquid(dir: string, ports: Ports): string {
  const d = join(dir, 'squid');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'hosts'), `${ORIGIN_ADDRESSES.squid} ${ORIGIN_HOST}\n`);
  const conf = join(d, 'squid.conf');
  writeFileSync(
    conf,
    `# Squid as a school would run it before filtering: forwarding only, no cache, no access log.
http_port 127.0.0.1:${ports.squid}
visible_hostname bench-squid
${squidCommon(d)}acl bench src 127.0.0.0/8
acl bench_ports port ${ports.plain} ${ports.tls}
acl CONNECT method CONNECT
http_access deny CONNECT !bench_ports
http_access allow bench
http_access deny all
`,
  );
  // Squid drops to `proxy` before it writes its log and pid file.
  try {
    const uid = Number(execFileSync('id', ['-u', 'proxy'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'proxy'], { encoding: 'utf8' }).trim());
    chownSync(d, uid, gid);
  } catch {
    chmodSync(d, 0o777);
  }
  return conf;
}

export function writeTinyproxy(dir: string, ports: Ports): string {
  const d = join(dir, 'tinyproxy');
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o777);
  const conf = join(d, 'tinyproxy.conf');
  writeFileSync(
    conf,
    `User nobody
Group nogroup
Port ${ports.tinyproxy}
Listen 127.0.0.1
Timeout 600
LogFile "${d}/tinyproxy.log"
LogLevel Critical
PidFile "${d}/tinyproxy.pid"
MaxClients 1024
Allow 127.0.0.0/8
ConnectPort ${ports.plain}
ConnectPort ${ports.tls}
`,
  );
  return conf;
}

/** Keys added to the config while this harness was written: used when the schema has them. */
export interface VigieOptions {
  journal: boolean;
  workers: number | null;
  /** Absent: the config's default (socket). */
  tunnels?: 'socket' | 'raw';
}

export function vigieConfig(ports: Ports, opts: VigieOptions): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    listen: [{ host: '127.0.0.1', port: ports.vigie }],
    // Every load address plays the same classroom: the CM1–CM2 blocklist over the full lists.
    clients: [{ network: '127.0.0.0/8', profile: 'cycle3', name: 'bench' }],
    hosts: { [ORIGIN_HOST]: ports.originAddress ?? '127.0.0.1' },
    // The origins listen on loopback, which the destination policy refuses unless allowed.
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    dns: { servers: ['127.0.0.1:9'] },
    connectPorts: ports.transparentTls === undefined ? [ports.plain, ports.tls] : [ports.plain, ports.tls, ports.transparentTls],
    log: { level: 'info' },
    supervision: { enabled: false },
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: ports.vigieMetrics } },
  };
  // Clients reach it straight (no redirect here): targetPort says which origin port they meant.
  if (ports.transparentTls !== undefined) cfg.transparent = { http: [], https: [{ host: '127.0.0.1', port: ports.transparentTls, targetPort: ports.tls }] };
  if (opts.journal) cfg.journal = { enabled: true };
  if (opts.workers !== null) cfg.workers = opts.workers;
  if (opts.tunnels !== undefined) cfg.tunnels = opts.tunnels;
  return cfg;
}
