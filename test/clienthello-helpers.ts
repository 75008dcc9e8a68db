import net from 'node:net';
import tls from 'node:tls';

/** The first flight of Node's TLS client (one record), caught by a plain TCP server on loopback. */
export async function captureHello(opts: tls.ConnectionOptions = {}): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve, reject) => {
    server.once('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('error', reject);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          s.destroy();
          resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
        }
      });
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ...opts });
  client.on('error', () => {});
  try {
    return await got;
  } finally {
    client.destroy();
    server.close();
  }
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const withLen16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), withLen16(data)]);
}

export const sniExtension = (...names: (string | Buffer)[]): Buffer =>
  extension(0, withLen16(Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), withLen16(Buffer.from(n as string, 'latin1'))])))));

export const alpnExtension = (...protos: string[]): Buffer =>
  extension(16, withLen16(Buffer.concat(protos.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])))));

/** A ClientHello body (TLS 1.2 legacy fields) with the given extensions; null = no extensions block. */
export function helloBody(extensions: Buffer[] | null): Buffer {
  const fixed = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 7), // random
    Buffer.from([32]), Buffer.alloc(32, 9), // session id
    withLen16(Buffer.from([0x13, 0x01, 0xc0, 0x2f])), // two cipher suites
    Buffer.from([1, 0]), // null compression
  ]);
  return extensions === null ? fixed : Buffer.concat([fixed, withLen16(Buffer.concat(extensions))]);
}

/** Handshake header (type 1, 24-bit length) + body. */
export function handshake(body: Buffer, type = 1): Buffer {
  return Buffer.concat([Buffer.from([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
}

/** Handshake bytes cut into TLS records of at most `size` bytes each. */
export function records(hs: Buffer, size = 16384, version = 0x0301): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < hs.length; i += size) {
    const frag = hs.subarray(i, Math.min(hs.length, i + size));
    out.push(Buffer.from([22, version >> 8, version & 0xff, frag.length >> 8, frag.length & 0xff]), frag);
  }
  return Buffer.concat(out);
}

/** The handshake message of a single-record first flight. */
export const unwrap = (record: Buffer): Buffer => record.subarray(5, 5 + record.readUInt16BE(3));

/** A deterministic PRNG (mulberry32), so a failing fuzz case can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
