import { userInfo } from 'node:os';
import { AuditLog, type AuditEntry } from '../supervision/audit.js';

/**
 * The operator at the machine, as the audit names them: the OS account running the command (not
 * $USER, which anyone sets), and who called sudo when that is how it runs.
 */
export function cliUser(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${process.getuid?.() ?? '?'}`;
  }
  const sudo = process.env.SUDO_USER;
  return sudo && sudo !== user ? `cli (${sudo} via sudo as ${user})` : `cli (${user})`;
}

/** What is done on the machine (tokens, exports, verifies, backups) goes in the same audit log as the API's. */
export const auditCli = (dataDir: string, action: string, target: string | null, details: Record<string, unknown>, outcome: AuditEntry['outcome'] = 'ok', retentionDays?: number): Promise<void> =>
  new AuditLog(dataDir, retentionDays).record({ actor: cliUser(), tokenId: null, role: null, source: 'cli', action, target, outcome, status: 0, details });
