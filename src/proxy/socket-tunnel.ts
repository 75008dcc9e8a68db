import { http } from '../net/http.js';
import net, { type Socket } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { ConnectionRecord } from './events.js';
import { ALERT, tlsAlert } from './clienthello.js';
import { connectTarget, refusalHeaders, type Gate, type Reply } from './gate.js';
import type { IdleSweeper } from './idle.js';
import type { Emit } from './observe.js';
import { pickLang, problemText, type Lang, type UpstreamProblem } from './pages.js';
import { SocketRelay } from './splice.js';
import { classify, ESTABLISHED, statusFor } from './target.js';
import type { TunnelRelayHost } from './tunnel-relay.js';

/** How a tunnel's entry answers when it opens none: an HTTP status (CONNECT), or a TLS alert (transparent). */
export type TunnelStyle = 'http' | 'tls';

/** What the tunnels need from the proxy around them. */
export interface TunnelContext extends TunnelRelayHost {
  readonly config: VigieConfig;
  readonly via: string;
  readonly gate: Gate;
  readonly idle: IdleSweeper;
  readonly emit: Emit;
  /** TLS interception (src/proxy/intercept.ts): true when it takes the client and answers it itself. */
  intercept(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): boolean;
}

function destroySelf(this: Socket): void {
  this.destroy();
}

/**
 * CONNECT tunnels (and transparent TLS ones) whose client is a `net.Socket`: through the gate, then
 * opened to the origin and relayed (SocketRelay, src/proxy/splice.ts), or answered in the entry's
 * own terms.
 */
export class SocketTunnels {
  constructor(private readonly ctx: TunnelContext) {}

  /** A CONNECT request on a `net.Socket` (from either path): through the gate, then opened or answered. */
  tunnel(client: Socket, target: string, acceptLanguage: string | undefined, head: Buffer, clientAddr = client.remoteAddress ?? '', proxyAuthorization?: string): void {
    client.on('error', destroySelf);
    const hp = connectTarget(target);
    const r = this.ctx.gate.enter({ client: clientAddr, mode: 'explicit', method: 'CONNECT', host: hp === null ? '' : hp.host, port: hp === null ? 0 : hp.port, path: '', acceptLanguage, proxyAuthorization });
    this.gatedTunnel(client, head, r, 'http');
  }

  /**
   * Carries out a gate's answer to a tunnel: opened (then `head` goes first), or answered in the
   * entry's own terms: an HTTP status for a CONNECT, a TLS alert for a transparent ClientHello.
   */
  gatedTunnel(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): void {
    if (r.kind !== 'tunnel') return this.answerTunnel(client, r, style, head);
    if (r.address !== '') return this.openTunnel(client, head, r, style);
    this.ctx.gate.resolve(r, { gated: () => (r.kind === 'tunnel' ? this.openTunnel(client, head, r, style) : this.answerTunnel(client, r, style, head)) });
  }

  /** Carries out a gate's answer to a CONNECT that opens no tunnel: recorded (when decided), then answered. */
  answerTunnel(client: Socket, r: Reply, style: TunnelStyle, head: Buffer): void {
    // A block on a profile with interception: the block page over TLS (the ClientHello is `head`).
    if (r.kind === 'block' && this.ctx.intercept(client, head, r, style)) return;
    const rec = r.record;
    if (r.problem !== null) this.ctx.emit('upstreamError', r.problem);
    if (rec !== null) {
      rec.status = r.status;
      this.ctx.emit('tunnelOpened', rec);
    }
    if (style === 'tls') this.endTls(client, r.kind === 'block' ? ALERT.accessDenied : ALERT.internalError);
    else this.endTunnel(client, r.status, r.body, refusalHeaders(r));
  }

  /** A tunnel that cannot be opened: recorded with its cause, and the client told why. */
  refuseTunnel(client: Socket, rec: ConnectionRecord, lang: Lang, problem: UpstreamProblem, style: TunnelStyle): void {
    rec.problem = problem;
    rec.status = statusFor(problem);
    this.ctx.emit('upstreamError', problem);
    this.ctx.emit('tunnelOpened', rec);
    if (style === 'tls') this.endTls(client, ALERT.internalError);
    else this.endTunnel(client, rec.status, problemText(lang, problem) + '\n');
  }

  private openTunnel(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): void {
    if (client.destroyed || this.ctx.intercept(client, head, r, style)) return;
    const { timeouts } = this.ctx.config;
    const rec = r.record!;
    const lang = pickLang(r.acceptLanguage);
    const upstream = net.connect({ host: r.address, port: r.port, family: r.family, noDelay: true });
    let opened = false;
    // Nothing the client sends goes anywhere before the tunnel is open.
    client.pause();
    // One watch for the tunnel's life: the connect limit first, then the idle limit.
    const relay = new SocketRelay(client, upstream);
    this.ctx.idle.add(relay, timeouts.connectMs);
    // 'connect' and 'close' come once each: plain listeners, no once() wrappers to build and search.
    upstream.on('connect', () => {
      relay.idleLimit = timeouts.idleMs;
      relay.idleSince = this.ctx.idle.now;
      opened = true;
      rec.status = 200;
      this.ctx.relayOpened(relay, rec);
      upstream.off('close', beforeOpen);
      client.off('close', beforeOpen);
      // A transparent connection was never asked anything: its ClientHello is `head`.
      if (style === 'http') client.write(ESTABLISHED);
      if (head.length) upstream.write(head);
      relay.relay(this.ctx.idle, () => {
        rec.durationMs = Date.now() - rec.time;
        rec.bytesIn = upstream.bytesWritten;
        rec.bytesOut = upstream.bytesRead;
        this.ctx.relayClosed(relay, rec);
      });
      client.resume();
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!opened && !rec.status) this.refuseTunnel(client, rec, lang, classify(err), style);
      else client.destroy();
    });
    // Until the tunnel opens, either side closing ends the attempt.
    const beforeOpen = () => {
      this.ctx.idle.delete(relay);
      // An error answer (rec.status set) is on its way: endTunnel closes the client after it.
      if (!rec.status) client.destroy();
      upstream.destroy();
    };
    upstream.on('close', beforeOpen);
    client.on('close', beforeOpen);
  }

  /** Ends a transparent TLS connection with a fatal alert: no page can be shown inside TLS. */
  private endTls(client: Socket, alert: number): void {
    if (client.destroyed) return;
    client.resume();
    client.end(tlsAlert(alert));
  }

  private endTunnel(client: Socket, status: number, text: string, extraHeaders = ''): void {
    if (client.destroyed) return;
    // Read (and drop) what the client still sends, so its close is seen and the socket freed.
    client.resume();
    const body = Buffer.from(text);
    client.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\nVia: ${this.ctx.via}\r\n${extraHeaders}\r\n${text}`);
  }
}
