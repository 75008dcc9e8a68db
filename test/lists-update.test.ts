import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import * as tar from 'tar';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { loadCompiledUt1 } from '../src/lists/cache.js';
import { progressBar } from '../src/lists/progress.js';
import { ListUpdateScheduler } from '../src/lists/schedule.js';
import { installedUt1Dir, parseChecksum, readUpdateState, resolveUt1Dir, UpdateRejected, updateUt1 } from '../src/lists/update.js';
import { silentLogger } from '../src/log.js';
import { DEAD_DNS, TEST_LISTS, tmp, writeLists } from './helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const filler = (seed: string, n: number) => Array.from({ length: n }, (_, i) => `${createHash('sha1').update(seed + i).digest('hex').slice(0, 12)}.test`);

/** A blacklists.tar.gz as UT1 ships it: a `blacklists/` folder of category folders. */
async function tarball(lists: Parameters<typeof writeLists>[1], top: string | null = 'blacklists'): Promise<Buffer> {
  const root = tmp();
  const dir = writeLists(top ? join(root, top) : root, lists);
  // UT1 ships a README and global_usage next to the category folders.
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'README'), randomBytes(1500).toString('hex'));
  const file = join(tmp(), 'out.tar.gz');
  await tar.c({ gzip: true, cwd: root, file }, top ? [top] : readdirSync(root));
  return readFileSync(file);
}

const v1Lists = { ...TEST_LISTS, press: { domains: filler('v1', 300) } };
const v2Lists = { ...TEST_LISTS, press: { domains: filler('v2', 300) }, games: { domains: ['games.test', 'new-game.test'] } };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('vigie lists update against a local server', async (t) => {
  const v1 = await tarball(v1Lists);
  const v2 = await tarball(v2Lists);
  const v3 = await tarball({ ...v2Lists, press: { domains: filler('v3', 300) } }, null);
  const dropped = await tarball({ ...v1Lists, games: { domains: [] } });
  const halved = await tarball({ ...v1Lists, press: { domains: filler('v1', 140) } });
  // A gzip bomb: 19 MiB of zeros in one file, a few KiB once compressed.
  const bomb = await tarball({ ...v1Lists, press: { domains: [...filler('v1', 300), '#' + '0'.repeat(19 * 1048576)] } });
  const noCategories = await tarball({}, 'blacklists');
  const files: Record<string, Buffer> = {
    '/v1.tar.gz': v1,
    '/v2.tar.gz': v2,
    '/v3.tar.gz': v3,
    '/dropped.tar.gz': dropped,
    '/halved.tar.gz': halved,
    '/bomb.tar.gz': bomb,
    '/empty.tar.gz': Buffer.concat([noCategories, randomBytes(0)]),
    '/truncated.tar.gz': v1.subarray(0, Math.floor(v1.length * 0.6)),
    '/garbage.tar.gz': randomBytes(4096),
    '/v1.tar.gz.sha256': Buffer.from(`${sha256(v2)}  v2.tar.gz\n${sha256(v1)}  v1.tar.gz\n`),
    '/wrong.sha256': Buffer.from(`${'0'.repeat(64)}  v1.tar.gz\n`),
  };
  let current = v1;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const path = req.url ?? '/';
    if (path === '/cut.tar.gz') {
      // Announces the whole file, sends half, hangs up.
      res.writeHead(200, { 'content-length': String(v1.length) });
      res.write(v1.subarray(0, v1.length >> 1), () => res.destroy());
      return;
    }
    const body = path === '/current.tar.gz' ? current : files[path];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const etag = `"${sha256(body).slice(0, 12)}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    res.writeHead(200, { etag, 'last-modified': new Date(0).toUTCString(), 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));

  const dataDir = tmp();
  const first = await updateUt1({ url: `${base}/v1.tar.gz`, checksumUrl: `${base}/v1.tar.gz.sha256`, dataDir });
  t.equal(first.status, 'installed', 'v1 installed (checksum line picked by file name)');
  const v1Dir = await installedUt1Dir(dataDir);
  t.ok(v1Dir && existsSync(join(v1Dir, 'adult', 'domains')), 'extracted without the blacklists/ prefix');
  const config = resolveConfig({ dataDir, lists: { ut1: null } });
  t.equal(await resolveUt1Dir(config), v1Dir, 'the gateway will use the installed lists');
  const v1Counts = (await loadCompiledUt1(v1Dir!, { dataDir })).index.counts();

  const before = requests;
  const again = await updateUt1({ url: `${base}/v1.tar.gz`, dataDir, current: v1Counts });
  t.same([again.status, requests - before], ['not-modified', 1], 'ETag: one conditional request, 304, nothing downloaded');
  t.equal((await updateUt1({ url: `${base}/v1.tar.gz`, dataDir, force: true })).status, 'unchanged', '--force fetches, sees the same tarball');

  const rejected: [string, RegExp, Partial<Parameters<typeof updateUt1>[0]>?][] = [
    ['/truncated.tar.gz', /not a valid tar\.gz/],
    ['/cut.tar.gz', /interrupted|truncated/],
    ['/garbage.tar.gz', /not a valid tar\.gz/],
    ['/dropped.tar.gz', /category games \(1 -> 0\) would shrink to less than half/],
    ['/halved.tar.gz', /category press \(300 -> 140\) would shrink to less than half of the lists in use \(force it/],
    ['/bomb.tar.gz', /expands to more than \d+ bytes \(20x the \d+ bytes downloaded\)/],
    ['/v2.tar.gz', /expands to more than 4096 bytes \(lists\.maxExtractBytes\)/, { maxExtractBytes: 4096 }],
    ['/empty.tar.gz', /no UT1 category folder/],
    ['/missing.tar.gz', /HTTP 404/],
    ['/v2.tar.gz', /checksum mismatch: sha256/, { checksumUrl: `${base}/wrong.sha256` }],
    ['/v2.tar.gz', /more than lists\.maxDownloadBytes/, { maxBytes: 2048 }],
  ];
  for (const [path, why, extra] of rejected) {
    const p = updateUt1({ url: base + path, dataDir, current: v1Counts, ...extra });
    await t.rejects(p, why, `${path} rejected`);
    await p.catch((e) => t.ok(e instanceof UpdateRejected, 'as an UpdateRejected'));
    t.equal(await installedUt1Dir(dataDir), v1Dir, `${path}: v1 stays installed`);
  }
  const leftovers = readdirSync(join(dataDir, 'lists')).filter((n) => n.startsWith('download-') || (n.startsWith('ut1-') && !n.endsWith('.idx')));
  t.same(leftovers, [v1Dir!.split('/').pop()], 'rejected downloads leave nothing behind');
  t.ok(bomb.length < 200_000, `the bomb is small (${bomb.length} bytes), refused at 20x its own size, not at 20x lists.maxDownloadBytes`);

  const forced = await updateUt1({ url: `${base}/halved.tar.gz`, dataDir, current: v1Counts, force: true });
  t.equal(forced.status, 'installed', '--force installs a category shrinking by more than half');
  t.match(await readUpdateState(dataDir), { installed: { dataTime: new Date(0).toISOString() } }, "the tarball's Last-Modified is recorded as the data's date");

  const second = await updateUt1({ url: `${base}/v2.tar.gz`, dataDir, current: v1Counts });
  t.equal(second.status, 'installed');
  const v2Dir = await installedUt1Dir(dataDir);
  const third = await updateUt1({ url: `${base}/v3.tar.gz`, dataDir, current: v1Counts });
  t.equal(third.status, 'installed', 'a tarball with the categories at its root works too');
  t.notOk(existsSync(v1Dir!), 'older than the previous version: removed');
  t.ok(existsSync(v2Dir!), 'the previous version is kept');
  t.match(await readUpdateState(dataDir), { url: `${base}/v3.tar.gz`, installed: { version: third.status === 'installed' ? third.version : '' } });

  t.test('the running gateway updates on its schedule and after the CLI', async (t) => {
    const data = tmp();
    current = v1;
    await updateUt1({ url: `${base}/current.tar.gz`, dataDir: data });
    const cfg = resolveConfig({
      listen: [{ host: '127.0.0.1', port: 0 }],
      dns: { servers: DEAD_DNS },
      dataDir: data,
      lists: { ut1: null, academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] } }), updateUrl: `${base}/current.tar.gz`, updateIntervalHours: 0.0002 },
    });
    const gw = new Gateway({ config: cfg, log: silentLogger });
    await gw.start();
    t.teardown(() => gw.stop());
    const want = (ix: typeof gw.snapshot.indexes.ut1) => new Uint8Array(ix.categories.length).fill(1);
    const v1Version = gw.snapshot.listVersion;
    t.equal(gw.snapshot.indexes.ut1.matchHost('new-game.test', want(gw.snapshot.indexes.ut1)), null, 'v1 serving');
    current = v2;
    const until = async (ok: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !ok() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
      return ok();
    };
    t.ok(await until(() => gw.snapshot.listVersion !== v1Version, 15_000), 'the schedule fetched v2 and swapped it in');
    t.ok(gw.snapshot.indexes.ut1.matchHost('new-game.test', want(gw.snapshot.indexes.ut1)), 'v2 entries decide');

    // An update made from a shell (the CLI, another process) is picked up by the watcher.
    gw.listUpdates?.stop();
    const watcher = new ListUpdateScheduler(gw, { ...cfg, lists: { ...cfg.lists, updateUrl: null } }, silentLogger, 100);
    await watcher.start();
    t.teardown(() => watcher.stop());
    const v2Version = gw.snapshot.listVersion;
    const cli = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'lists', 'update', '--data', data, '--url', `${base}/v3.tar.gz`], { cwd: ROOT });
    t.match(cli.stderr, /lists updated: version [0-9a-f]+, 6 categories/, 'the CLI reports the new version');
    t.ok(await until(() => gw.snapshot.listVersion !== v2Version, 10_000), 'the gateway swapped to what the CLI installed');

    const refused = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'lists', 'update', '--data', data, '--url', `${base}/dropped.tar.gz`], { cwd: ROOT }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    t.equal(refused?.code, 1, 'a rejected update exits 1');
    t.match(refused?.stderr ?? '', /update rejected: .*would shrink to less than half.*; the current lists stay in use/);
  });
});

t.test('checksum files', async (t) => {
  t.same(parseChecksum('d41d8cd98f00b204e9800998ecf8427e\n', 'x'), { algorithm: 'md5', hex: 'd41d8cd98f00b204e9800998ecf8427e' });
  t.same(parseChecksum(`${'a'.repeat(40)}  other.tgz\n${'B'.repeat(64)} *blacklists.tar.gz\n`, 'blacklists.tar.gz'), { algorithm: 'sha256', hex: 'b'.repeat(64) });
  t.throws(() => parseChecksum('<html>not found</html>', 'x'), /no md5\/sha1\/sha256 digest/);
});

t.test('progress bar: drawn in place on a terminal, only the final line elsewhere', async (t) => {
  const sink = (tty: boolean) => {
    const out = new PassThrough() as PassThrough & { isTTY?: boolean };
    out.isTTY = tty;
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    return { stream: out as unknown as NodeJS.WriteStream, text: () => text };
  };
  const tty = sink(true);
  const bar = progressBar(tty.stream, 'downloading', 10);
  bar.update(5 * 1048576, 10 * 1048576);
  bar.finish('done');
  await new Promise((r) => setImmediate(r));
  t.match(tty.text(), /^\rdownloading \[#####\.\.\.\.\.\]  50%  5\.0\/10\.0 MiB/);
  t.match(tty.text(), /\r\x1b\[Kdone\n$/);
  const pipe = sink(false);
  const quiet = progressBar(pipe.stream, 'downloading');
  quiet.update(1, 2);
  quiet.finish('done');
  await new Promise((r) => setImmediate(r));
  t.equal(pipe.text(), 'done\n');
});
