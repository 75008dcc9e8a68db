import type { WireEnd, WireRow } from '../src/journal/row.js';
import { JournalShipper } from '../src/journal/ship.js';
import { silentLogger } from '../src/log.js';

const HOSTS = ['www.example.org', 'example.org', 'cdn.example.org', 'notexample.org', 'kids.test', 'games.test'];

/** Rows `first`..`first + n - 1` at `time` + i seconds: every 3rd a tunnel (figures come with its end), every 4th blocked. */
export function shipRows(first: number, n: number, time: number, clients = ['10.1.0.1', '10.1.0.2', 'fd00::7']): WireRow[] {
  return Array.from({ length: n }, (_, i): WireRow => {
    const id = first + i;
    const connect = id % 3 === 0;
    const block = id % 4 === 0;
    return [id, time + i * 1000, clients[id % clients.length]!, id % 5 === 0 ? 'eleve.dupont' : null, id % 7 === 0 ? null : 'college', connect ? 'CONNECT' : 'GET', connect ? 'connect' : 'http', HOSTS[id % HOSTS.length]!, connect ? 443 : 80, connect ? null : `/p/${id}`, block ? 403 : 200, connect ? 0 : id * 10, connect ? 0 : id * 100, connect ? 0 : id % 1000, block ? 'block' : 'allow', block ? 'games' : null, block ? 'category' : 'default', 3];
  });
}

/** Ends of the tunnels among `rows`. */
export const tunnelEnds = (rows: WireRow[]): WireEnd[] => rows.filter((r) => r[6] === 'connect').map((r) => [r[0], r[1], 111, 2222, 3333]);

export function shipper(file: string, url: string, gatewayId: string, extra: Partial<ConstructorParameters<typeof JournalShipper>[0]> = {}): JournalShipper {
  return new JournalShipper({ file, url, gatewayId, batchRows: 50, pollMs: 50, retryMs: 100, nice: null, log: silentLogger, ...extra });
}
