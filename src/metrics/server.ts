import type { Server } from 'node:http';
import { http } from '../net/http.js';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ListenAddress } from '../config/types.js';
import { ownListeners } from '../net/own-listeners.js';

export interface MetricsServer {
  readonly server: Server;
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * `/metrics` on its own listener: scrapes never share the proxy's port, so pupils cannot read
 * them and a slow scrape never queues behind proxied traffic.
 */
export async function startMetricsServer(registry: Registry, listen: ListenAddress): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      const status = path === '/metrics' ? 405 : 404;
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(status === 404 ? 'Vigie metrics: GET /metrics\n' : 'GET only\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: Error) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`cannot collect metrics: ${e.message}\n`);
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  // The proxy never takes a client here, whatever its destination policy allows.
  const forget = ownListeners.add(a.address, a.port);
  return {
    server,
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        forget();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
