import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { ALERT, ClientHelloAssembler, readClientHello, tlsAlert, type HelloOutcome, type HelloStep } from '../src/proxy/clienthello.js';
import { alpnExtension, captureHello, extension, handshake, helloBody, prng, records, sniExtension, unwrap } from './clienthello-helpers.js';

const parse = (bytes: Buffer, max?: number): HelloStep => new ClientHelloAssembler(max).push(bytes);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test("Node's own ClientHellos: SNI, ALPN, TLS 1.3 and 1.2, and none without a name", async (t) => {
  const h13 = await captureHello({ servername: 'secure.test', ALPNProtocols: ['h2', 'http/1.1'] });
  t.match(parse(h13), { status: 'hello', hello: { sni: 'secure.test', alpn: ['h2', 'http/1.1'], ech: false, version: 0x0303 } });
  const h12 = await captureHello({ servername: 'Old.Example.test', maxVersion: 'TLSv1.2' });
  t.match(parse(h12), { status: 'hello', hello: { sni: 'Old.Example.test', alpn: [] } }, 'case kept: normalising is the gate\'s job');
  // Node sends no server_name when connecting to an address without a servername.
  const bare = await captureHello({});
  t.match(parse(bare), { status: 'hello', hello: { sni: null } });
});

t.test('any segmentation of a real ClientHello gives the same answer, and only at its last byte', async (t) => {
  const hello = await captureHello({ servername: 'split.test', ALPNProtocols: ['http/1.1'] });
  for (let cut = 1; cut < hello.length; cut++) {
    const a = new ClientHelloAssembler();
    const first = a.push(Buffer.from(hello.subarray(0, cut)));
    if (first.status !== 'more') t.fail(`cut at ${cut}: ${first.status}`);
    const second = a.push(Buffer.from(hello.subarray(cut)));
    if (second.status !== 'hello' || second.hello.sni !== 'split.test') t.fail(`cut at ${cut}: ${JSON.stringify(second)}`);
    if (!a.bytes.equals(hello)) t.fail(`cut at ${cut}: bytes differ`);
  }
  const a = new ClientHelloAssembler();
  for (let i = 0; i < hello.length - 1; i++) if (a.push(hello.subarray(i, i + 1)).status !== 'more') t.fail(`byte ${i}`);
  t.match(a.push(hello.subarray(hello.length - 1)), { status: 'hello', hello: { sni: 'split.test' } }, 'byte by byte');
  t.ok(a.bytes.equals(hello), 'every byte kept for the relay');
});

t.test('a ClientHello split over several TLS records (as DPI-evasion tools do)', async (t) => {
  const hs = unwrap(await captureHello({ servername: 'records.test' }));
  for (const size of [1, 2, 3, 4, 5, 7, 64, 100, 511]) {
    const framed = records(hs, size);
    t.match(parse(framed), { status: 'hello', hello: { sni: 'records.test' } }, `records of ${size} bytes`);
    const a = new ClientHelloAssembler();
    for (let i = 0; i < framed.length; i += 13) a.push(framed.subarray(i, i + 13));
    t.match(a.push(Buffer.alloc(0)), { status: 'hello' }, `records of ${size} bytes, 13-byte segments`);
  }
  // A handshake bigger than a record must span two: a 20 KiB padding extension.
  const big = handshake(helloBody([sniExtension('big.test'), extension(21, Buffer.alloc(20_000))]));
  t.match(parse(records(big), 32 * 1024), { status: 'hello', hello: { sni: 'big.test' } });
  t.match(parse(records(big)), { status: 'invalid', reason: 'too-large' }, 'over the default 16 KiB bound');
  t.match(parse(records(big).subarray(0, 100)), { status: 'invalid', reason: 'too-large' }, 'known too large from its header alone');
});

t.test('built ClientHellos: extensions, ECH, and every malformation named', async (t) => {
  const ok = (exts: Buffer[] | null) => records(handshake(helloBody(exts)));
  t.match(parse(ok(null)), { status: 'hello', hello: { sni: null, alpn: [] } }, 'no extensions block at all');
  t.match(parse(ok([extension(0xfe0d, Buffer.alloc(40, 1)), sniExtension('public.example.test')])), { status: 'hello', hello: { sni: 'public.example.test', ech: true } });
  t.match(parse(ok([sniExtension('10.0.0.1')])), { status: 'hello', hello: { sni: '10.0.0.1' } }, 'an address is returned: the gate refuses it');
  t.match(parse(ok([alpnExtension('h2'), sniExtension('a.test')])), { status: 'hello', hello: { sni: 'a.test', alpn: ['h2'] } });

  const bad: [string, Buffer, string][] = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\n'), 'not-tls'],
    ['an SSLv2-style hello', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01]), 'not-tls'],
    ['record version 4.x', Buffer.from([22, 4, 1, 0, 5]), 'not-tls'],
    ['record version 3.9', Buffer.from([22, 3, 9, 0, 5]), 'not-tls'],
    ['an empty record', Buffer.from([22, 3, 1, 0, 0]), 'malformed'],
    ['a record over 2^14', Buffer.from([22, 3, 1, 0x40, 0x01]), 'malformed'],
    ['a ServerHello', records(handshake(helloBody(null), 2)), 'malformed'],
    ['bytes after the ClientHello in its record', records(Buffer.concat([handshake(helloBody(null)), Buffer.from([1, 2, 3])])), 'malformed'],
    ['an alert after a first fragment', Buffer.concat([records(handshake(helloBody(null)), 4).subarray(0, 9), Buffer.from([21, 3, 3, 0, 2, 2, 40])]), 'malformed'],
    ['two server_name extensions', ok([sniExtension('a.test'), sniExtension('b.test')]), 'malformed'],
    ['two host names in one', ok([sniExtension('a.test', 'b.test')]), 'malformed'],
    ['a name with a space', ok([sniExtension('a .test')]), 'malformed'],
    ['a name with a NUL byte', ok([sniExtension('evil.test\u0000.allowed.test')]), 'malformed'],
    ['a name with a high byte', ok([sniExtension(Buffer.from([0x61, 0xe9, 0x2e, 0x74]))]), 'malformed'],
    ['an empty name', ok([sniExtension('')]), 'malformed'],
    ['an empty server_name list', ok([extension(0, Buffer.from([0, 0]))]), 'malformed'],
    ['an empty server_name extension', ok([extension(0, Buffer.alloc(0))]), 'malformed'],
    ['an empty ALPN list', ok([extension(16, Buffer.from([0, 0]))]), 'malformed'],
    ['an empty ALPN name', ok([extension(16, Buffer.from([0, 1, 0]))]), 'malformed'],
    ['two ALPN extensions', ok([alpnExtension('h2'), alpnExtension('h2')]), 'malformed'],
    ['an extension longer than the block', ok([Buffer.from([0, 21, 0, 200, 0])]), 'malformed'],
    ['a session id over 32 bytes', records(handshake(Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([33]), Buffer.alloc(40)]))), 'malformed'],
    ['an odd cipher-suite length', records(handshake(Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0, 0, 3, 1, 2, 3, 1, 0])]))), 'malformed'],
    ['no compression method', records(handshake(Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0, 0, 2, 0x13, 1, 0])]))), 'malformed'],
    ['a body too short', records(handshake(Buffer.alloc(20))), 'malformed'],
  ];
  for (const [what, bytes, reason] of bad) t.match(parse(bytes), { status: 'invalid', reason }, what);
  t.match(parse(Buffer.from('G')), { status: 'invalid', reason: 'not-tls' }, 'plain HTTP is refused from its first byte');
});

t.test('fuzz: mutated real ClientHellos and random bytes never throw, and cuts only ask for more', async (t) => {
  const seeds = [
    await captureHello({ servername: 'fuzz.test', ALPNProtocols: ['h2', 'http/1.1'] }),
    await captureHello({ servername: 'fuzz12.test', maxVersion: 'TLSv1.2' }),
    records(unwrap(await captureHello({ servername: 'frag.test' })), 37),
  ];
  const rnd = prng(22);
  const int = (n: number) => Math.floor(rnd() * n);
  let hellos = 0;
  let invalids = 0;
  for (let round = 0; round < 6000; round++) {
    const seed = seeds[round % seeds.length]!;
    const b = Buffer.from(seed);
    const kind = round % 4;
    if (kind === 0) for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = int(256);
    else if (kind === 1) b.writeUInt16BE(int(65536), int(b.length - 1));
    let input: Buffer = b;
    if (kind === 2) input = Buffer.from(Array.from({ length: int(600) }, () => int(256)));
    if (kind === 3) input = Buffer.concat([b.subarray(0, int(b.length)), Buffer.from(Array.from({ length: int(40) }, () => int(256))), b.subarray(int(b.length))]);
    const a = new ClientHelloAssembler(4096);
    let step: HelloStep = { status: 'more' };
    try {
      for (let i = 0; i < input.length && step.status === 'more'; ) {
        const n = 1 + int(300);
        step = a.push(input.subarray(i, i + n));
        i += n;
      }
    } catch (e) {
      t.fail(`round ${round} threw ${(e as Error).message} on ${input.toString('hex')}`);
      break;
    }
    if (step.status === 'hello') {
      hellos++;
      if (step.hello.sni !== null && !/^[\x21-\x7e]+$/.test(step.hello.sni)) t.fail(`round ${round}: unprintable SNI`);
    } else if (step.status === 'invalid') invalids++;
  }
  t.ok(hellos > 100 && invalids > 1000, `both outcomes reached (${hellos} hellos, ${invalids} refusals)`);
  for (const seed of seeds) {
    for (let cut = 0; cut < seed.length; cut++) {
      const step = parse(seed.subarray(0, cut));
      if (step.status !== 'more') t.fail(`a cut at ${cut} gave ${step.status}`);
    }
  }
});

/** A loopback server handing each accepted socket to `readClientHello`. */
async function helloServer(t: Test, timeoutMs = 2000, maxBytes?: number) {
  const outcomes: { outcome: HelloOutcome; socket: net.Socket }[] = [];
  const accepted: net.Socket[] = [];
  let wake: () => void = () => {};
  const server = net.createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    void readClientHello(socket, { timeoutMs, maxBytes }).then((outcome) => {
      outcomes.push({ outcome, socket });
      wake();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of accepted) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    next: async () => {
      while (outcomes.length === 0) await new Promise<void>((r) => (wake = r));
      return outcomes.shift()!;
    },
  };
}

const rawClient = async (t: Test, port: number): Promise<net.Socket> => {
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
  t.teardown(() => s.destroy());
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
};

t.test('on real sockets: a TLS client is read, then refused with an access_denied alert it reports', async (t) => {
  const srv = await helloServer(t);
  const client = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'denied.test' });
  t.teardown(() => client.destroy());
  const failed = new Promise<Error>((r) => client.once('error', r));
  const { outcome, socket } = await srv.next();
  t.match(outcome, { status: 'hello', hello: { sni: 'denied.test' } });
  socket.end(tlsAlert(ALERT.accessDenied));
  const err = (await failed) as Error & { code?: string };
  t.equal(err.code, 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', `the client names the alert (${err.message})`);
});

t.test('on real sockets: segments apart, hello plus what follows, over the bound, silence, a trickle, a cut', async (t) => {
  const srv = await helloServer(t, 300, 4096);
  const hello = await captureHello({ servername: 'segments.test' });

  const c1 = await rawClient(t, srv.port);
  for (const [from, to] of [[0, 3], [3, 60], [60, hello.length]] as const) {
    c1.write(hello.subarray(from, to));
    await sleep(30);
  }
  const r1 = await srv.next();
  t.match(r1.outcome, { status: 'hello', hello: { sni: 'segments.test' } }, 'three TCP segments 30 ms apart');
  t.ok(r1.outcome.bytes.equals(hello), 'bytes are exactly what the client sent');

  // What follows the ClientHello stays: in `bytes` if it came with it, in the paused socket otherwise.
  const c2 = await rawClient(t, srv.port);
  c2.write(Buffer.concat([hello, Buffer.from('EARLY')]));
  const r2 = await srv.next();
  t.equal(r2.outcome.bytes.subarray(hello.length).toString(), 'EARLY');
  t.ok(r2.socket.isPaused(), 'left paused');
  c2.write('LATER');
  await sleep(30);
  const later = new Promise<string>((r) => r2.socket.once('data', (d: Buffer) => r(d.toString())));
  r2.socket.resume();
  t.equal(await later, 'LATER', 'nothing lost before the caller resumes');

  const c3 = await rawClient(t, srv.port);
  c3.write(records(handshake(helloBody([sniExtension('big.test'), extension(21, Buffer.alloc(6000))])), 1000));
  t.match((await srv.next()).outcome, { status: 'invalid', reason: 'too-large' }, 'over a 4 KiB bound');

  await rawClient(t, srv.port);
  t.match((await srv.next()).outcome, { status: 'timeout', bytes: Buffer.alloc(0) }, 'a client that sends nothing');

  const c5 = await rawClient(t, srv.port);
  let sent = 0;
  const trickle = setInterval(() => c5.write(hello.subarray(sent, ++sent)), 40);
  const r5 = await srv.next();
  clearInterval(trickle);
  t.equal(r5.outcome.status, 'timeout', 'a trickle does not push the deadline back');

  const c6 = await rawClient(t, srv.port);
  c6.end(hello.subarray(0, 40));
  t.match((await srv.next()).outcome, { status: 'closed' }, 'a client that closes mid-hello');
});
