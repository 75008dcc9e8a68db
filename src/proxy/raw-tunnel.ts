import { getSystemErrorName } from 'node:util';
import type { VigieConfig } from '../config/types.js';
import type { ConnectionRecord } from './events.js';
import { connectTarget, type Gate, type GateUser, type Reply } from './gate.js';
import { cleanHead, CRLF2, parseRequestHead } from './http1.js';
import type { IdleSweeper } from './idle.js';
import { pickLang, type Lang, type UpstreamProblem } from './pages.js';
import { shutdownRaw, UV_EOF, writeRaw, type PeerName, type RawBinding, type TcpHandle } from './raw.js';
import { classify, ESTABLISHED } from './target.js';
import type { TunnelRelay, TunnelRelayHost } from './tunnel-relay.js';

/** What a raw connection needs from the proxy around it. */
export interface RawContext extends TunnelRelayHost {
  readonly config: VigieConfig;
  readonly via: string;
  readonly idle: IdleSweeper;
  /** Admits, decides, records and says what to answer (src/proxy/gate.ts). */
  readonly gate: Gate;
  /**
   * Anything but a CONNECT: the connection goes on as a `net.Socket` on the ordinary paths, from
   * the bytes read so far (requests, partial or odd heads).
   */
  rawAdopt(conn: RawConnection, client: TcpHandle, first: Buffer | null): void;
  /** The gate's answer to this CONNECT is no tunnel (block, refusal, DNS error): carried out on a `net.Socket`. */
  rawAnswer(conn: RawConnection, client: TcpHandle, reply: Reply): void;
  /** An allowed tunnel that TLS interception takes (src/proxy/intercept.ts): carried out by `rawAnswer`. */
  intercepting(reply: Reply): boolean;
  /** The origin could not be reached: answered and recorded as the `net.Socket` path does. */
  rawRefuse(conn: RawConnection, client: TcpHandle, rec: ConnectionRecord, lang: Lang, problem: UpstreamProblem): void;
  /** Both handles are closed; `rec` is set when the tunnel had opened (bytes and duration filled in). */
  rawClosed(conn: RawConnection, rec: ConnectionRecord | null): void;
}

const CONNECT_ = Buffer.from('CONNECT ', 'latin1');
const EMPTY = Buffer.alloc(0);
/** A handle's `onread` must stay a function (node asserts it): what a handle we left gets. */
const ignoreRead = (): void => {};

const enum RawPhase {
  /** Accepted; waiting for the first bytes. */
  First,
  /** An allowed CONNECT whose origin is being located or connected. */
  Connecting,
  /** Bytes flow both ways. */
  Open,
  /** Handed to the `net.Socket` paths, or closing. */
  Done,
}

/** libuv's "already reading": harmless when a read is started twice. */
const UV_EALREADY = -114;

function startReading(h: TcpHandle): boolean {
  const err = h.readStart();
  return err === 0 || err === UV_EALREADY;
}


/**
 * One client connection accepted on a raw handle. If its first read is a whole CONNECT head that
 * the policy allows, to an origin that answers, it becomes a tunnel between two raw handles and
 * never meets a `net.Socket`. Everything else (plain requests, blocked sites, refusals, partial or
 * odd heads) is handed to the `net.Socket` paths before a byte is written, so there is one way to
 * answer each of those.
 *
 * As a tunnel it is the TunnelRelay of `tunnels: "raw"` (src/proxy/tunnel-relay.ts). The relay
 * keeps at most one write in flight per direction: a write the kernel could not take at once stops reading from the other side until it completes (back-pressure). End of stream on one
 * side sends FIN to the other once its writes are out; when both sides have ended, both handles
 * are closed.
 */
export class RawConnection implements TunnelRelay, GateUser {
  idleSince = 0;
  idleLimit = 0;
  private phase = RawPhase.First;
  private up: TcpHandle | null = null;
  private rec: ConnectionRecord | null = null;
  /** The gate's answer while the origin is located and connected. */
  private pass: Reply | null = null;
  private lang: Lang = 'fr';
  private first: Buffer | null = null;
  private head: Buffer = EMPTY;
  private port = 0;
  /** End of stream read from the client / the origin. */
  private clientEnded = false;
  private upEnded = false;
  /** Writes in flight towards the client / the origin. */
  private toClient = 0;
  private toUp = 0;
  private handles = 1;
  private closing = false;

  constructor(
    private readonly b: RawBinding,
    private readonly ctx: RawContext,
    private readonly client: TcpHandle,
  ) {
    client.setNoDelay(true);
    client.onread = this.onFirstRead;
    ctx.idle.add(this, ctx.config.timeouts.idleMs);
    if (!startReading(client)) this.close();
  }

  /** Still waiting for its first bytes (closed at once when the proxy shuts down). */
  get waiting(): boolean {
    return this.phase === RawPhase.First;
  }

  /** The proxy is shutting down. */
  destroy(): void {
    this.close();
  }

  onIdle(): boolean {
    if (this.phase === RawPhase.Connecting && this.up !== null) {
      this.connectFailed('connect-timeout');
      return true;
    }
    this.close();
    return true;
  }

  private readonly onFirstRead = (ab: ArrayBuffer | undefined): void => {
    const n = this.b.state[this.b.kReadBytesOrError];
    if (n === 0 || this.phase !== RawPhase.First) return;
    if (n < 0 || ab === undefined) {
      this.close();
      return;
    }
    this.client.readStop();
    const buf = Buffer.from(ab, this.b.state[this.b.kArrayBufferOffset], n);
    this.first = buf;
    if (!this.tryTunnel(buf)) this.adopt();
  };

  /** Starts a tunnel if `buf` is an allowed CONNECT; false = let the ordinary paths answer it. */
  private tryTunnel(buf: Buffer): boolean {
    if (buf.length < 16 || buf.compare(CONNECT_, 0, 8, 0, 8) !== 0) return false;
    const end = buf.indexOf(CRLF2);
    if (end === -1 || end + 4 > this.ctx.config.limits.maxHeaderBytes) return false;
    if (!cleanHead(buf, end)) return false;
    const p = parseRequestHead(buf.toString('latin1', 0, end), this.ctx.via, true);
    if (p === null || p.method !== 'CONNECT') return false;
    const peer: PeerName = {};
    if (this.client.getpeername(peer) !== 0 || peer.address === undefined) return false;
    const hp = connectTarget(p.target);
    const r = this.ctx.gate.enter({ client: peer.address, mode: 'explicit', method: 'CONNECT', host: hp === null ? '' : hp.host, port: hp === null ? 0 : hp.port, path: '', acceptLanguage: p.acceptLanguage, proxyAuthorization: p.proxyAuthorization });
    this.first = null;
    if (r.kind !== 'tunnel' || this.ctx.intercepting(r)) {
      this.answer(r);
      return true;
    }
    this.rec = r.record;
    this.pass = r;
    this.lang = pickLang(p.acceptLanguage);
    this.port = r.port;
    if (buf.length > end + 4) this.head = buf.subarray(end + 4);
    // Locating keeps the client's idle limit (the resolver has its own); connecting has its own.
    this.phase = RawPhase.Connecting;
    if (r.address === '') this.ctx.gate.resolve(r, this);
    else this.connect(r);
    return true;
  }

  /** The gate settled the name it had to resolve (the proxy may be closing by then). */
  gated(r: Reply): void {
    if (this.phase !== RawPhase.Connecting || r !== this.pass) return;
    // Decided only now when the client had to be identified first.
    this.rec = r.record;
    if (r.kind === 'tunnel' && !this.ctx.intercepting(r)) this.connect(r);
    else {
      this.rec = null;
      this.answer(r);
    }
  }

  /** The gate's answer is not a tunnel: answered where it was decided, on a `net.Socket`. */
  private answer(r: Reply): void {
    this.phase = RawPhase.Done;
    this.pass = null;
    this.ctx.idle.delete(this);
    this.client.onread = ignoreRead;
    this.ctx.rawAnswer(this, this.client, r);
  }

  private adopt(): void {
    this.phase = RawPhase.Done;
    this.ctx.idle.delete(this);
    this.client.onread = ignoreRead;
    this.ctx.rawAdopt(this, this.client, this.first);
    this.first = null;
  }

  private connect(r: Reply): void {
    const up = new this.b.TCP(this.b.SOCKET);
    const req = new this.b.TCPConnectWrap();
    req.oncomplete = this.onConnect;
    const err = r.family === 6 ? up.connect6(req, r.address, this.port) : up.connect(req, r.address, this.port);
    if (err !== 0) {
      up.close();
      this.connectFailed(classify(Object.assign(new Error('connect'), { code: getSystemErrorName(err) })));
      return;
    }
    this.up = up;
    this.handles++;
    this.idleLimit = this.ctx.config.timeouts.connectMs;
    this.idleSince = this.ctx.idle.now;
  };

  private connectFailed(problem: UpstreamProblem): void {
    const up = this.up;
    this.up = null;
    if (up !== null) {
      this.handles--;
      up.close();
    }
    this.phase = RawPhase.Done;
    this.ctx.idle.delete(this);
    this.client.onread = ignoreRead;
    const rec = this.rec!;
    this.rec = null;
    this.first = null;
    this.ctx.rawRefuse(this, this.client, rec, this.lang, problem);
  }

  private readonly onConnect = (status: number): void => {
    if (this.phase !== RawPhase.Connecting || this.up === null) return;
    if (status < 0) {
      this.connectFailed(classify(Object.assign(new Error('connect'), { code: getSystemErrorName(status) })));
      return;
    }
    const up = this.up;
    const rec = this.rec!;
    this.first = null;
    up.setNoDelay(true);
    this.phase = RawPhase.Open;
    this.idleLimit = this.ctx.config.timeouts.idleMs;
    this.idleSince = this.ctx.idle.now;
    rec.status = 200;
    this.ctx.relayOpened(this, rec);
    if (!this.send(this.client, ESTABLISHED, true)) return;
    if (this.head.length > 0) {
      rec.bytesIn += this.head.length;
      const head = this.head;
      this.head = EMPTY;
      if (!this.send(up, head, false)) return;
    }
    this.client.onread = this.onClientRead;
    up.onread = this.onUpRead;
    if (this.toUp === 0 && !startReading(this.client)) return this.close();
    if (this.toClient === 0 && !startReading(up)) this.close();
  };

  /** Writes towards the client (`toClient`) or the origin; false when the tunnel was closed. */
  private send(h: TcpHandle, data: Buffer, toClient: boolean): boolean {
    const r = writeRaw(this.b, h, data, toClient ? this.onClientWritten : this.onUpWritten);
    if (r < 0) {
      this.close();
      return false;
    }
    if (r === 1) {
      if (toClient) this.toClient++;
      else this.toUp++;
    }
    return true;
  }

  private readonly onClientRead = (ab: ArrayBuffer | undefined): void => this.relay(ab, true);
  private readonly onUpRead = (ab: ArrayBuffer | undefined): void => this.relay(ab, false);

  /** A read from the client (`fromClient`) or the origin, passed on to the other side. */
  private relay(ab: ArrayBuffer | undefined, fromClient: boolean): void {
    const n = this.b.state[this.b.kReadBytesOrError];
    const from = fromClient ? this.client : this.up!;
    const to = fromClient ? this.up! : this.client;
    if (n > 0 && ab !== undefined) {
      this.idleSince = this.ctx.idle.now;
      if (fromClient) this.rec!.bytesIn += n;
      else this.rec!.bytesOut += n;
      if (this.send(to, Buffer.from(ab, this.b.state[this.b.kArrayBufferOffset], n), !fromClient) && (fromClient ? this.toUp : this.toClient) > 0) from.readStop();
    } else if (n === UV_EOF) {
      if (fromClient) this.clientEnded = true;
      else this.upEnded = true;
      this.ended(to, fromClient ? this.upEnded : this.clientEnded);
    } else if (n < 0) this.close();
  }

  /**
   * One side sent its FIN. If the other had too, both ways are done once every write is out:
   * closing then sends our FIN after what the kernel still holds, and saves a shutdown(2). Else the
   * FIN goes on to `to` once its queued writes are out.
   */
  private ended(to: TcpHandle, toEnded: boolean): void {
    if (toEnded) this.finishIfDone();
    else if (shutdownRaw(this.b, to) !== 0) this.close();
  }

  /** Both sides have ended and every write is out: nothing is left to do. */
  private finishIfDone(): void {
    if (this.clientEnded && this.upEnded && this.toClient === 0 && this.toUp === 0) this.close();
  }

  private readonly onClientWritten = (status: number): void => this.written(status, true);
  private readonly onUpWritten = (status: number): void => this.written(status, false);

  /** A write towards the client (`toClient`) or the origin completed: the other side may read again. */
  private written(status: number, toClient: boolean): void {
    const left = toClient ? --this.toClient : --this.toUp;
    if (status < 0) return this.close();
    if (this.closing || left > 0) return;
    this.idleSince = this.ctx.idle.now;
    if (this.clientEnded && this.upEnded) return this.finishIfDone();
    const sourceEnded = toClient ? this.upEnded : this.clientEnded;
    if (!sourceEnded && this.phase === RawPhase.Open && !startReading(toClient ? this.up! : this.client)) this.close();
  }

  private readonly onHandleClosed = (): void => {
    if (--this.handles > 0) return;
    const rec = this.rec;
    this.rec = null;
    if (rec !== null) rec.durationMs = Date.now() - rec.time;
    this.ctx.rawClosed(this, rec);
  };

  /** Closes both handles (writes still in flight are cancelled); `closed` is told once. */
  private close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.phase === RawPhase.First || this.phase === RawPhase.Connecting) this.rec = null;
    this.phase = RawPhase.Done;
    this.ctx.idle.delete(this);
    this.client.onread = ignoreRead;
    this.client.close(this.onHandleClosed);
    if (this.up !== null) {
      this.up.onread = ignoreRead;
      this.up.close(this.onHandleClosed);
    }
  }
}
