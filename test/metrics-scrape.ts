import http from 'node:http';

export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (the subset prom-client writes). */
export function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

export class Scrape {
  constructor(
    readonly text: string,
    readonly series = parseExposition(text),
  ) {}

  /** Sum of the series named `name` whose labels include `labels`; undefined when none exists. */
  get(name: string, labels: Record<string, string> = {}): number | undefined {
    let found = false;
    let sum = 0;
    for (const s of this.series) {
      if (s.name !== name) continue;
      if (Object.entries(labels).some(([k, v]) => s.labels[k] !== v)) continue;
      found = true;
      sum += s.value;
    }
    return found ? sum : undefined;
  }

  /** Like get, but 0 when absent (counters not yet created). */
  n(name: string, labels: Record<string, string> = {}): number {
    return this.get(name, labels) ?? 0;
  }

  names(): Set<string> {
    return new Set(this.series.map((s) => s.name));
  }
}

export function scrape(port: number, host = '127.0.0.1'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`/metrics answered ${res.statusCode}`));
          try {
            resolve(new Scrape(body));
          } catch (e) {
            reject(e);
          }
        });
      })
      .on('error', reject);
  });
}
