import { createSocket } from 'node:dgram';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import t from 'tap';
import { defaultConfig } from '../src/config/defaults.js';
import type { VigieConfig } from '../src/config/types.js';
import { notify } from '../src/supervision/notify.js';
import { formatSyslog } from '../src/supervision/syslog.js';
import { serveLoopback, tmp } from './helpers.js';

t.test('one event to a webhook, an SMTP relay and syslog (UDP, TCP), by severity', async (t) => {
  const dir = tmp();
  const passwordFile = join(dir, 'smtp-password');
  writeFileSync(passwordFile, 's3cret-pw\n', { mode: 0o600 });

  const mails: { from: string; to: string[]; raw: string }[] = [];
  const logins: { user?: string | null; pass?: string | null }[] = [];
  const smtp = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _s, cb) {
      logins.push({ user: auth.username, pass: auth.password });
      if (auth.username === 'vigie' && auth.password === 's3cret-pw') cb(null, { user: 'vigie' });
      else cb(new Error('bad credentials'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ from: (session.envelope.mailFrom as { address: string }).address, to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString() });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  const udp = createSocket('udp4');
  const datagrams: string[] = [];
  udp.on('message', (m) => datagrams.push(m.toString()));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const tcpFrames: string[] = [];
  const tcp = createServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => tcpFrames.push(Buffer.concat(chunks).toString()));
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));

  const posts: any[] = [];
  const hook = await serveLoopback(http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (posts.push(JSON.parse(Buffer.concat(chunks).toString())), res.writeHead(204).end()));
  }));
  t.teardown(async () => {
    await hook.close();
    await new Promise<void>((r) => smtp.close(r));
    udp.close();
    tcp.close();
  });

  const config: VigieConfig = defaultConfig();
  config.proxyName = 'ecole-test';
  config.notifications = {
    webhooks: [`http://127.0.0.1:${hook.port}/hook?key=secret`],
    smtp: { host: '127.0.0.1', port: smtpPort, user: 'vigie', passwordFile, from: 'vigie@ecole.test', to: ['referent@ecole.test', 'rssi@academie.test'], minSeverity: 'warning' },
    syslog: { host: '127.0.0.1', port: (udp.address() as AddressInfo).port, protocol: 'udp' },
  };
  const event = { kind: 'alert.safeguarding', severity: 'warning' as const, title: 'alerte cycle3', profile: 'cycle3', client: '127.0.0.1', count: 5, rule: 'threshold' };
  const out = await notify(config, event);
  t.same(out.map((d) => [d.url, d.ok]), [[`http://127.0.0.1:${hook.port}/hook`, true], [`smtp://127.0.0.1:${smtpPort}`, true], [`syslog+udp://127.0.0.1:${(udp.address() as AddressInfo).port}`, true]], 'each channel took it; the query of the URL is not shown');
  t.match(posts[0], { gateway: 'ecole-test', kind: 'alert.safeguarding', profile: 'cycle3', client: '127.0.0.1', count: 5, rule: 'threshold' });
  t.equal(mails.length, 1);
  t.same(mails[0]!.to, ['referent@ecole.test', 'rssi@academie.test']);
  t.match(mails[0]!.raw, /Subject: \[Vigie ecole-test\] WARNING alerte cycle3/);
  t.match(mails[0]!.raw, /"rule": "threshold"/);
  t.equal(logins[0]!.pass, 's3cret-pw', 'the password came from the file');
  t.notOk(JSON.stringify(out).includes('s3cret'), 'no secret in the deliveries');
  for (let i = 0; i < 50 && !datagrams.length; i++) await new Promise((r) => setTimeout(r, 10));
  t.match(datagrams[0], /^<132>1 \d{4}-\d\d-\d\dT[^ ]+ \S+ vigie \d+ alert\.safeguarding \[vigie@32473 kind="alert\.safeguarding" severity="warning"\] \uFEFF\{/, 'RFC 5424, local0.warning');

  // Below smtp.minSeverity: webhook and syslog only. Syslog over TCP with octet counting.
  config.notifications.syslog = { host: '127.0.0.1', port: (tcp.address() as AddressInfo).port, protocol: 'tcp', facility: 4 };
  const info = await notify(config, { kind: 'report.escalated', severity: 'notice', host: 'x.test' });
  t.equal(info.length, 2, 'no mail for a notice');
  t.equal(mails.length, 1);
  for (let i = 0; i < 50 && !tcpFrames.length; i++) await new Promise((r) => setTimeout(r, 10));
  const m = /^(\d+) (.*)$/s.exec(tcpFrames[0] ?? '');
  t.ok(m && Buffer.byteLength(m[2]!) === Number(m[1]), 'octet-counted frame');
  t.match(m?.[2], /^<37>1 /, 'auth facility (4), notice (5)');

  // A wrong password: the delivery fails, says why, and still shows no secret.
  writeFileSync(passwordFile, 'wrong-pw');
  config.notifications.webhooks = [];
  config.notifications.syslog = null;
  const bad = await notify(config, { kind: 'security.auth', severity: 'error' });
  t.equal(bad[0]!.ok, false);
  t.equal(bad[0]!.error, 'EAUTH');
  t.notOk(JSON.stringify(bad).includes('wrong-pw'));
});

t.test('syslog structured data is escaped, header fields are tokens', async (t) => {
  const line = formatSyslog({ kind: 'a b', severity: 'critical', note: 'x"]\\' }, 16, new Date(0), 'h ost');
  t.match(line, /^<130>1 1970-01-01T00:00:00.000Z h_ost vigie \d+ a_b \[vigie@32473 kind="a b" severity="critical"\] /);
  const sd = formatSyslog({ kind: 'k"]', severity: 'info' }, 16, new Date(0), 'h');
  t.match(sd, /kind="k\\"\\]"/);
});
