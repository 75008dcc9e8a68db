import type { Socket } from 'node:net';

const ignore = (): void => {};

/** Drops every listener of a closed socket; a late 'error' still finds one and is ignored. */
function unhook(s: Socket): void {
  s.removeAllListeners();
  s.on('error', ignore);
}

/**
 * Joins two sockets both ways, with back-pressure and half-close, and calls `closed` once when
 * both are gone. Lighter than two `pipe()`s (a tunnel is set up thousands of times a second, and
 * each pipe adds seven listeners); one idle timer, on `b`, sees the traffic of both directions.
 */
export function splice(a: Socket, b: Socket, idleMs: number, closed: () => void): void {
  let open = 2;
  const gone = () => {
    if (--open > 0) return;
    // A closed socket outlives its close: its native handle (a modified API object) stays a root
    // for the young-generation GC until a full GC, and keeps the socket reachable. With our
    // listeners on it, the tunnel's closures, its record and the other socket came along and were
    // promoted with it: 6 MB per scavenge at 4,000 setups/s, twice the Node floor's.
    unhook(a);
    unhook(b);
    closed();
  };
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (d: Buffer) => {
      if (!to.write(d)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => {
      // Once `to` has sent its FIN too, both ways are done: closing it sends our FIN after what the
      // kernel still holds, and saves the shutdown(2), its two epoll changes and a loop turn.
      if (to.readableEnded && to.writableLength === 0) to.destroy();
      else to.end();
    });
    from.on('close', () => {
      to.destroy();
      gone();
    });
  };
  forward(a, b);
  forward(b, a);
  b.setTimeout(idleMs, () => {
    a.destroy();
    b.destroy();
  });
}
