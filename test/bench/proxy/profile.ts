/** Top frames by self time of a V8 .cpuprofile (what `node --cpu-prof` writes at exit). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface Frame {
  /** "main" or "worker N": node writes one profile per thread (CPU.date.pid.THREAD.seq). */
  thread: string;
  frame: string;
  /** Share of the thread's busy samples (idle excluded). */
  selfPercent: number;
}

/** The `count` busiest frames of each thread's profile, busiest thread first. */
export function topFrames(dir: string, count = 15): Frame[] {
  const out: { busy: number; frames: Frame[] }[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const tid = Number(file.split('.')[4]);
    out.push(framesOf(join(dir, file), tid === 0 ? 'main' : `worker ${tid}`, count));
  }
  return out.sort((a, b) => b.busy - a.busy).flatMap((x) => x.frames);
}

function framesOf(file: string, thread: string, count: number): { busy: number; frames: Frame[] } {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of prof.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits || n.callFrame.functionName === '(idle)') continue;
    total += hits;
    const { functionName, url, lineNumber } = n.callFrame;
    // Paths shortened to what names the frame: the package or the file under the project.
    const where = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|src)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  const frames = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([frame, hits]) => ({ thread, frame, selfPercent: (100 * hits) / total }));
  return { busy: total, frames };
}
