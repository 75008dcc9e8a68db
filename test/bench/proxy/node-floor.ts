/**
 * The Node floor: the least a Node.js forward proxy can do on raw sockets, as a peer in
 * bench:proxy. No policy, no journal, no metrics, no header rewriting, no timeouts; absolute-form
 * GETs with Content-Length answers over a keep-alive pool to the one origin, and CONNECT tunnels.
 * Not a usable proxy: it only shows what the runtime itself costs per request and per tunnel, so
 * the table separates Vigie's own work from Node's (sockets, streams, GC).
 *
 *   node test/bench/proxy/node-floor.ts PORT ORIGIN_PORT      (run by bench:proxy, pinned)
 */
import net from 'node:net';

const [port, originPort] = process.argv.slice(2).map(Number);
if (!port || !originPort) throw new Error('usage: node-floor.ts PORT ORIGIN_PORT');
const CRLF2 = Buffer.from('\r\n\r\n');
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
const idle: net.Socket[] = [];

function upstream(cb: (u: net.Socket) => void): void {
  const u = idle.pop();
  if (u) return cb(u);
  const s = net.connect({ host: '127.0.0.1', port: originPort!, noDelay: true }, () => cb(s));
  s.on('error', () => s.destroy());
}

function tunnel(c: net.Socket, target: string, rest: Buffer): void {
  c.pause();
  const colon = target.lastIndexOf(':');
  const u = net.connect({ host: '127.0.0.1', port: Number(target.slice(colon + 1)), noDelay: true }, () => {
    c.write(ESTABLISHED);
    if (rest.length) u.write(rest);
    c.on('data', (d: Buffer) => u.write(d) || c.pause());
    u.on('data', (d: Buffer) => c.write(d) || u.pause());
    c.on('drain', () => u.resume());
    u.on('drain', () => c.resume());
    c.on('close', () => u.destroy());
    u.on('close', () => c.destroy());
    c.resume();
  });
  u.on('error', () => c.destroy());
}

net
  .createServer({ noDelay: true }, (c) => {
    let buf: Buffer | null = null;
    let busy = false;
    c.on('error', () => c.destroy());
    const onData = (d: Buffer) => {
      buf = buf ? Buffer.concat([buf, d]) : d;
      if (busy) return;
      const end = buf.indexOf(CRLF2);
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const rest = buf.subarray(end + 4);
      buf = rest.length ? rest : null;
      const sp1 = head.indexOf(' ');
      const sp2 = head.indexOf(' ', sp1 + 1);
      const target = head.slice(sp1 + 1, sp2);
      if (head.startsWith('CONNECT ')) {
        c.off('data', onData);
        return tunnel(c, target, rest);
      }
      const path = target.slice(target.indexOf('/', 7));
      busy = true;
      upstream((u) => {
        let rbuf: Buffer | null = null;
        let left = -1;
        const onUp = (x: Buffer) => {
          if (left < 0) {
            rbuf = rbuf ? Buffer.concat([rbuf, x]) : x;
            const e = rbuf.indexOf(CRLF2);
            if (e < 0) return;
            const m = /content-length: *(\d+)/i.exec(rbuf.toString('latin1', 0, e));
            left = Number(m?.[1] ?? 0) - (rbuf.length - e - 4);
            if (!c.write(rbuf)) u.pause();
          } else {
            left -= x.length;
            if (!c.write(x)) u.pause();
          }
          if (left === 0) {
            u.off('data', onUp);
            c.off('drain', onDrain);
            // The last chunk may have paused it: a paused connection back in the pool would never
            // read its next answer (the 1 MiB rows stalled at 0 in some runs).
            u.resume();
            idle.push(u);
            busy = false;
            if (buf) onData(Buffer.alloc(0));
          }
        };
        const onDrain = () => u.resume();
        c.on('drain', onDrain);
        u.on('data', onUp);
        u.write(`GET ${path} HTTP/1.1\r\nHost: origin\r\n\r\n`);
      });
    };
    c.on('data', onData);
  })
  .listen(port, '127.0.0.1', () => process.stdout.write(`node-floor listening on ${port}\n`));
