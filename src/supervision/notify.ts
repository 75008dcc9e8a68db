import type { VigieConfig } from '../config/types.js';

/** What one webhook said: its status, or why it could not be reached. The URL's query (a secret, often) is left out. */
export interface Delivery {
  url: string;
  ok: boolean;
  status: number;
  error?: string;
}

const TIMEOUT_MS = 10_000;

/** Scheme, host, port and path of a webhook URL: what the audit and the answers may show. */
const shownUrl = (u: string): string => {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return '(invalid url)';
  }
};

/**
 * One JSON POST per event to every `notifications.webhooks` URL (in parallel, each bounded in
 * time). Never throws: each delivery says how it went.
 */
export async function notify(config: VigieConfig, event: Record<string, unknown>): Promise<Delivery[]> {
  const body = JSON.stringify({ gateway: config.proxyName, at: new Date().toISOString(), ...event });
  return Promise.all(
    config.notifications.webhooks.map(async (url): Promise<Delivery> => {
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'vigie' }, body, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
        await res.arrayBuffer().catch(() => undefined);
        return { url: shownUrl(url), ok: res.ok, status: res.status };
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code;
        return { url: shownUrl(url), ok: false, status: 0, error: cause ?? (e as Error).name };
      }
    }),
  );
}
