import net from 'node:net';
import t from 'tap';
import { IdleSweeper } from '../src/proxy/idle.js';
import { SocketRelay } from '../src/proxy/splice.js';

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

t.test('a SocketRelay relays both ways, passes a half-close on, and unhooks both sockets once closed', async (t) => {
  const [client, a, closeA] = await pair();
  const [b, origin, closeB] = await pair();
  t.teardown(async () => {
    await closeA();
    await closeB();
  });
  let closed = 0;
  const idle = new IdleSweeper(() => 20);
  t.teardown(() => idle.stop());
  const relay = new SocketRelay(a, b);
  idle.add(relay, 5000);
  relay.relay(idle, () => closed++);
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
  t.equal(idle.size, 0, 'the tunnel is no longer watched for inactivity');
  for (const [name, s] of [['client side', a], ['origin side', b]] as const) {
    // A closed socket stays reachable until a full GC: it must not keep the tunnel's closures.
    t.same(s.eventNames(), ['error'], `${name}: only the listener that swallows a late error is left`);
    t.doesNotThrow(() => s.emit('error', new Error('late')), `${name}: a late error is ignored`);
  }
});

t.test('a quiet tunnel is closed at its idle limit, and traffic in either direction keeps it open', async (t) => {
  const [client, a, closeA] = await pair();
  const [b, origin, closeB] = await pair();
  t.teardown(async () => {
    client.destroy();
    origin.destroy();
    await closeA();
    await closeB();
  });
  const idle = new IdleSweeper(() => 10);
  t.teardown(() => idle.stop());
  const relay = new SocketRelay(a, b);
  idle.add(relay, 150);
  let closedAt = 0;
  const start = performance.now();
  const closed = new Promise<void>((r) => relay.relay(idle, () => ((closedAt = performance.now()), r())));
  // Traffic every 50 ms for 400 ms, alternately from each end: longer than the limit in all.
  origin.resume();
  client.resume();
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 50));
    t.notOk(a.destroyed || b.destroyed, `open at ${i * 50 + 50} ms while traffic flows`);
    (i % 2 ? origin : client).write('x');
  }
  const lastTraffic = performance.now();
  await closed;
  t.ok(closedAt - lastTraffic >= 150, `closed no sooner than the limit after the last byte (${(closedAt - lastTraffic).toFixed(0)} ms)`);
  t.ok(closedAt - lastTraffic < 150 + 200, 'and not much later');
  t.ok(closedAt - start > 400, 'traffic had kept it open');
  t.equal(idle.size, 0);
});

t.test('destroy() (the proxy closing) cuts both sides of a SocketRelay, and closed is told once', async (t) => {
  const [client, a, closeA] = await pair();
  const [b, origin, closeB] = await pair();
  t.teardown(async () => {
    await closeA();
    await closeB();
  });
  const idle = new IdleSweeper(() => 20);
  t.teardown(() => idle.stop());
  const relay = new SocketRelay(a, b);
  idle.add(relay, 5000);
  let closed = 0;
  const done = new Promise<void>((r) => relay.relay(idle, () => (closed++, r())));
  // Half-open sockets (as the proxy's): the far ends see the end of stream, or a reset.
  const seen = (s: net.Socket) => new Promise<void>((r) => (s.once('end', () => r()), s.once('error', () => r())));
  const ends = Promise.all([seen(client), seen(origin)]);
  client.resume();
  origin.resume();
  relay.destroy();
  await done;
  await ends;
  t.equal(closed, 1, 'closed once');
  t.ok(a.destroyed && b.destroyed, 'both sockets destroyed');
  t.equal(idle.size, 0, 'no longer watched');
  client.destroy();
  origin.destroy();
});
