import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import type { Severity, SyslogConfig } from '../config/types.js';

/** RFC 5424 severity numbers of Vigie's severities. */
export const SYSLOG_SEVERITY: Record<Severity, number> = { critical: 2, error: 3, warning: 4, notice: 5, info: 6 };

/** RFC 5424 header fields are PRINTUSASCII without spaces, bounded; anything else becomes `_`. */
const token = (s: string, max: number): string => (s.replace(/[^\x21-\x7e]/g, '_').slice(0, max) || '-');
/** SD-PARAM values escape `"`, `\` and `]` (RFC 5424 §6.3.3). */
const sdValue = (s: string): string => s.replace(/["\\\]]/g, (c) => '\\' + c);

/**
 * One RFC 5424 message: `<PRI>1 TIME HOST vigie PID MSGID [vigie@32473 ...] BOM{json}`. MSGID is the
 * event's kind; the structured data repeats kind and severity so a collector can filter without
 * parsing the JSON; the message is the event as JSON (UTF-8, hence the BOM the RFC asks for).
 * 32473 is the RFC's example enterprise number: Vigie has none registered.
 */
export function formatSyslog(event: { kind: string; severity: Severity } & Record<string, unknown>, facility = 16, at = new Date(), host = hostname()): string {
  const pri = facility * 8 + SYSLOG_SEVERITY[event.severity];
  const sd = `[vigie@32473 kind="${sdValue(event.kind)}" severity="${event.severity}"]`;
  return `<${pri}>1 ${at.toISOString()} ${token(host, 255)} vigie ${process.pid} ${token(event.kind, 32)} ${sd} \uFEFF${JSON.stringify(event)}`;
}

/** Sends one message: a UDP datagram, or over TCP with RFC 6587 octet counting; bounded in time. */
export function sendSyslog(cfg: SyslogConfig, message: string, timeoutMs: number): Promise<void> {
  const data = Buffer.from(message, 'utf8');
  return new Promise((resolve, reject) => {
    if (cfg.protocol === 'udp') {
      const sock = createSocket(cfg.host.includes(':') ? 'udp6' : 'udp4');
      sock.once('error', (e) => (sock.close(), reject(e)));
      sock.send(data, cfg.port, cfg.host, (e) => (sock.close(), e ? reject(e) : resolve()));
      return;
    }
    const sock = connect({ host: cfg.host, port: cfg.port });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error('timeout')));
    sock.once('error', reject);
    sock.once('connect', () => sock.end(Buffer.concat([Buffer.from(`${data.length} `), data]), () => resolve()));
  });
}
