import Database from 'better-sqlite3';
import { InvalidArgumentError, type Command } from 'commander';
import { createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { journalFile } from '../journal/journal.js';
import { JournalQuery } from '../journal/reader.js';
import type { JournalFilter, StatsBucket } from '../journal/types.js';
import { verifyJournal } from '../journal/verify.js';
import { JournalWriter } from '../journal/writer.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

export function parseIsoTime(v: string): number {
  const t = ISO.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new InvalidArgumentError(`"${v}" is not an ISO 8601 date or time (e.g. 2026-11-20 or 2026-11-20T08:00:00+01:00)`);
  return t;
}

const decisionArg = (v: string): 'allow' | 'block' => {
  if (v !== 'allow' && v !== 'block') throw new InvalidArgumentError('must be "allow" or "block"');
  return v;
};

interface FilterOpts extends CommonOpts {
  from?: number;
  to?: number;
  client?: string;
  user?: string;
  host?: string;
  decision?: 'allow' | 'block';
  profile?: string;
  category?: string;
}

const withFilters = (cmd: Command): Command =>
  withCommon(cmd)
    .option('--from <time>', 'start, ISO 8601, inclusive (default: the beginning)', parseIsoTime)
    .option('--to <time>', 'end, ISO 8601, exclusive (default: now and beyond)', parseIsoTime)
    .option('--client <address>', 'one client address')
    .option('--user <name>', 'one user')
    .option('--host <name>', 'a host, or a domain and its subdomains')
    .option('--decision <allow|block>', 'only allowed or only blocked connections', decisionArg)
    .option('--profile <name>', 'one profile')
    .option('--category <name>', 'one category');

function filterOf(o: FilterOpts): JournalFilter {
  const f: JournalFilter = {};
  for (const k of ['from', 'to', 'client', 'user', 'host', 'decision', 'profile', 'category'] as const) if (o[k] !== undefined) (f as Record<string, unknown>)[k] = o[k];
  if (f.from !== undefined && f.to !== undefined && f.from >= f.to) fail('--from must be before --to');
  return f;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`vigie journal: ${message}\n`);
  process.exit(code);
}

function journalPath(o: CommonOpts): { file: string; timezone: string; retentionDays: number } {
  const config = configFrom(o);
  const file = journalFile(join(config.dataDir, 'journal'));
  return { file, timezone: config.timezone, retentionDays: config.journal.retentionDays };
}

function openQuery(o: CommonOpts): JournalQuery {
  const { file, timezone } = journalPath(o);
  if (!existsSync(file)) fail(`no journal at ${file} (use --data DIR or --config FILE)`);
  return new JournalQuery(file, { timezone });
}

async function writeAll(out: Writable, chunks: AsyncIterable<string>): Promise<number> {
  let bytes = 0;
  for await (const c of chunks) {
    bytes += c.length;
    if (!out.write(c)) await new Promise<void>((resolve, reject) => {
      out.once('drain', resolve);
      out.once('error', reject);
    });
  }
  return bytes;
}

export function registerJournal(program: Command): void {
  const journal = program.command('journal').description('the connection journal: export, stats, verify, purge');

  withFilters(journal.command('export'))
    .description('stream matching connections as CSV or JSON lines, oldest month first')
    .option('--format <csv|jsonl>', 'output format', 'csv')
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .action(async (o: FilterOpts & { format: string; out?: string }) => {
      if (o.format !== 'csv' && o.format !== 'jsonl') fail('--format must be csv or jsonl');
      const q = openQuery(o);
      const out = o.out ? createWriteStream(o.out) : process.stdout;
      try {
        await writeAll(out, q.export(filterOf(o), o.format));
      } finally {
        q.close();
      }
      if (o.out) await new Promise<void>((resolve, reject) => (out as ReturnType<typeof createWriteStream>).end((e?: Error) => (e ? reject(e) : resolve())));
    });

  withFilters(journal.command('stats'))
    .description('requests and blocks per hour or day, profile and category')
    .option('--bucket <hour|day>', 'time bucket', 'hour')
    .option('--format <table|json>', 'output format', 'table')
    .action((o: FilterOpts & { bucket: string; format: string }) => {
      if (o.bucket !== 'hour' && o.bucket !== 'day') fail('--bucket must be hour or day');
      const { timezone } = journalPath(o);
      const q = openQuery(o);
      const rows = q.stats(filterOf(o), o.bucket as StatsBucket);
      q.close();
      if (o.format === 'json') {
        process.stdout.write(JSON.stringify(rows.map((r) => ({ ...r, start: new Date(r.bucket).toISOString() }))) + '\n');
        return;
      }
      const fmt = new Intl.DateTimeFormat('sv-SE', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      const table = [['start (' + timezone + ')', 'profile', 'category', 'requests', 'blocked']];
      for (const r of rows) table.push([fmt.format(r.bucket), r.profile ?? '-', r.category ?? '-', String(r.requests), String(r.blocked)]);
      const total = rows.reduce((a, r) => [a[0]! + r.requests, a[1]! + r.blocked], [0, 0]);
      table.push(['total', '', '', String(total[0]), String(total[1])]);
      const widths = table[0]!.map((_, i) => Math.max(...table.map((l) => l[i]!.length)));
      for (const l of table) process.stdout.write(l.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ') + '\n');
    });

  withCommon(journal.command('verify'))
    .description('re-compute the hash chain; report changed, removed, reordered or added rows (exit 1 if any)')
    .option('--json', 'machine-readable report')
    .action((o: CommonOpts & { json?: boolean }) => {
      const { file } = journalPath(o);
      if (!existsSync(file)) fail(`no journal at ${file} (use --data DIR or --config FILE)`);
      const db = new Database(file, { readonly: true, fileMustExist: true });
      const report = verifyJournal(db);
      db.close();
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else {
        const iso = (t: number | null) => (t === null ? '?' : new Date(t).toISOString());
        for (const p of report.problems) {
          const ids = p.firstId !== null || p.lastId !== null ? ` ids ${p.firstId ?? '?'}..${p.lastId ?? '?'}` : '';
          const times = p.from !== null || p.to !== null ? ` (${iso(p.from)} .. ${iso(p.to)})` : '';
          process.stdout.write(`${p.kind.toUpperCase()}${p.entry !== null ? ` link ${p.entry}` : ''}:${ids}${times}: ${p.message}\n`);
        }
        process.stdout.write(
          `${report.ok ? 'OK' : 'TAMPERED'}: ${report.entries} links, ${report.rows} rows, ${report.ends} tunnel ends checked; head ${report.head.id}:${report.head.hash}\n` +
            '(keep a copy of the head elsewhere: a rewritten or cut tail is only detectable against it)\n',
        );
      }
      if (!report.ok) process.exitCode = 1;
    });

  withCommon(journal.command('purge'))
    .description('drop the months older than the retention period now (the gateway also does it at start and daily)')
    .option('--retention-days <n>', 'override the configured retention', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of days, at least 1');
      return n;
    })
    .action((o: CommonOpts & { retentionDays?: number }) => {
      const { file, retentionDays } = journalPath(o);
      if (!existsSync(file)) fail(`no journal at ${file} (use --data DIR or --config FILE)`);
      const w = new JournalWriter(file);
      const r = w.purge(o.retentionDays ?? retentionDays);
      w.close();
      process.stdout.write(`purged ${r.partitions.length ? r.partitions.join(', ') : 'nothing'} (${r.rows} rows, retention ${r.retentionDays} days, cutoff ${new Date(r.cutoff).toISOString()})\n`);
    });
}
