import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, tmp } from './helpers.js';

/**
 * A real OpenLDAP `slapd` for the authentication tests: its own config, database and LDIF under a
 * temporary folder, listening on a loopback ephemeral port, started and stopped by the test (the
 * distribution's slapd service is never used). Test users carry ENT-like attributes; one is locked
 * by the password policy overlay (pwdAccountLockedTime), as a school's LDAP locks an account.
 */

export const SLAPD = '/usr/sbin/slapd';
export const SLAPADD = '/usr/sbin/slapadd';
export const SUFFIX = 'dc=ecole,dc=test';
export const PEOPLE = `ou=people,${SUFFIX}`;

export interface LdapTestUser {
  uid: string;
  password: string;
  /** The AAF id, as a Scribe-like LDAP carries it (here in employeeNumber). */
  aafId?: string;
  locked?: boolean;
}

export const TEST_USERS: LdapTestUser[] = [
  { uid: 'eleve.cm1', password: 'Soleil-2026', aafId: '1000001' },
  { uid: 'prof.ens', password: 'Tableau noir!', aafId: '2000001' },
  { uid: 'bloque', password: 'Verrou-42', aafId: '1000002', locked: true },
  { uid: 'sans.id', password: 'Pas-de-jointure' },
];

export interface SlapdHandle {
  url: string;
  port: number;
  dir: string;
  /** A service account allowed to search people (search-then-bind mode). */
  service: { dn: string; password: string };
  stop(): Promise<void>;
}

/** {SSHA} as slappasswd writes it: base64(sha1(password + salt) + salt). */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** Whether this machine can run the LDAP tests (CI installs slapd: there they must not skip). */
export function slapdMissing(): string | false {
  if (existsSync(SLAPD) && existsSync(SLAPADD)) return false;
  if (process.env.CI === 'true') throw new Error('slapd is not installed (add slapd to .ci/apt-packages)');
  return 'slapd is not installed (apt-get install slapd ldap-utils)';
}

function ldif(users: LdapTestUser[], service: { dn: string; password: string }): string {
  const entries = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: ecole\no: Ecole de test`,
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=policies,${SUFFIX}\nobjectClass: organizationalUnit\nou: policies`,
    `dn: cn=default,ou=policies,${SUFFIX}\nobjectClass: person\nobjectClass: pwdPolicy\ncn: default\nsn: policy\npwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0`,
    `dn: ${service.dn}\nobjectClass: person\ncn: vigie\nsn: service\nuserPassword: ${ssha(service.password)}`,
    ...users.map((u) =>
      [
        `dn: uid=${u.uid},${PEOPLE}`,
        'objectClass: inetOrgPerson',
        `uid: ${u.uid}`,
        `cn: ${u.uid}`,
        `sn: ${u.uid}`,
        `userPassword: ${ssha(u.password)}`,
        ...(u.aafId ? [`employeeNumber: ${u.aafId}`] : []),
        ...(u.locked ? ['pwdAccountLockedTime: 000001010000Z'] : []),
      ].join('\n'),
    ),
  ];
  return entries.join('\n\n') + '\n';
}

function config(dir: string): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args

database mdb
maxsize 16777216
suffix "${SUFFIX}"
rootdn "cn=admin,${SUFFIX}"
rootpw ${ssha(randomBytes(12).toString('hex'))}
directory ${dir}/db
overlay ppolicy
ppolicy_default "cn=default,ou=policies,${SUFFIX}"
ppolicy_use_lockout

access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
access to *
  by self read
  by dn.exact="cn=vigie,${SUFFIX}" read
  by * none
`;
}

const connectable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** Starts slapd with the test users; retries on another port if the one picked was taken meanwhile. */
export async function startSlapd(users: LdapTestUser[] = TEST_USERS): Promise<SlapdHandle> {
  const dir = tmp('vigie-slapd-');
  mkdirSync(join(dir, 'db'));
  const service = { dn: `cn=vigie,${SUFFIX}`, password: randomBytes(9).toString('base64url') };
  writeFileSync(join(dir, 'slapd.conf'), config(dir));
  writeFileSync(join(dir, 'data.ldif'), ldif(users, service));
  const add = spawnSync(SLAPADD, ['-f', join(dir, 'slapd.conf'), '-l', join(dir, 'data.ldif')], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`slapadd failed: ${add.stderr}`);
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const url = `ldap://127.0.0.1:${port}`;
    // -d 0: stays in the foreground (so the test owns the process) without debug output.
    const child: ChildProcess = spawn(SLAPD, ['-d', '0', '-f', join(dir, 'slapd.conf'), '-h', `${url}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let exited = false;
    child.once('exit', () => (exited = true));
    for (let i = 0; i < 100 && !exited; i++) {
      if (await connectable(port)) {
        return {
          url,
          port,
          dir,
          service,
          stop: async () => {
            if (!exited) {
              const gone = new Promise((r) => child.once('exit', r));
              child.kill('SIGTERM');
              await gone;
            }
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited) child.kill('SIGKILL');
    if (!/bind|Address already in use/i.test(stderr)) throw new Error(`slapd did not start: ${stderr || readFileSync(join(dir, 'slapd.conf'), 'utf8')}`);
  }
  throw new Error('slapd: no free port after 5 attempts');
}
