/**
 * The requests inside a terminated connection (`intercept: "full"`, an allowed tunnel), read and
 * forwarded by the fast path of plain HTTP (ClientConnection, src/proxy/client-connection.ts):
 * one head string in, one head string out, over the interceptor's pool of verified TLS origin
 * connections (src/proxy/upstream.ts with a TLS context). What that path leaves to node's parser
 * (chunked uploads, Expect, Upgrade/WebSocket, HTTP/1.0, odd heads) goes to the interceptor's
 * node:http server for the rest of the connection (src/proxy/intercept.ts), which applies the
 * same rule (`enterInside`).
 */
import type { Socket } from 'node:net';
import { ClientConnection } from './client-connection.js';
import { canonicalHost, type Gate, type Reply } from './gate.js';
import type { RequestHead } from './http1.js';
import type { ClientContext } from './origin-exchange.js';
import { blockPage, errorPage, page, pickLang } from './pages.js';
import { linesWith, pathWith } from './safesearch-inside.js';
import { splitAuthority } from './target.js';

/**
 * A request inside a terminated connection whose CONNECT (or ClientHello) the gate answered
 * `outer`: its Reply from the gate (mode `intercepted`, its full URL), or the answer to give at
 * once as [status, html] (a refused name's block page, a request that is not origin-form, a Host
 * other than the name the connection was decided on: no fronting of another site).
 */
export function enterInside(gate: Gate, outer: Reply, client: string, method: string, url: string, host: string | undefined, acceptLanguage: string | undefined): Reply | [number, string] {
  const lang = pickLang(acceptLanguage);
  // A refused name: its block page, whatever is asked inside (recorded once, as the tunnel's row).
  if (outer.kind === 'block') {
    const d = outer.record!.decision;
    return [403, blockPage(lang, outer.host, d, '', gate.linksFor(d, outer))];
  }
  if (url.charCodeAt(0) !== 47 /* / */) return [400, errorPage(lang, '', 'bad-request')];
  const hp = splitAuthority(host ?? '', outer.port);
  if (hp === null || canonicalHost(hp.host) !== outer.host || hp.port !== outer.port) {
    return [421, page(lang, lang === 'fr' ? 'Requête mal dirigée' : 'Misdirected request', `<p>${lang === 'fr' ? 'Cette connexion est ouverte pour un autre site.' : 'This connection is open for another site.'}</p>`)];
  }
  return gate.enter({ client, mode: 'intercepted', method, host: outer.host, port: outer.port, path: url, acceptLanguage });
}

/** One decrypted client connection of an allowed, intercepted tunnel. */
export class InterceptConnection extends ClientConnection {
  constructor(
    socket: Socket,
    ctx: ClientContext,
    /** The gate's answer to the tunnel (an allowed one). */
    private readonly outer: Reply,
  ) {
    super(socket, ctx, outer.record!.client);
  }

  /** Origin-form requests only; anything else (CONNECT inside, absolute-form) gets node's path and its 400. */
  protected override fastTarget(p: RequestHead): boolean {
    return p.target.charCodeAt(0) === 47 /* / */ && p.method !== 'CONNECT';
  }

  protected override enter(p: RequestHead): Reply | [number, string] {
    // Sent on as the client's Host (checked above to name the connection's host and port).
    this.authority = p.host ?? '';
    return enterInside(this.ctx.gate, this.outer, this.client, p.method, p.target, p.host, p.acceptLanguage);
  }

  /** SafeSearch by parameter or header where the profile's provider needs it (empty lists: none). */
  protected override forward(): void {
    const inside = this.pass!.record!.decision.retarget?.inside;
    if (inside === undefined) return super.forward();
    super.forward(pathWith(this.pass!.path, inside.query), linesWith(this.req!.forward, inside.headers));
  }
}
