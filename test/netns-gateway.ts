/**
 * A whole school gateway inside the gateway namespace of test/netns-helpers.ts: the real Vigie
 * Gateway with test lists, plus the "internet" it reaches, all on the namespace's own loopback
 * (so on the standard ports 80 and 443, which are free there): `site.test` and `blocked.test`
 * (HTTP and TLS origins on 127.0.0.1) and a SafeSearch stand-in for `forcesafesearch.google.com`
 * on 127.0.0.2. Run by the namespace tests: `node --import tsx test/netns-gateway.ts <spec.json>`;
 * prints `ready <json>` once everything listens, stops on SIGTERM.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { silentLogger } from '../src/log.js';
import { selfSignedCertificate } from '../src/tls/selfsigned.js';
import { tmp, writeLists } from './helpers.js';

export interface NetnsGatewaySpec {
  /** Config keys merged over the test's own (listen, transparent, clients, ...). */
  config: Record<string, unknown>;
}

/** The origins' names, all in one certificate (what curl in the client namespace trusts). */
export const NETNS_NAMES = ['site.test', 'blocked.test', 'www.google.fr', 'forcesafesearch.google.com'];

const listen = (server: http.Server, host: string, port: number) => new Promise<void>((r) => server.listen(port, host, r));

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as NetnsGatewaySpec;
  const dir = tmp('vigie-netns-');
  const pem = selfSignedCertificate(NETNS_NAMES);
  writeFileSync(join(dir, 'ca.pem'), pem.cert);
  const answer = (who: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${who} ${req.headers.host} ${req.url}\n`);
  };
  const servers = [
    http.createServer(answer('origin-http')),
    https.createServer(pem, answer('origin-tls')),
    https.createServer(pem, answer('safesearch-tls')),
  ];
  await listen(servers[0]!, '127.0.0.1', 80);
  await listen(servers[1]!, '127.0.0.1', 443);
  await listen(servers[2]!, '127.0.0.2', 443);
  const config = resolveConfig({
    dns: { servers: ['127.0.0.1:9'], timeoutMs: 500 },
    dataDir: join(dir, 'data'),
    hosts: { 'site.test': '127.0.0.1', 'blocked.test': '127.0.0.1', 'www.google.fr': '127.0.0.1', 'forcesafesearch.google.com': '127.0.0.2' },
    metrics: { enabled: false },
    supervision: { enabled: false },
    workers: 1,
    // The origins are on this namespace's loopback, which the destination policy refuses unless opened.
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    ...spec.config,
    lists: { ut1: writeLists(join(dir, 'ut1'), { adult: { domains: ['blocked.test'] } }), academy: writeLists(join(dir, 'academy'), { 'academy-allow': {}, 'academy-deny': {} }) },
  });
  const gateway = new Gateway({ config, log: silentLogger });
  await gateway.start();
  process.stdout.write(`ready ${JSON.stringify({ ca: join(dir, 'ca.pem'), listening: gateway.listening })}\n`);
  process.on('SIGTERM', () => {
    void gateway.stop().finally(() => process.exit(0));
  });
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
