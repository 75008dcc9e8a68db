import Database from 'better-sqlite3';
import { InvalidArgumentError, type Command } from 'commander';
import { createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { KnownHead } from '../journal/anchor.js';
import { backupJournal } from '../journal/backup.js';
import { fileAccess } from '../journal/files.js';
import { parseHead } from '../journal/head.js';
import { journalFile } from '../journal/journal.js';
import { JournalQuery } from '../journal/reader.js';
import { requisitionProblems } from '../journal/requisition.js';
import type { JournalFilter, StatsBucket } from '../journal/types.js';
import { verifyJournal } from '../journal/verify.js';
import { JournalWriter } from '../journal/writer.js';
import { auditCli } from './audit.js';
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
    .option('--from <time>', 'start, ISO 8601, inclusive (stats: default the beginning; export: mandatory)', parseIsoTime)
    .option('--to <time>', 'end, ISO 8601, exclusive (stats: default now and beyond; export: mandatory)', parseIsoTime)
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

function journalPath(o: CommonOpts) {
  const config = configFrom(o);
  const file = journalFile(join(config.dataDir, 'journal'));
  const j = config.journal;
  return { file, timezone: config.timezone, retentionDays: j.retentionDays, dataDir: config.dataDir, maxExportDays: j.maxExportDays, access: fileAccess(j.group) };
}

/** The audit line of a command run on the machine; the command fails when it cannot be written. */
async function audited(o: CommonOpts, action: string, target: string | null, details: Record<string, unknown>, outcome: 'ok' | 'refused' | 'failed' = 'ok'): Promise<void> {
  const { dataDir, retentionDays } = journalPath(o);
  try {
    await auditCli(dataDir, action, target, details, outcome, retentionDays);
  } catch (e) {
    fail(`cannot write the audit log in ${dataDir}: ${(e as Error).message} (nothing was done)`, 1);
  }
}

const headArg = (v: string, prev: string[] = []): string[] => {
  try {
    parseHead(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return [...prev, v];
};

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
  const journal = program.command('journal').description('the connection journal: export, stats, verify, head, backup, purge');

  withFilters(journal.command('export'))
    .description('a requisition: stream the connections of a time range (at most journal.maxExportDays) as CSV or JSON lines, oldest first, ending with the chain head; audited')
    .option('--reference <text>', 'the requisition reference (mandatory; written to the audit log)')
    .option('--format <csv|jsonl>', 'output format', 'csv')
    .option('-o, --out <file>', 'write to a file (created 0600) instead of stdout')
    .action(async (o: FilterOpts & { format: string; out?: string; reference?: string }) => {
      if (o.format !== 'csv' && o.format !== 'jsonl') fail('--format must be csv or jsonl');
      const { maxExportDays } = journalPath(o);
      const filter = filterOf(o);
      const reference = o.reference?.trim() ?? '';
      const refused = requisitionProblems({ reference, from: o.from, to: o.to }, maxExportDays);
      if (refused.length) {
        await audited(o, 'journal.export', reference || null, { reference, filter, format: o.format, refused: refused.map((p) => p.message) }, 'refused');
        fail(refused.map((p) => `--${p.field}: ${p.message}`).join('\n'));
      }
      const q = openQuery(o);
      // Recorded before the first byte leaves, as the API's exports.
      await audited(o, 'journal.export', reference, { reference, filter, format: o.format, ...(o.out ? { out: o.out } : {}) });
      const out = o.out ? createWriteStream(o.out, { mode: 0o600 }) : process.stdout;
      let lines = 0;
      let complete = false;
      async function* counted() {
        for await (const chunk of q.export(filter, o.format as 'csv' | 'jsonl')) {
          lines += (chunk.match(/\n/g) ?? []).length;
          yield chunk;
        }
        complete = true;
      }
      try {
        await writeAll(out, counted());
        if (o.out) await new Promise<void>((resolve, reject) => (out as ReturnType<typeof createWriteStream>).end((e?: Error) => (e ? reject(e) : resolve())));
      } finally {
        const head = complete ? q.head() : null;
        q.close();
        await audited(o, 'journal.export.end', reference, { reference, lines, complete, ...(head ? { head } : {}) }, complete ? 'ok' : 'failed');
      }
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
    .description('re-compute the hash chain and compare it with every head recorded (events) or given (--head); report changed, removed, cut or added rows (exit 1 if any); audited')
    .option('--head <ID:HASH>', 'a chain head kept elsewhere (an export\'s last line, `vigie journal head`, the academy\'s copy); repeatable', headArg)
    .option('--json', 'machine-readable report')
    .action(async (o: CommonOpts & { json?: boolean; head?: string[] }) => {
      const { file } = journalPath(o);
      if (!existsSync(file)) {
        // A journal that is gone is the last tamper to miss: with a head kept elsewhere, it fails.
        if (o.head?.length) {
          await audited(o, 'journal.verify', null, { ok: false, missing: file, heads: o.head }, 'failed');
          process.stdout.write(`REMOVED: no journal at ${file}, but ${o.head.length} head(s) were given: every row up to link ${Math.max(...o.head.map((h) => parseHead(h).id))} is gone\nTAMPERED\n`);
          process.exit(1);
        }
        fail(`no journal at ${file} (use --data DIR or --config FILE)`);
      }
      const heads: KnownHead[] = (o.head ?? []).map((h) => ({ head: parseHead(h), source: '--head', time: null, lastId: null }));
      const db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      const report = verifyJournal(db, { heads });
      db.close();
      await audited(o, 'journal.verify', null, { ok: report.ok, head: `${report.head.id}:${report.head.hash}`, rows: report.rows, problems: report.problems.length, ...(o.head?.length ? { heads: o.head } : {}) }, report.ok ? 'ok' : 'failed');
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else {
        const iso = (t: number | null) => (t === null ? '?' : new Date(t).toISOString());
        for (const p of report.problems) {
          const ids = p.firstId !== null || p.lastId !== null ? ` ids ${p.firstId ?? '?'}..${p.lastId ?? '?'}` : '';
          const times = p.from !== null || p.to !== null ? ` (${iso(p.from)} .. ${iso(p.to)})` : '';
          process.stdout.write(`${p.kind.toUpperCase()}${p.entry !== null ? ` link ${p.entry}` : ''}:${ids}${times}: ${p.message}\n`);
        }
        process.stdout.write(
          `${report.ok ? 'OK' : 'TAMPERED'}: ${report.entries} links, ${report.rows} rows, ${report.ends} tunnel ends checked${heads.length ? `, ${heads.length} head(s) given` : ''}; head ${report.head.id}:${report.head.hash}\n` +
            '(keep a copy of the head elsewhere, `vigie journal head`: a journal cut or wiped with its events is only detectable against it)\n',
        );
      }
      if (!report.ok) process.exitCode = 1;
    });

  withCommon(journal.command('head'))
    .description('print the chain head (ID:HASH) to keep elsewhere: `verify --head` detects later a cut or rewritten journal')
    .action((o: CommonOpts) => {
      const q = openQuery(o);
      try {
        process.stdout.write(q.head() + '\n');
      } finally {
        q.close();
      }
    });

  withCommon(journal.command('backup'))
    .description('copy the journal (SQLite online backup, safe while the gateway runs) to DEST, a file or a folder, then verify the copy; audited')
    .argument('<dest>', 'file to create, or folder to create journal-<UTC time>.db in')
    .action(async (dest: string, o: CommonOpts) => {
      const { file, access } = journalPath(o);
      if (!existsSync(file)) fail(`no journal at ${file} (use --data DIR or --config FILE)`);
      let r;
      try {
        r = await backupJournal(file, dest, access);
      } catch (e) {
        await audited(o, 'journal.backup', dest, { error: (e as Error).message }, 'failed');
        fail((e as Error).message, 1);
      }
      await audited(o, 'journal.backup', r.file, { head: `${r.head.id}:${r.head.hash}`, rows: r.rows, bytes: r.bytes, verified: r.ok }, r.ok ? 'ok' : 'failed');
      process.stdout.write(`${r.ok ? 'backup verified' : 'backup written, but it does NOT verify'}: ${r.file} (${r.rows} rows, ${r.entries} links, ${(r.bytes / 1048576).toFixed(1)} MiB, ${r.ms} ms); head ${r.head.id}:${r.head.hash}\n`);
      for (const p of r.problems) process.stdout.write(`${p.kind.toUpperCase()}: ${p.message}\n`);
      if (!r.ok) process.exitCode = 1;
    });

  withCommon(journal.command('purge'))
    .description('drop the months older than the retention period now (the gateway also does it at start and daily)')
    .option('--retention-days <n>', 'override the configured retention', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of days, at least 1');
      return n;
    })
    .action((o: CommonOpts & { retentionDays?: number }) => {
      const { file, retentionDays, access } = journalPath(o);
      if (!existsSync(file)) fail(`no journal at ${file} (use --data DIR or --config FILE)`);
      const w = new JournalWriter(file, { access });
      const r = w.purge(o.retentionDays ?? retentionDays);
      w.close();
      process.stdout.write(`purged ${r.partitions.length ? r.partitions.join(', ') : 'nothing'} (${r.rows} rows, retention ${r.retentionDays} days, cutoff ${new Date(r.cutoff).toISOString()})\n`);
    });
}
