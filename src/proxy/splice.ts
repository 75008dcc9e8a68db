import type { Socket } from 'node:net';

/**
 * Joins two sockets both ways, with back-pressure and half-close, and calls `closed` once when
 * both are gone. Lighter than two `pipe()`s (a tunnel is set up thousands of times a second, and
 * each pipe adds seven listeners); one idle timer, on `b`, sees the traffic of both directions.
 */
export function splice(a: Socket, b: Socket, idleMs: number, closed: () => void): void {
  let open = 2;
  const gone = () => {
    if (--open === 0) closed();
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
