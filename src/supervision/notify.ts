import { readFile } from 'node:fs/promises';
import type { Severity, SmtpConfig, VigieConfig } from '../config/types.js';
import { formatSyslog, sendSyslog } from './syslog.js';

/** What one channel said: its status, or why it could not be reached. A URL's query (a secret, often) is left out. */
export interface Delivery {
  /** `https://host/path` for a webhook, `smtp://host:port`, `syslog+udp://host:port`. */
  url: string;
  ok: boolean;
  /** HTTP status for a webhook; 250 for mail the relay took; 0 otherwise. */
  status: number;
  error?: string;
}

/** An event for the notifications: `kind` names it (`report.escalated`, `alert.safeguarding`, `security.malware`...). */
export type NotifiedEvent = { kind: string; severity: Severity } & Record<string, unknown>;

const TIMEOUT_MS = 10_000;
const RANK: Record<Severity, number> = { info: 0, notice: 1, warning: 2, error: 3, critical: 4 };
export const atLeast = (s: Severity, min: Severity): boolean => RANK[s] >= RANK[min];

/** Scheme, host, port and path of a webhook URL: what the audit and the answers may show. */
const shownUrl = (u: string): string => {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return '(invalid url)';
  }
};

const hostPort = (h: string, p: number) => (h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`);

async function postWebhook(url: string, body: string): Promise<Delivery> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'vigie' }, body, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
    await res.arrayBuffer().catch(() => undefined);
    return { url: shownUrl(url), ok: res.ok, status: res.status };
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    return { url: shownUrl(url), ok: false, status: 0, error: cause ?? (e as Error).name };
  }
}

/** The subject line: French first, then the kind, the profile and what it is about. */
function subjectOf(gateway: string, e: NotifiedEvent): string {
  const what = typeof e.title === 'string' ? e.title : e.kind;
  return `[Vigie ${gateway}] ${e.severity.toUpperCase()} ${what}`.replace(/[\r\n]+/g, ' ').slice(0, 200);
}

async function sendMail(smtp: SmtpConfig, gateway: string, e: NotifiedEvent, json: string): Promise<Delivery> {
  const url = `smtp://${hostPort(smtp.host, smtp.port)}`;
  try {
    // The password is read when needed and handed to nodemailer only: it is in no log line nor answer.
    const pass = smtp.passwordFile ? (await readFile(smtp.passwordFile, 'utf8')).replace(/\r?\n$/, '') : undefined;
    const ca = smtp.caFile ? await readFile(smtp.caFile, 'utf8') : undefined;
    // Imported when a mail goes out: proxy threads load this module (alerts) and never send mail.
    const { createTransport } = await import('nodemailer');
    const transport = createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure ?? false,
      requireTLS: smtp.requireTls ?? false,
      ...(smtp.user ? { auth: { user: smtp.user, pass } } : {}),
      ...(ca ? { tls: { ca } } : {}),
      connectionTimeout: TIMEOUT_MS,
      greetingTimeout: TIMEOUT_MS,
      socketTimeout: TIMEOUT_MS,
      logger: false,
    });
    const text = typeof e.text === 'string' ? `${e.text}\n\n${json}\n` : `${json}\n`;
    await transport.sendMail({ from: smtp.from, to: smtp.to, subject: subjectOf(gateway, e), text });
    transport.close();
    return { url, ok: true, status: 250 };
  } catch (err) {
    const x = err as { code?: string; responseCode?: number };
    return { url, ok: false, status: x.responseCode ?? 0, error: x.code ?? (err as Error).name };
  }
}

/**
 * One event to every configured channel, in parallel, each bounded in time: a JSON POST to each
 * `notifications.webhooks` URL, a mail through `smtp`, an RFC 5424 message to `syslog` (these two
 * only at or above their `minSeverity`). Never throws: each delivery says how it went.
 */
export async function notify(config: VigieConfig, event: NotifiedEvent): Promise<Delivery[]> {
  const n = config.notifications;
  const full = { gateway: config.proxyName, at: new Date().toISOString(), ...event };
  const body = JSON.stringify(full);
  const jobs: Promise<Delivery>[] = n.webhooks.map((url) => postWebhook(url, body));
  if (n.smtp && atLeast(event.severity, n.smtp.minSeverity ?? 'warning')) jobs.push(sendMail(n.smtp, config.proxyName, event, JSON.stringify(full, null, 2)));
  const sl = n.syslog;
  if (sl && atLeast(event.severity, sl.minSeverity ?? 'info')) {
    const url = `syslog+${sl.protocol}://${hostPort(sl.host, sl.port)}`;
    jobs.push(
      sendSyslog(sl, formatSyslog(full, sl.facility), TIMEOUT_MS).then(
        (): Delivery => ({ url, ok: true, status: 0 }),
        (e: NodeJS.ErrnoException): Delivery => ({ url, ok: false, status: 0, error: e.code ?? e.message }),
      ),
    );
  }
  return Promise.all(jobs);
}

/** Whether any channel is configured (an escalation needs one). */
export const hasChannel = (config: VigieConfig): boolean => config.notifications.webhooks.length > 0 || config.notifications.smtp !== null || config.notifications.syslog !== null;
