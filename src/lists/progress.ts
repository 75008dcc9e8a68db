/**
 * A one-line progress bar for a terminal: redrawn in place at most 10 times a second, and
 * nothing at all when the stream is not a TTY (logs and pipes get the final message only).
 */
export interface Progress {
  update(done: number, total: number | null): void;
  finish(message: string): void;
}

const mib = (n: number): string => (n / 1048576).toFixed(1);

export function progressBar(stream: NodeJS.WriteStream, label: string, width = 30): Progress {
  const tty = stream.isTTY === true;
  let last = 0;
  let drawn = false;
  const draw = (done: number, total: number | null) => {
    let line: string;
    if (total && total > 0) {
      const frac = Math.min(1, done / total);
      const full = Math.round(frac * width);
      line = `${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ${mib(done)}/${mib(total)} MiB`;
    } else line = `${label} ${mib(done)} MiB`;
    stream.write(`\r${line}\x1b[K`);
    drawn = true;
  };
  return {
    update(done, total) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100 && !(total && done >= total)) return;
      last = now;
      draw(done, total);
    },
    finish(message) {
      if (tty && drawn) stream.write('\r\x1b[K');
      stream.write(`${message}\n`);
    },
  };
}
