/**
 * Academy-wide search on a large copy (`flock /tmp/vigie-bench.lock npm run bench:academy`).
 *
 * Starts a throw-away PostgreSQL (test/pg-helpers.ts), fills one month partition of vigie_rows
 * with ROWS generated rows (generate_series, no network: 400 gateways of 50 devices each, hosts
 * from a pool of 5,000, over 30 days), builds the indexes the schema declares, then times the
 * academy's own queries (AcademyJournal, the code the API runs): one device over one day, one
 * device over the month, one host (and subdomains) over one day, one establishment's network
 * over one hour. Then drops everything. Knobs: ROWS (10,000,000), REPEAT (20).
 */
import pg from 'pg';
import { AcademyJournal } from '../../src/academy/store.js';
import { ensurePartitions, ensureSchema, partitionNames } from '../../src/journal/ship-schema.js';
import { monthRange } from '../../src/journal/schema.js';
import { startPostgres } from '../pg-helpers.js';

const ROWS = Number(process.env.ROWS ?? 10_000_000);
const REPEAT = Number(process.env.REPEAT ?? 20);
const log = (s: string) => process.stderr.write(`[bench:academy ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const P = 202611;
const { start } = monthRange(P);
const SPAN = 30 * 86_400_000;

const db = await startPostgres();
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
try {
  const c = await pool.connect();
  try {
    await ensureSchema(c);
    await c.query(`SET maintenance_work_mem = '512MB'`);
    const part = partitionNames(P).rows;
    // Loaded detached, indexed, then attached: PostgreSQL adopts matching indexes instead of rebuilding them.
    await c.query(`CREATE TABLE ${part} (LIKE vigie_rows INCLUDING DEFAULTS)`);
    let t0 = performance.now();
    const chunk = 1_000_000;
    for (let lo = 1; lo <= ROWS; lo += chunk) {
      const hi = Math.min(ROWS, lo + chunk - 1);
      await c.query(
        `INSERT INTO ${part}
         SELECT 'gw-' || (g % 400), g, ${start} + ((g - 1) * ${SPAN} / ${ROWS}), c, c::inet,
           CASE WHEN g % 7 = 0 THEN 'eleve' || (g % 5000) END, 'college', CASE WHEN g % 9 = 0 THEN 'games' END, 3,
           CASE WHEN g % 3 = 0 THEN 'CONNECT' ELSE 'GET' END, CASE WHEN g % 3 = 0 THEN 'connect' ELSE 'http' END,
           'www' || (g % 5000) || '.example' || (g % 50) || '.test', CASE WHEN g % 3 = 0 THEN 443 ELSE 80 END,
           CASE WHEN g % 3 = 0 THEN NULL ELSE '/p/' || (g % 1000) END, 200, g % 5000, g % 500000, g % 3000,
           CASE WHEN g % 9 = 0 THEN 'block' ELSE 'allow' END, CASE WHEN g % 9 = 0 THEN 'category' ELSE 'default' END, g % 3 = 0,
           g % 50, NULL, 1, 1, g % 5000, NULL, 1
         FROM (SELECT g, '10.' || (g % 400 / 250) || '.' || (g % 400 % 250) || '.' || (1 + (g / 400) % 50) AS c FROM generate_series(${lo}::bigint, ${hi}::bigint) g) s`,
      );
      log(`${hi.toLocaleString('en')} rows`);
    }
    const loadS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    await c.query(`ALTER TABLE ${part} ADD PRIMARY KEY (gateway, id, t)`);
    await c.query(`CREATE INDEX ON ${part} (client_ip, t)`);
    await c.query(`CREATE INDEX ON ${part} (usr, t) WHERE usr IS NOT NULL`);
    await c.query(`CREATE INDEX ON ${part} ((reverse(host)) text_pattern_ops, t)`);
    const { start: s, end: e } = monthRange(P);
    await c.query(`ALTER TABLE vigie_rows ATTACH PARTITION ${part} FOR VALUES FROM (${s}) TO (${e})`);
    await ensurePartitions(c, [P]);
    await c.query(`INSERT INTO vigie_gateways (gateway, uai) SELECT 'gw-' || g, lpad(g::text, 7, '0') || 'A' FROM generate_series(0, 399) g`);
    await c.query(`VACUUM ANALYZE ${part}`);
    const indexS = (performance.now() - t0) / 1000;
    const size = (await c.query(`SELECT pg_size_pretty(pg_total_relation_size('${part}')) AS s`)).rows[0].s;
    log(`loaded ${ROWS.toLocaleString('en')} rows in ${loadS.toFixed(1)} s, indexed in ${indexS.toFixed(1)} s (${size})`);

    const j = new AcademyJournal(pool, 'Europe/Paris');
    const day = start + 12 * 86_400_000;
    const device = '10.0.37.12';
    const cases: [string, Parameters<AcademyJournal['search']>[0]][] = [
      ['one device, one day', { client: device, from: day, to: day + 86_400_000 }],
      ['one device, the month', { client: device, from: start, to: start + SPAN }],
      ['one host and subdomains, one day', { host: 'www1234.example34.test', from: day, to: day + 86_400_000 }],
      ['one school network (/24), one hour', { network: '10.0.37.0/24', from: day, to: day + 3_600_000 }],
      ['one user, one day', { user: 'eleve42', from: day, to: day + 86_400_000 }],
    ];
    const rows: string[] = [];
    for (const [name, filter] of cases) {
      const times: number[] = [];
      let n = 0;
      for (let i = 0; i < REPEAT; i++) {
        const t1 = performance.now();
        n = (await j.search(filter, { limit: 1000 })).rows.length;
        times.push(performance.now() - t1);
      }
      times.sort((a, b) => a - b);
      rows.push(`| ${name} | ${n} | ${times[Math.floor(times.length / 2)]!.toFixed(2)} | ${times[times.length - 1]!.toFixed(2)} | ${times[0]!.toFixed(2)} |`);
      log(`${name}: ${n} rows, median ${times[Math.floor(times.length / 2)]!.toFixed(2)} ms`);
    }
    const plan = (await c.query(`EXPLAIN SELECT * FROM vigie_rows WHERE client_ip = '${device}'::inet AND t >= ${day} AND t < ${day + 86_400_000} ORDER BY t, gateway, id LIMIT 1000`)).rows.map((r) => r['QUERY PLAN']).join('\n');
    process.stdout.write(
      [
        `Academy-wide search, ${ROWS.toLocaleString('en')} rows in PostgreSQL ${(await c.query('SHOW server_version')).rows[0].server_version} (one month partition, ${size} with indexes; loaded in ${loadS.toFixed(0)} s, indexed in ${indexS.toFixed(0)} s); AcademyJournal.search, limit 1000, ${REPEAT} runs each (warm cache)`,
        '',
        '| query | rows | median (ms) | max (ms) | min (ms) |',
        '|---|---:|---:|---:|---:|',
        ...rows,
        '',
        'Plan of the device query:',
        '```',
        plan,
        '```',
        '',
      ].join('\n'),
    );
  } finally {
    await c.query(`DROP TABLE IF EXISTS vigie_rows CASCADE`).catch(() => undefined);
    c.release();
  }
} finally {
  await pool.end();
  await db.destroy();
}
