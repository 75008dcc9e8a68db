import { open } from 'node:fs/promises';

/**
 * A file's bytes in a SharedArrayBuffer: one copy in memory that every thread of the gateway views
 * (readFile's Buffer would be per thread, and copied again to be shared).
 */
export async function readShared(file: string): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const bytes = new Uint8Array(new SharedArrayBuffer(size));
    for (let at = 0; at < size; ) {
      const { bytesRead } = await fh.read(bytes, at, size - at, at);
      if (bytesRead === 0) throw new Error(`${file}: shorter than its size (${at} of ${size} bytes)`);
      at += bytesRead;
    }
    return bytes;
  } finally {
    await fh.close();
  }
}
