/**
 * The load generators written here (they run in the benchmark's own process, pinned to the
 * load CPU): tunnel setup rate, a fixed-rate open-loop client for latency at a given load (what
 * wrk2 does: latency counted from when a request was due, so queueing is not hidden), idle
 * tunnels by the thousand, and one large download through one tunnel (curl). Everything is
 * bounded in time and count.
 */
import { execFile } from 'node:child_process';
import { cSetupRate, setupLoopBinary } from './setup-loop.js';
import net from 'node:net';
import { rawBinding, writeRaw, type RawBinding, type TcpHandle } from '../../../src/proxy/raw.js';
import { track } from './procs.js';

const EMPTY = Buffer.alloc(0);

/** Splits a byte stream into HTTP/1.1 responses framed by Content-Length (nginx and the proxies send it). */
export class ResponseReader {
  /** The next response is a CONNECT reply: headers only, the bytes after it are the tunnel's. */
  noBody = false;
  private pending: Buffer = EMPTY;
  private bodyLeft = -1;
  private status = 0;

  constructor(private readonly onResponse: (status: number) => void) {}

  feed(d: Buffer): void {
    const b = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    let off = 0;
    for (;;) {
      if (this.bodyLeft < 0) {
        const end = b.indexOf('\r\n\r\n', off, 'latin1');
        if (end < 0) break;
        const head = b.toString('latin1', off, end);
        this.status = Number(head.slice(9, 12));
        const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
        this.bodyLeft = this.noBody ? 0 : m ? Number(m[1]) : 0;
        off = end + 4;
      }
      const avail = b.length - off;
      if (avail < this.bodyLeft) {
        this.bodyLeft -= avail;
        off = b.length;
        break;
      }
      off += this.bodyLeft;
      this.bodyLeft = -1;
      this.onResponse(this.status);
    }
    this.pending = off < b.length ? b.subarray(off) : EMPTY;
  }
}

export interface Target {
  /** Where the client connects: a proxy, or the origin itself for the direct baseline. */
  port: number;
  viaProxy: boolean;
  /** How the proxy is asked for the origin (origin.test, or 127.0.0.1 for a proxy without a hosts table). */
  originHost: string;
  originPort: number;
}

const connectRequest = (t: Target) => Buffer.from(`CONNECT ${t.originHost}:${t.originPort} HTTP/1.1\r\nHost: ${t.originHost}:${t.originPort}\r\n\r\n`);
const smallGet = (t: Target) => Buffer.from(`GET /small HTTP/1.1\r\nHost: ${t.originHost}:${t.originPort}\r\n\r\n`);

export interface RateResult {
  perSecond: number;
  ok: number;
  errors: number;
}

/**
 * New TCP connection + CONNECT + one small plain-HTTP request inside the tunnel, then close,
 * in `loops` parallel loops for `seconds`. Direct: new connection + the same request.
 *
 * On Node's raw TCP handles where it can (`net.Socket` otherwise): with sockets, this client
 * needed ~108 µs of its core per set-up through Squid, nginx included, so it capped every proxy
 * at ~9k set-ups/s, below what Vigie's tunnels on raw handles can take. Still ~60 % of the load
 * core at 6k set-ups/s: setup-loop.c does the same work where a C compiler is (buildSetupLoop).
 */
export function tunnelSetupRate(t: Target, loops: number, seconds: number): Promise<RateResult> {
  // The C client (setup-loop.c) where it was built: a fraction of this one's CPU per set-up.
  const bin = setupLoopBinary();
  if (bin !== null) return cSetupRate(bin, t.port, t.viaProxy, `${t.originHost}:${t.originPort}`, loops, seconds);
  return rawBinding !== null && process.env.BENCH_SOCKET_CLIENT !== '1' ? rawSetupRate(rawBinding, t, loops, seconds) : socketSetupRate(t, loops, seconds);
}

/** One set-up loop of `rawSetupRate`: connect, (CONNECT,) GET, close, again until the deadline. */
class RawSetupLoop {
  private h: TcpHandle | null = null;
  private inTunnel = false;
  /** A fresh one per set-up (start()). */
  private reader!: ResponseReader;
  startedAt = 0;

  constructor(
    private readonly b: RawBinding,
    private readonly t: Target,
    private readonly connect: Buffer,
    private readonly get: Buffer,
    private readonly deadline: number,
    private readonly done: (good: boolean | null) => void,
  ) {}

  start(): void {
    if (performance.now() >= this.deadline) return this.done(null);
    this.startedAt = performance.now();
    this.inTunnel = !this.t.viaProxy;
    this.reader = new ResponseReader(this.onResponse);
    this.reader.noBody = !this.inTunnel;
    const h = new this.b.TCP(this.b.SOCKET);
    this.h = h;
    const req = new this.b.TCPConnectWrap();
    req.oncomplete = this.onConnect;
    if (h.connect(req, '127.0.0.1', this.t.port) !== 0) this.finish(false);
  }

  /** Gives up on a set-up that hangs (the caller's watchdog). */
  abort(): void {
    if (this.h !== null) this.finish(false);
  }

  private readonly onConnect = (status: number): void => {
    const h = this.h;
    if (h === null) return;
    if (status < 0) return this.finish(false);
    h.setNoDelay(true);
    h.onread = this.onRead;
    if (writeRaw(this.b, h, this.inTunnel ? this.get : this.connect, ignore) < 0 || h.readStart() !== 0) this.finish(false);
  };

  private readonly onRead = (ab: ArrayBuffer | undefined): void => {
    const n = this.b.state[this.b.kReadBytesOrError];
    if (n === 0 || this.h === null) return;
    if (n < 0 || ab === undefined) return this.finish(false);
    this.reader.feed(Buffer.from(ab, this.b.state[this.b.kArrayBufferOffset], n));
  };

  private readonly onResponse = (status: number): void => {
    if (this.h === null) return;
    if (!this.inTunnel) {
      if (status !== 200) return this.finish(false);
      this.inTunnel = true;
      this.reader.noBody = false;
      if (writeRaw(this.b, this.h, this.get, ignore) < 0) this.finish(false);
      return;
    }
    this.finish(status === 200);
  };

  private finish(good: boolean): void {
    const h = this.h!;
    this.h = null;
    h.onread = ignore;
    h.close();
    this.done(good);
  }
}

const ignore = (): void => {};

function rawSetupRate(b: RawBinding, t: Target, loops: number, seconds: number): Promise<RateResult> {
  const connect = connectRequest(t);
  const get = smallGet(t);
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let ok = 0;
  let errors = 0;
  let running = loops;
  return new Promise((resolve) => {
    const all: RawSetupLoop[] = [];
    // A set-up that takes more than 5 s has failed; checked twice a second, not timed one by one.
    const watchdog = setInterval(() => {
      const late = performance.now() - 5000;
      for (const l of all) if (l.startedAt < late) l.abort();
    }, 500);
    for (let i = 0; i < loops; i++) {
      const loop: RawSetupLoop = new RawSetupLoop(b, t, connect, get, deadline, (good) => {
        if (good === null) {
          if (--running === 0) {
            clearInterval(watchdog);
            resolve({ perSecond: ok / ((performance.now() - t0) / 1000), ok, errors });
          }
          return;
        }
        if (good) {
          ok++;
          loop.start();
        } else {
          errors++;
          // A refusing proxy would otherwise spin; errors are rare and counted.
          setTimeout(() => loop.start(), 10);
        }
      });
      all.push(loop);
      loop.start();
    }
  });
}

async function socketSetupRate(t: Target, loops: number, seconds: number): Promise<RateResult> {
  const connect = connectRequest(t);
  const get = smallGet(t);
  const deadline = performance.now() + seconds * 1000;
  let ok = 0;
  let errors = 0;
  const one = () =>
    new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (good: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.destroy();
        resolve(good);
      };
      const s = net.connect({ port: t.port, host: '127.0.0.1', noDelay: true });
      const timer = setTimeout(() => finish(false), 5000);
      let inTunnel = !t.viaProxy;
      const reader = new ResponseReader((status) => {
        if (!inTunnel) {
          if (status !== 200) return finish(false);
          inTunnel = true;
          reader.noBody = false;
          s.write(get);
          return;
        }
        finish(status === 200);
      });
      reader.noBody = !inTunnel;
      s.on('connect', () => s.write(inTunnel ? get : connect));
      s.on('data', (d: Buffer) => reader.feed(d));
      s.on('error', () => finish(false));
      s.on('close', () => finish(false));
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < deadline) {
        if (await one()) ok++;
        else {
          errors++;
          // A refusing proxy would otherwise spin; errors are rare and counted.
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }),
  );
  return { perSecond: ok / ((performance.now() - t0) / 1000), ok, errors };
}

/** Seconds of load before and after the measured window of `fixedRate`. */
export const LEAD_IN_S = 0.5;
export const LEAD_OUT_S = 0.3;

export interface FixedRateResult {
  rate: number;
  achieved: number;
  /** Requests due inside the window that were answered 200 (their latencies make the percentiles). */
  measured: number;
  /** Every request answered or failed, lead-in and lead-out included (for CPU per request). */
  answered: number;
  p50ms: number;
  p99ms: number;
  /**
   * p99 of the requests due during the warm-up, after the client's own first `LEAD_IN_S`: how the
   * server met the load arriving from idle. NaN when the warm-up is only that lead-in.
   */
  warmupP99ms: number;
  errors: number;
}

/**
 * Open loop at `rate` requests/s over `connections` keep-alive connections for `seconds`.
 * Requests are due on a fixed schedule; one that waits for a free connection waits on the
 * clock, so a stalled server shows as latency, not as a lower rate.
 *
 * The load runs `LEAD_IN_S` before and `LEAD_OUT_S` after the measured window, and only requests
 * due inside it count (wrk2 discards its calibration period likewise). Both edges are this
 * client's own: its first requests run unoptimised code, and the requests due in its last
 * ~150 ms came back ever later (up to 8 ms direct to nginx, 24 ms through any proxy) although
 * nothing ahead of them could know the load was about to stop; issuing on past the window makes
 * that ramp vanish from it (measured here at 15k req/s, 20 ms buckets).
 *
 * `warmupSeconds` (at least `LEAD_IN_S`) is how long the load runs before the window: wrk2 records
 * nothing during its first 10 s. Past the lead-in, the warm-up's own p99 is reported apart
 * (`warmupP99ms`), so the server's transient from idle is seen, not hidden.
 */
export async function fixedRate(t: Target, rate: number, connections: number, seconds: number, warmupSeconds = LEAD_IN_S): Promise<FixedRateResult> {
  const request = Buffer.from(
    t.viaProxy
      ? `GET http://${t.originHost}:${t.originPort}/small HTTP/1.1\r\nHost: ${t.originHost}:${t.originPort}\r\n\r\n`
      : `GET /small HTTP/1.1\r\nHost: ${t.originHost}:${t.originPort}\r\n\r\n`,
  );
  const warmFrom = Math.floor(rate * LEAD_IN_S);
  const first = Math.max(warmFrom, Math.floor(rate * warmupSeconds));
  const counted = Math.max(1, Math.floor(rate * seconds));
  const total = first + counted + Math.floor(rate * LEAD_OUT_S);
  const latencies = new Float64Array(counted);
  const warmLatencies = new Float64Array(first - warmFrom);
  let measured = 0;
  let warmMeasured = 0;
  let answered = 0;
  let windowStart = Infinity;
  let servedInWindow = 0;
  let errors = 0;
  let issued = 0;
  const due: number[] = []; // due times of requests waiting for a connection
  const idle: Conn[] = [];

  interface Conn {
    s: net.Socket;
    sentDue: number;
    /** Index of the request in flight in the schedule, -1 when idle. */
    seq: number;
  }
  let dueSeq = 0;
  const send = (c: Conn, when: number, seq: number) => {
    c.sentDue = when;
    c.seq = seq;
    c.s.write(request);
  };
  const open = () =>
    new Promise<void>((resolve) => {
      const s = net.connect({ port: t.port, host: '127.0.0.1', noDelay: true });
      const c: Conn = { s, sentDue: -1, seq: -1 };
      const reader = new ResponseReader((status) => {
        const inWindow = c.seq >= first && c.seq < first + counted;
        answered++;
        if (status !== 200) errors++;
        else if (inWindow) latencies[measured++] = performance.now() - c.sentDue;
        else if (c.seq >= warmFrom && c.seq < first) warmLatencies[warmMeasured++] = performance.now() - c.sentDue;
        if (status === 200) {
          const since = performance.now() - windowStart;
          if (since >= 0 && since < seconds * 1000) servedInWindow++;
        }
        c.sentDue = -1;
        c.seq = -1;
        const next = due.shift();
        if (next !== undefined) send(c, next, dueSeq++);
        else idle.push(c);
      });
      s.on('data', (d: Buffer) => reader.feed(d));
      s.once('connect', () => {
        idle.push(c);
        resolve();
      });
      s.on('error', () => {
        errors++;
        resolve();
      });
      s.on('close', () => {
        const i = idle.indexOf(c);
        if (i >= 0) idle.splice(i, 1);
        if (c.sentDue >= 0) {
          errors++;
          answered++;
        }
        c.sentDue = -1;
      });
    });
  await Promise.all(Array.from({ length: connections }, open));
  const conns = [...idle];
  const t0 = performance.now();
  const interval = 1000 / rate;
  windowStart = t0 + first * interval;
  await new Promise<void>((resolve) => {
    // A 1 ms tick issues whatever is due by now: the schedule, not the tick, sets the rate.
    const tick = setInterval(() => {
      const now = performance.now();
      while (issued < total && t0 + issued * interval <= now) {
        const when = t0 + issued * interval;
        issued++;
        const c = idle.pop();
        // Requests leave in schedule order (the queue is FIFO), so the sequence number follows.
        if (c) send(c, when, dueSeq++);
        else due.push(when);
      }
      if (issued >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  // Let the tail finish, bounded.
  const tailDeadline = performance.now() + 5000;
  while (answered < issued && performance.now() < tailDeadline) await new Promise((r) => setTimeout(r, 10));
  for (const c of conns) c.s.destroy();
  const lost = Math.max(0, total - answered);
  /** Sorts the first `n` latencies once; the returned function reads percentiles off them. */
  const percentiles = (a: Float64Array, n: number) => {
    const sorted = a.subarray(0, n).sort();
    return (p: number) => (n ? sorted[Math.min(n - 1, Math.floor((p / 100) * n))]! : NaN);
  };
  const windowPct = percentiles(latencies, measured);
  // Answers received during the window, over its length: a server that falls behind shows here.
  return {
    rate,
    achieved: servedInWindow / seconds,
    measured,
    answered,
    p50ms: windowPct(50),
    p99ms: windowPct(99),
    warmupP99ms: percentiles(warmLatencies, warmMeasured)(99),
    errors: errors + lost,
  };
}

export interface IdleTunnels {
  opened: number;
  failed: number;
  /** Of a sample of the open tunnels, how many still answered a request at the end. */
  aliveChecked: number;
  aliveOk: number;
  close: () => void;
}

/** Opens `count` CONNECT tunnels and keeps them idle; `inFlight` at a time, bounded by `seconds`. */
export async function openIdleTunnels(t: Target, count: number, inFlight: number, seconds: number): Promise<IdleTunnels> {
  const connect = connectRequest(t);
  const sockets: net.Socket[] = [];
  let failed = 0;
  let next = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      let settled = false;
      const s = net.connect({ port: t.port, host: '127.0.0.1', noDelay: true });
      const settle = (good: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (good) sockets.push(s);
        else {
          failed++;
          s.destroy();
        }
        resolve();
      };
      const timer = setTimeout(() => settle(false), 10_000);
      const reader = new ResponseReader((status) => settle(status === 200));
      reader.noBody = true;
      s.on('connect', () => s.write(connect));
      s.on('data', (d: Buffer) => {
        if (!settled) reader.feed(d);
      });
      s.on('error', () => settle(false));
    });
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count && performance.now() < deadline) {
        next++;
        await one();
      }
    }),
  );
  // A sample of tunnels must still carry a request: idle tunnels that were silently dropped would flatter the RSS.
  const sample = sockets.filter((_, i) => i % Math.max(1, Math.floor(sockets.length / 20)) === 0).slice(0, 20);
  const get = smallGet(t);
  const results = await Promise.all(
    sample.map(
      (s) =>
        new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 5000);
          const reader = new ResponseReader((status) => {
            clearTimeout(timer);
            resolve(status === 200);
          });
          s.on('data', (d: Buffer) => reader.feed(d));
          s.once('close', () => resolve(false));
          s.write(get);
        }),
    ),
  );
  return {
    opened: sockets.length,
    failed,
    aliveChecked: sample.length,
    aliveOk: results.filter(Boolean).length,
    close: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

export interface BulkResult {
  mibps: number;
  mib: number;
  seconds: number;
  ok: boolean;
}

/** One large HTTPS download through one CONNECT tunnel (or direct), with curl, bounded by `maxSeconds`. */
export function bulkDownload(t: Target & { tlsPort: number }, maxSeconds: number): Promise<BulkResult> {
  const url = `https://${t.originHost}:${t.tlsPort}/big`;
  const args = ['-s', '-k', '-o', '/dev/null', '--max-time', String(maxSeconds), '-w', '%{http_code} %{size_download} %{time_total} %{time_pretransfer}'];
  if (t.viaProxy) args.push('-p', '-x', `http://127.0.0.1:${t.port}`);
  // Direct: curl's own name map; the proxies resolve origin.test themselves.
  else args.push('--resolve', `${t.originHost}:${t.tlsPort}:127.0.0.1`);
  args.push(url);
  return new Promise((resolve) => {
    track(execFile('curl', args, { timeout: (maxSeconds + 10) * 1000 }, (err, stdout) => {
      const [code, size, total, pre] = stdout.trim().split(' ').map(Number);
      const seconds = (total ?? 0) - (pre ?? 0);
      const mib = (size ?? 0) / 1048576;
      // Exit 28 is --max-time: what arrived until then still gives the rate.
      const finished = !err || (err as { code?: number }).code === 28;
      resolve({ mibps: seconds > 0 ? mib / seconds : 0, mib, seconds, ok: finished && code === 200 && mib > 0 });
    }));
  });
}

/** One plain request and one tunnelled request, before any load: a proxy that refuses is named, not measured. */
export function probe(t: Target): Promise<{ http: number; tunnel: number; detail: string }> {
  const exchange = (first: Buffer, connectFirst: boolean) =>
    new Promise<{ status: number; detail: string }>((resolve) => {
      let raw = '';
      let done = false;
      const finish = (status: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.destroy();
        resolve({ status, detail: raw.slice(0, 300) });
      };
      const s = net.connect({ port: t.port, host: '127.0.0.1' });
      const timer = setTimeout(() => finish(0), 5000);
      let inTunnel = !connectFirst;
      const reader = new ResponseReader((status) => {
        if (!inTunnel) {
          if (status !== 200) return finish(-status);
          inTunnel = true;
          reader.noBody = false;
          s.write(smallGet(t));
          return;
        }
        finish(status);
      });
      reader.noBody = connectFirst;
      s.on('connect', () => s.write(first));
      s.on('data', (d: Buffer) => {
        raw += d.toString('latin1');
        reader.feed(d);
      });
      s.on('error', (e) => {
        raw += String(e);
        finish(0);
      });
      s.on('close', () => finish(0));
    });
  const plain = t.viaProxy
    ? Buffer.from(`GET http://${t.originHost}:${t.originPort}/small HTTP/1.1\r\nHost: ${t.originHost}:${t.originPort}\r\n\r\n`)
    : smallGet(t);
  return Promise.all([exchange(plain, false), t.viaProxy ? exchange(connectRequest(t), true) : exchange(smallGet(t), false)]).then(([h, c]) => ({
    http: h.status,
    tunnel: c.status,
    detail: `${h.detail} | ${c.detail}`,
  }));
}
