/**
 * wrk (one thread) for the closed-loop phases. A proxy needs absolute-form request lines
 * (`GET http://origin.test:PORT/small HTTP/1.1`), which wrk only sends from a Lua script; the
 * same script prints the summary as one JSON line so nothing is parsed from wrk's text.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { track } from './procs.js';

const LUA = `-- args: request target (absolute URL through a proxy, path when direct), Host header
local req
function init(args)
  req = wrk.format("GET", args[1], { ["Host"] = args[2] })
end
function request()
  return req
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p99_us":%.0f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

export interface WrkResult {
  rps: number;
  mibps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  errors: number;
  /** Non-2xx/3xx answers: a proxy that refuses or fails shows here, not as speed. */
  badStatus: number;
}

export function writeWrkScript(dir: string): string {
  const f = join(dir, 'absolute.lua');
  writeFileSync(f, LUA);
  return f;
}

/** Runs wrk against `connectTo` (the proxy, or the origin when direct); bounded by `seconds` + 20 s. */
export function wrk(opts: { script: string; connectTo: string; target: string; hostHeader: string; connections: number; seconds: number }): Promise<WrkResult> {
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '5s', '--latency', '-s', opts.script, opts.connectTo, '--', opts.target, opts.hostHeader];
  return new Promise((resolve, reject) => {
    track(execFile('wrk', args, { timeout: (opts.seconds + 20) * 1000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const m = /^WRKJSON (.*)$/m.exec(stdout);
      if (!m) return reject(new Error(`wrk ${args.join(' ')}: ${err?.message ?? ''}\n${stdout}${stderr}`));
      const j = JSON.parse(m[1]!) as Record<string, number>;
      const s = j.duration_us! / 1e6;
      resolve({
        rps: j.requests! / s,
        mibps: j.bytes! / 1048576 / s,
        p50ms: j.p50_us! / 1000,
        p99ms: j.p99_us! / 1000,
        requests: j.requests!,
        errors: j.connect! + j.read! + j.write! + j.timeout!,
        badStatus: j.status!,
      });
    }));
  });
}
