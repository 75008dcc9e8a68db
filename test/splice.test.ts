import net from 'node:net';
import t from 'tap';
import { splice } from '../src/proxy/splice.js';

/** Two connected loopback socket pairs: [outside, inside] each, as a client and an origin would be. */
async function pair(): Promise<[net.Socket, net.Socket, () => Promise<void>]> {
  let inside!: net.Socket;
  const server = net.createServer({ allowHalfOpen: true }, (s) => (inside = s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const outside = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r) => outside.once('connect', r));
  while (!inside) await new Promise((r) => setTimeout(r, 5));
  return [outside, inside, () => new Promise<void>((r) => server.close(() => r()))];
}

t.test('splice relays both ways, passes a half-close on, and unhooks both sockets once closed', async (t) => {
  const [client, a, closeA] = await pair();
  const [b, origin, closeB] = await pair();
  t.teardown(async () => {
    await closeA();
    await closeB();
  });
  let closed = 0;
  splice(a, b, 5000, () => closed++);
  let atOrigin = '';
  origin.on('data', (d: Buffer) => (atOrigin += d.toString()));
  let atClient = '';
  client.on('data', (d: Buffer) => (atClient += d.toString()));
  const clientEnded = new Promise<void>((r) => client.once('end', r));
  // The client sends and shuts its side; the origin still answers, then closes.
  client.end('ping');
  await new Promise<void>((r) => origin.once('end', r));
  t.equal(atOrigin, 'ping', 'client bytes reached the origin, then its FIN');
  origin.end('pong');
  await clientEnded;
  t.equal(atClient, 'pong', 'the answer reached the client after its half-close, then a FIN');
  await new Promise<void>((r) => (a.destroyed && b.destroyed && closed ? r() : b.once('close', () => setImmediate(r))));
  t.equal(closed, 1, 'closed once');
  for (const [name, s] of [['client side', a], ['origin side', b]] as const) {
    // A closed socket stays reachable until a full GC: it must not keep the tunnel's closures.
    t.same(s.eventNames(), ['error'], `${name}: only the listener that swallows a late error is left`);
    t.doesNotThrow(() => s.emit('error', new Error('late')), `${name}: a late error is ignored`);
  }
});
