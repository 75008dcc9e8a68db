/**
 * What the interception benchmark (test/bench/intercept-proxy.bench.ts) runs against, written
 * into a temp dir: an origin CA and an nginx TLS origin for `*.origin.test` (ECDSA P-256, no TLS
 * session cache nor tickets, so every upstream connection is a full handshake), Squid with
 * `ssl_bump` (Debian's squid-openssl) and a Vigie gateway with `intercept: "full"`. Both proxies
 * sign with the same school CA (ECDSA P-256, made by `vigie ca init`): Squid's generated leaves
 * reuse the CA's key pair, Vigie's use one P-256 key per process, so both leaves are P-256.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { squidCommon } from './setup.js';

export const BUMP_ORIGIN = 'origin.test';
/** The many-new-hosts phase asks for h<i>.origin.test: every name is in both proxies' host tables. */
export const hostName = (i: number) => `h${i}.${BUMP_ORIGIN}`;
export const CERTGEN = '/usr/lib/squid/security_file_certgen';

export interface BumpPorts {
  /** Keep-alive TLS origin (phase: requests over keep-alive). */
  keep: number;
  /** The same origin closing after each response: every proxied connection needs a new upstream handshake. */
  close: number;
  squid: number;
  vigie: number;
  vigieMetrics: number;
}

const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd });

/** Origin CA and a `*.origin.test` certificate, both ECDSA P-256; returns the CA file the proxies trust. */
export function writeOriginCerts(dir: string): { caFile: string; cert: string; key: string } {
  const d = join(dir, 'origin-pki');
  mkdirSync(d, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  sh('openssl', ['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=Bench origin CA', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], d);
  sh('openssl', ['req', ...ec, '-subj', `/CN=${BUMP_ORIGIN}`, '-keyout', 'origin.key', '-out', 'origin.csr'], d);
  writeFileSync(join(d, 'ext.cnf'), `subjectAltName=DNS:${BUMP_ORIGIN},DNS:*.${BUMP_ORIGIN}\nextendedKeyUsage=serverAuth\n`);
  sh('openssl', ['x509', '-req', '-in', 'origin.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'origin.pem'], d);
  chmodSync(d, 0o755);
  for (const f of ['ca.pem', 'origin.pem']) chmodSync(join(d, f), 0o644);
  return { caFile: join(d, 'ca.pem'), cert: join(d, 'origin.pem'), key: join(d, 'origin.key') };
}

export function writeBumpOrigin(dir: string, ports: BumpPorts, certs: { cert: string; key: string }): string {
  const conf = join(dir, 'nginx-bump.conf');
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  const tls = `ssl_certificate ${certs.cert}; ssl_certificate_key ${certs.key};
    ssl_session_cache off; ssl_session_tickets off;
    location = /small { default_type text/plain; return 200 "${'x'.repeat(200)}"; }`;
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
user root root;
pid ${dir}/nginx-bump.pid;
error_log ${dir}/nginx-bump-error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  server { listen 127.0.0.1:${ports.keep} ssl backlog=4096; keepalive_timeout 600s; keepalive_requests 100000000; ${tls} }
  server { listen 127.0.0.1:${ports.close} ssl backlog=4096; keepalive_timeout 0; ${tls} }
}
`,
  );
  return conf;
}

function ownedByProxy(path: string): void {
  try {
    const uid = Number(execFileSync('id', ['-u', 'proxy'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'proxy'], { encoding: 'utf8' }).trim());
    sh('chown', ['-R', `${uid}:${gid}`, path]);
  } catch {
    chmodSync(path, 0o777);
  }
}

/**
 * Squid bumping every CONNECT (peek at step 1 for the SNI, bump at step 2), certificates made
 * by its `security_file_certgen` helpers and kept in its memory cache; origins verified against
 * the origin CA. No cache, no access log, as the plain Squid rows of bench:proxy.
 */
export function writeSquidBump(dir: string, ports: BumpPorts, caDir: string, originCa: string, hosts: number): string {
  const d = join(dir, 'squid-bump');
  mkdirSync(d, { recursive: true });
  const names = [BUMP_ORIGIN, ...Array.from({ length: hosts }, (_, i) => hostName(i))];
  writeFileSync(join(d, 'hosts'), names.map((n) => `127.0.0.1 ${n}`).join('\n') + '\n');
  copyFileSync(join(caDir, 'ca.cert.pem'), join(d, 'ca.pem'));
  copyFileSync(join(caDir, 'ca.key.pem'), join(d, 'ca.key'));
  copyFileSync(originCa, join(d, 'origin-ca.pem'));
  const db = join(d, 'ssl_db');
  sh(CERTGEN, ['-c', '-s', db, '-M', '64MB']);
  const conf = join(d, 'squid.conf');
  writeFileSync(
    conf,
    `http_port 127.0.0.1:${ports.squid} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=64MB tls-cert=${d}/ca.pem tls-key=${d}/ca.key
sslcrtd_program ${CERTGEN} -s ${db} -M 64MB
sslcrtd_children 8 startup=4 idle=2
tls_outgoing_options cafile=${d}/origin-ca.pem min-version=1.2
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
visible_hostname bench-squid-bump
${squidCommon(d)}acl bench src 127.0.0.0/8
acl bench_ports port ${ports.keep} ${ports.close}
acl CONNECT method CONNECT
http_access deny CONNECT !bench_ports
http_access allow bench
http_access deny all
`,
  );
  ownedByProxy(d);
  chmodSync(join(d, 'ca.key'), 0o600);
  return conf;
}

/** The Vigie config: the `college` profile of the defaults with `intercept: "full"`, the same host table. */
export function vigieBumpConfig(ports: BumpPorts, caDir: string, originCa: string, hosts: number, college: unknown, workers: number): Record<string, unknown> {
  const table: Record<string, string> = { [BUMP_ORIGIN]: '127.0.0.1' };
  for (let i = 0; i < hosts; i++) table[hostName(i)] = '127.0.0.1';
  return {
    // One proxy process as Squid's one worker (bench:proxy's VIGIE_WORKERS default): no relay to a primary.
    workers,
    listen: [{ host: '127.0.0.1', port: ports.vigie }],
    clients: [{ network: '127.0.0.0/8', profile: 'college', name: 'bench' }],
    profiles: { college: { ...(college as object), intercept: 'full' } },
    interception: { ca: caDir, extraRoots: [originCa] },
    hosts: table,
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    dns: { servers: ['127.0.0.1:9'] },
    connectPorts: [ports.keep, ports.close],
    log: { level: 'info' },
    supervision: { enabled: false },
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: ports.vigieMetrics } },
  };
}
