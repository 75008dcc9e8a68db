import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { AafError, readAafFile } from '../src/directory/aaf.js';
import { Identity } from '../src/auth/identity.js';
import { DirectoryWatcher, importFiles } from '../src/directory/import.js';
import { silentLogger } from '../src/log.js';
import { profileForUser } from '../src/directory/levels.js';
import { Directory, directoryFile } from '../src/directory/store.js';
import { aafName, aafXml, establishment, parent, pupil, staff, writeAaf, type Encoding } from './aaf-helpers.js';
import { TEST_LISTS, tmp, writeLists } from './helpers.js';

const UAI = '0781234A';
const config = resolveConfig({ directory: { classes: { '5001$6A': 'cycle3' } } });

/** Everything SQLite wrote (database and its write-ahead log), to look for what must not be there. */
const stored = (dataDir: string): string =>
  ['', '-wal'].map((s) => directoryFile(dataDir) + s).filter(existsSync).map((f) => readFileSync(f).toString('utf8')).join('');

for (const encoding of ['ISO-8859-15', 'UTF-8'] as Encoding[]) {
  t.test(`Complet then Delta (add, modify, delete), ${encoding}`, async (t) => {
    const dir = tmp();
    const data = join(dir, 'data');
    const files = [
      writeAaf(dir, aafName(UAI, 'Complet', '20260901', 'EtabEducNat'), [establishment('5001', UAI)], encoding),
      writeAaf(dir, aafName(UAI, 'Complet', '20260901', 'Eleve'), [
        pupil('1000001', { mef: '10010012110', classes: ['5001$6A'], sn: 'Lefèvre', givenName: 'Zoé', login: 'zoe.lefevre' }),
        pupil('1000002', { mef: '10310019110', classes: ['5001$3B'], sn: 'Œuvray', givenName: 'Noël €' }),
        pupil('1000003', { niveau: 'CM1' }),
        pupil('1000004', { mef: '10110001110', classes: ['5001$5C'] }),
      ], encoding),
      writeAaf(dir, aafName(UAI, 'Complet', '20260901', 'PersEducNat'), [
        staff('2000001', ['5001$DIR$DIRECTION']),
        staff('2000002', ['5001$ENS$ENSEIGNEMENT$L0201$LETTRES']),
        staff('2000003', ['5001$EDU$EDUCATION']),
      ], encoding),
      writeAaf(dir, aafName(UAI, 'Complet', '20260901', 'PersRelEleve'), [parent('9000001')], encoding),
    ];
    const db = Directory.open(data);
    t.teardown(() => db.close());
    const first = await importFiles([...files].reverse(), db);
    t.same(first.map((o) => o.status), ['imported', 'imported', 'imported', 'imported'], 'all four imported (in date/kind order whatever the argument order)');
    t.same(first.map((o) => (o.status === 'imported' ? o.result.kind : null)), ['EtabEducNat', 'PersEducNat', 'Eleve', 'PersRelEleve']);
    t.equal((statSync(directoryFile(data)).mode & 0o777).toString(8), '600', 'directory.db is not world-readable');

    const zoe = db.find('1000001')!;
    t.match(zoe, { id: '1000001', login: 'zoe.lefevre', uai: UAI, role: 'pupil', level: '6e', classes: ['5001$6A'] });
    t.equal(profileForUser(zoe, config.directory), 'cycle3', 'the class override wins over 6e → college');
    t.equal(db.find('zoe.lefevre')?.id, '1000001', 'found by login too');
    t.equal(profileForUser(db.find('1000002')!, config.directory), 'college');
    t.match(db.find('1000003'), { level: 'CM1' });
    t.equal(profileForUser(db.find('1000003')!, config.directory), 'cycle3');
    t.match(db.find('2000001'), { role: 'direction' });
    t.match(db.find('2000002'), { role: 'teacher' });
    t.match(db.find('2000003'), { role: 'staff' });
    t.equal(profileForUser(db.find('2000002')!, config.directory), 'staff');
    t.same(db.identity('1000002'), { id: '1000002', sn: 'Œuvray', givenName: 'Noël €' }, 'names decoded from the declared encoding');
    t.equal(db.find('9000001'), null, 'parents are not users');
    const raw = stored(data);
    for (const secret of ['14/07/2015', '01/02/1980', 'rue des', '0102030405', 'parent@example.test', 'ENTElevePere', 'ENTPersonDateNaissance']) {
      t.notOk(raw.includes(secret), `"${secret}" is not stored`);
    }

    const delta = [
      writeAaf(dir, aafName(UAI, 'Delta', '20260908', 'Eleve'), [
        pupil('1000005', { mef: '10210001110', classes: ['5001$4A'] }),
        { op: 'modify', id: '1000001', category: 'Eleve', attrs: { ENTEleveMEF: { values: ['10110001110'], modification: 'replace' }, ENTEleveClasses: { values: ['5001$5A'], modification: 'replace' } } },
        { op: 'delete', id: '1000002', category: 'Eleve' },
        { op: 'modify', id: '7777777', category: 'Eleve', attrs: { sn: { values: ['X'], modification: 'replace' } } },
      ], encoding),
    ];
    const [second] = await importFiles(delta, db);
    t.equal(second!.status, 'imported', 'an unknown person in a delta is not fatal');
    if (second!.status !== 'imported') return;
    t.match(second.result, { added: 1, modified: 1, removed: 1 });
    t.match(second.result.unknown, [{ id: '7777777', op: 'modify' }], 'the unknown person is reported');
    t.match(db.find('1000001'), { level: '5e', classes: ['5001$5A'], login: 'zoe.lefevre' }, 'a modify keeps what it does not touch');
    t.equal(profileForUser(db.find('1000001')!, config.directory), 'college');
    t.equal(db.identity('1000001')?.sn, 'Lefèvre');
    t.equal(db.find('1000002'), null, 'deleted: no longer identifies anyone');
    t.equal(db.identity('1000002')?.sn, 'Œuvray', 'but kept for requisitions while the journal may name them');
    t.equal(db.purge(365, Date.now() + 366 * 86_400_000), 1, 'and purged after the retention');
    t.equal(db.identity('1000002'), null);

    // The next full export lacks 1000004: that pupil has left.
    const [third] = await importFiles([writeAaf(dir, aafName(UAI, 'Complet', '20260915', 'Eleve'), [pupil('1000001', { mef: '10110001110' }), pupil('1000003', { niveau: 'CM2' }), pupil('1000005', { mef: '10210001110' })], encoding)], db);
    t.match(third, { status: 'imported', result: { removed: 1, modified: 3 } });
    t.equal(db.find('1000004'), null);
    t.equal(db.counts().users, 6);
  });
}

t.test('character references and CDATA-free entities in values', async (t) => {
  const dir = tmp();
  const path = join(dir, aafName(UAI, 'Complet', '20260901', 'Eleve'));
  writeFileSync(path, aafXml([pupil('1000001', { mef: '10010012110' })], 'UTF-8').replace('Nom1000001', 'Dupr&#233; &amp; Fils &#x152;'));
  const f = await readAafFile(path);
  t.same(f.operations[0]!.attrs.get('sn')?.values, ['Dupré & Fils Œ']);
  t.notOk(f.operations[0]!.attrs.has('ENTPersonDateNaissance'), 'unkept attributes are dropped while parsing');
});

t.test('a truncated file is refused whole, naming the file and the line', async (t) => {
  const dir = tmp();
  const data = join(dir, 'data');
  const db = Directory.open(data);
  t.teardown(() => db.close());
  const good = writeAaf(dir, aafName(UAI, 'Complet', '20260901', 'Eleve'), [pupil('1000001', { mef: '10010012110' })]);
  await importFiles([good], db);
  const full = aafXml([pupil('1000002', { mef: '10010012110' }), pupil('1000003', { mef: '10010012110' }), pupil('1000004', { mef: '10010012110' })]);
  const cut = full.slice(0, Math.floor(full.length * 0.7));
  const name = aafName(UAI, 'Delta', '20260902', 'Eleve');
  writeFileSync(join(dir, name), cut);
  const later = writeAaf(dir, aafName(UAI, 'Delta', '20260903', 'Eleve'), [pupil('1000009', { mef: '10010012110' })]);
  const outcomes = await importFiles([join(dir, name), later], db);
  t.equal(outcomes[0]!.status, 'refused');
  if (outcomes[0]!.status !== 'refused') return;
  t.equal(outcomes[0].error.file, name);
  t.equal(outcomes[0].error.line, cut.split('\n').length, 'the line where the file ends');
  t.match(outcomes[0].error.message, new RegExp(`^${name}:\\d+: malformed XML`));
  t.equal(outcomes[1]!.status, 'skipped', 'a later delta of the same kind waits for the refused one');
  t.equal(db.find('1000002'), null, 'nothing of the refused file applied (the first entries were complete)');
  t.equal(db.counts().users, 1);
});

t.test('wrong root, entry without id, inconsistent entries: refused with line and reason', async (t) => {
  const dir = tmp();
  const cases: [string, string, RegExp, number | null][] = [
    ['wrong root', '<?xml version="1.0" encoding="UTF-8"?>\n<annuaire>\n</annuaire>\n', /root element is <annuaire>, expected <ficAlimMENESR>/, 2],
    ['no id', aafXml([pupil('1')]).replace('<identifier><id>1</id></identifier>', ''), /addRequest without identifier\/id/, 3],
    ['other kind', aafXml([pupil('1'), staff('2', ['5001$ENS'])]), /categoriePersonne "PersEducNat" in a Eleve file/, null],
    ['twice', aafXml([pupil('1'), pupil('1')]), /identifier 1 is added twice/, null],
    ['modify in Complet', aafXml([{ op: 'modify', id: '1', category: 'Eleve' }]), /modifyRequest in a full \(Complet\) export/, 3],
    ['unknown element', aafXml([pupil('1')]).replace('<identifier>', '<surprise/><identifier>'), /unexpected <surprise> in <request>/, 5],
    ['bad encoding', aafXml([pupil('1')]).replace('ISO-8859-15', 'EBCDIC-XYZ'), /unsupported encoding "EBCDIC-XYZ"/, 1],
    ['empty', '', /root element|no <ficAlimMENESR> element/, null],
  ];
  for (const [label, xml, reason, line] of cases) {
    const path = join(dir, aafName(UAI, 'Complet', '20260901', 'Eleve'));
    writeFileSync(path, xml);
    const e = await readAafFile(path).then(() => null, (err: unknown) => err);
    t.type(e, AafError, label);
    t.match((e as AafError).reason, reason, label);
    if (line !== null) t.equal((e as AafError).line, line, `${label}: line`);
  }
});

t.test('the watched folder: imported once complete, then moved aside; the gateway reloads its users', async (t) => {
  const root = tmp();
  const watch = join(root, 'aaf');
  mkdirSync(watch);
  const cfg = resolveConfig({ dataDir: join(root, 'data'), directory: { watch } });
  const identity = new Identity(cfg, silentLogger);
  await identity.start({ watch: false });
  t.teardown(() => identity.stop());
  t.equal(identity.userCount, 0);
  let db: Directory | null = null;
  t.teardown(() => db?.close());
  const seen: string[] = [];
  const watcher = new DirectoryWatcher(watch, () => (db ??= Directory.open(cfg.dataDir)), silentLogger, (o) => {
    seen.push(...o.map((x) => x.status));
    void identity.refresh(true);
  }, 3_600_000);
  const good = writeAaf(watch, aafName(UAI, 'Complet', '20260901', 'Eleve'), [pupil('1000001', { mef: '10310019110', login: 'theo' })]);
  const bad = join(watch, aafName(UAI, 'Complet', '20260901', 'PersEducNat'));
  writeFileSync(bad, '<?xml version="1.0"?>\n<annuaire/>\n');
  t.same(await watcher.scan(), [], 'first pass: sizes noted, nothing taken (a file may still be copying)');
  const outcomes = await watcher.scan();
  t.same(outcomes.map((o) => o.status).sort(), ['imported', 'refused']);
  t.ok(existsSync(join(watch, 'imported', basename(good))), 'moved to imported/');
  t.ok(existsSync(join(watch, 'refused', basename(bad))), 'moved to refused/');
  t.match(readFileSync(join(watch, 'refused', `${basename(bad)}.reason.txt`), 'utf8'), /:2: root element is <annuaire>/);
  t.notOk(existsSync(good), 'not taken twice');
  t.same(await watcher.scan(), []);
  await identity.refresh(true);
  t.equal(identity.userCount, 1, 'the gateway\'s copy in memory follows');
  t.equal(identity.user('theo')?.id, '1000001');
  t.equal(identity.profileOf('1000001'), 'college');
  t.equal(identity.userIdFor('theo', null), '1000001', 'a login the directory knows records as its AAF id');
});

t.test('vigie directory import and show (CLI)', async (t) => {
  const run = promisify(execFile);
  const CLI = new URL('../src/cli.ts', import.meta.url).pathname;
  const dir = tmp();
  const data = join(dir, 'data');
  const good = writeAaf(dir, aafName(UAI, 'Complet', '20260901', 'Eleve'), [pupil('1000001', { mef: '10010012110', sn: 'Secret' }), pupil('1000002', { mef: '99999999999' })]);
  const bad = join(dir, aafName(UAI, 'Complet', '20260901', 'PersEducNat'));
  writeFileSync(bad, '<?xml version="1.0"?>\n<ficAlimMENESR>\n<addRequest>\n');
  const imported = await run(process.execPath, ['--import', 'tsx', CLI, 'directory', 'import', good, bad, '--data', data]).then(() => null, (e: { code: number; stdout: string; stderr: string }) => e);
  t.equal(imported?.code, 1, 'exit 1 when a file was refused');
  t.match(imported?.stdout, /imported ENT_0781234A_Complet_20260901_Eleve_0000.xml \(Complet Eleve\): 2 added/);
  t.match(imported?.stderr, /refused {2}ENT_0781234A_Complet_20260901_PersEducNat_0000.xml:4: malformed XML/);
  const shown = await run(process.execPath, ['--import', 'tsx', CLI, 'directory', 'show', '1000001', '--data', data]);
  t.match(JSON.parse(shown.stdout), { id: '1000001', level: '6e', role: 'pupil', profile: 'college' });
  t.notMatch(shown.stdout, /Secret/, 'names are not shown');

  // vigie check --user: the directory's profile instead of the address's.
  const lists = writeLists(tmp(), TEST_LISTS);
  const check = async (...args: string[]) => JSON.parse((await run(process.execPath, ['--import', 'tsx', CLI, 'check', 'http://adult.test/', '--json', '--data', data, '--lists', lists, ...args])).stdout);
  t.match(await check('--user', '1000001'), { action: 'block', profile: 'college', category: 'adult', user: { id: '1000001', level: '6e', profile: 'college' } });
  t.match(await check('--client', '127.0.0.5', '--user', '1000001'), { action: 'block', profile: 'college' }, 'the user wins over the staff address');
  t.match(await check('--client', '127.0.0.5'), { action: 'allow', profile: 'staff' });
  t.match(await check('--client', '127.0.0.5', '--user', '1000002'), { action: 'allow', profile: 'staff', user: { id: '1000002', level: null, profile: null } }, 'a user without a known level: the address decides');
  const text = await run(process.execPath, ['--import', 'tsx', CLI, 'check', 'http://adult.test/', '--data', data, '--lists', lists, '--user', '1000001']);
  t.match(text.stdout, /user: {5}1000001 \(pupil, 6e\) → profile college from the directory/);
});
