import dgram from 'node:dgram';
import t from 'tap';
import { HostResolver, ResolveError } from '../src/proxy/resolver.js';

/**
 * A tiny authoritative DNS server on 127.0.0.1: answers A queries from a table with a given TTL,
 * NXDOMAIN otherwise, and counts the queries it receives.
 */
async function startDns(records: Record<string, { ip: string; ttl: number }>) {
  const socket = dgram.createSocket('udp4');
  const queries: string[] = [];
  socket.on('message', (msg, rinfo) => {
    let off = 12;
    const labels: string[] = [];
    while (msg[off]! !== 0) {
      labels.push(msg.toString('latin1', off + 1, off + 1 + msg[off]!));
      off += msg[off]! + 1;
    }
    const question = msg.subarray(12, off + 5);
    const qtype = msg.readUInt16BE(off + 1);
    const name = labels.join('.').toLowerCase();
    queries.push(`${name}/${qtype}`);
    const rec = records[name];
    const answer = rec && qtype === 1;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180 | (rec ? 0 : 3), 2); // response, RD+RA, NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer ? 1 : 0, 6);
    const parts = [header, question];
    if (answer) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(rec.ttl, 6);
      rr.writeUInt16BE(4, 10);
      rec.ip.split('.').forEach((b, i) => rr.writeUInt8(Number(b), 12 + i));
      parts.push(rr);
    }
    socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { port: socket.address().port, queries, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

const config = (port: number, hosts: Record<string, string> = {}) => ({
  hosts,
  dns: { servers: [`127.0.0.1:${port}`], timeoutMs: 1000, maxTtlSeconds: 300, negativeTtlSeconds: 1 },
});

t.test('host map first, then DNS with TTLs, negative caching and one query in flight per name', async (t) => {
  const dns = await startDns({ 'short.test': { ip: '127.0.0.7', ttl: 1 }, 'long.test': { ip: '127.0.0.8', ttl: 3600 } });
  t.teardown(dns.close);
  const r = new HostResolver(config(dns.port, { 'Mapped.Test.': '127.0.0.9' }));

  t.same(await r.resolve('mapped.test'), { address: '127.0.0.9', family: 4 }, 'host map, names normalised');
  t.same(await r.resolve('127.0.0.3'), { address: '127.0.0.3', family: 4 }, 'IP literals need no lookup');
  t.equal(dns.queries.length, 0);

  const burst = await Promise.all(Array.from({ length: 20 }, () => r.resolve('long.test')));
  t.ok(burst.every((x) => x.address === '127.0.0.8'));
  t.same(dns.queries, ['long.test/1'], 'twenty concurrent requests, one query');
  await r.resolve('long.test');
  t.equal(dns.queries.length, 1, 'answer cached');

  await r.resolve('short.test');
  t.same(r.peek('short.test'), { address: '127.0.0.7', family: 4 });
  await new Promise((res) => setTimeout(res, 1100));
  t.equal(r.peek('short.test'), undefined, 'expires with its 1 s TTL');
  await r.resolve('short.test');
  t.equal(dns.queries.filter((q) => q === 'short.test/1').length, 2, 'asked again after the TTL');

  await t.rejects(r.resolve('missing.test'), { kind: 'notfound', code: 'ENOTFOUND' });
  const before = dns.queries.length;
  const err = await r.resolve('missing.test').catch((e: ResolveError) => e);
  t.match(err, { kind: 'notfound' });
  t.equal(dns.queries.length, before, 'failure cached (negative TTL)');
});

t.test('a dead DNS server is a failure, not a hang', async (t) => {
  const r = new HostResolver({ hosts: {}, dns: { servers: ['127.0.0.1:9'], timeoutMs: 300, maxTtlSeconds: 60, negativeTtlSeconds: 5 } });
  const err = await r.resolve('anything.test').catch((e: ResolveError) => e);
  t.type(err, ResolveError);
});
