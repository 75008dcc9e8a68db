// Legal requests (requisition role): an export needs a reference and a time range. The API
// writes the audit entry before the first byte; the page shows what was recorded and the export's
// SHA-256 fingerprint, to be written on the requisition's answer.
import { useState } from 'preact/hooks';
import { apiText, query } from '../api.js';
import { t, fmtNum, addTexts } from '../i18n.js';
import { html, ErrorBox, Field, Select, formData } from '../ui.js';
import { localToMs, msToLocal } from './journal.js';

addTexts(
  { exportHead: 'Tête de la chaîne atteinte par l’export (à noter sur la réponse ; `vigie journal verify --head` la vérifie)' },
  { exportHead: 'Chain head the export reached (write it on the answer; `vigie journal verify --head` checks it)' },
);

async function sha256(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function Requisition() {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const v = formData(e);
    const filter = { from: localToMs(v.from), to: localToMs(v.to), client: v.client.trim(), user: v.user.trim(), host: v.host.trim() };
    setError(null);
    setResult(null);
    setBusy(true);
    try {
      const started = new Date();
      const { text, headers } = await apiText(`/journal/export${query({ ...filter, reference: v.reference.trim(), format: v.format })}`);
      const lines = text.split('\n').filter(Boolean).length - (v.format === 'csv' ? 2 : 1);
      // The export's last line names the chain head it reached (`vigie journal verify --head` proves it later).
      const last = text.trimEnd().split('\n').pop() || '';
      const head = v.format === 'csv' ? (/^# chain head (\S+)/.exec(last) || [])[1] : (() => { try { return JSON.parse(last).chainHead; } catch { return undefined; } })();
      const name = (/filename="([^"]+)"/.exec(headers.get('content-disposition') || '') || [])[1] || `vigie-export.${v.format}`;
      const url = URL.createObjectURL(new Blob([text], { type: headers.get('content-type') || 'text/plain' }));
      setResult({ lines, head, digest: await sha256(text), url, name, audit: { time: started.toISOString(), action: 'journal.export', reference: v.reference.trim(), filter, format: v.format } });
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const now = Date.now();
  return html`<section aria-labelledby="req-h"><h2 id="req-h">${t('requisition')}</h2>
    <form class="inline" id="export-form" onSubmit=${submit}>
      <${Field} label=${t('reference')} name="reference" required minlength="3" maxlength="200" />
      <${Field} label=${t('from')} name="from" type="datetime-local" required value=${msToLocal(now - 86_400_000)} />
      <${Field} label=${t('to')} name="to" type="datetime-local" required value=${msToLocal(now + 60_000)} />
      <${Field} label=${t('client')} name="client" />
      <${Field} label=${t('user')} name="user" />
      <${Field} label=${t('host')} name="host" />
      <${Select} label=${t('format')} name="format" options=${[['csv', 'CSV'], ['jsonl', 'JSON lines']]} />
      <button type="submit" disabled=${busy}>${busy ? t('loading') : t('export')}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${result ? html`<div id="export-result" role="status">
      <p>${t('exported', fmtNum(result.lines))} — <a href=${result.url} download=${result.name}>${t('download')} ${result.name}</a></p>
      <dl class="facts">
        <dt>${t('exportHead')}</dt><dd><code class="wrap" id="export-head">${result.head || '—'}</code></dd>
        <dt>${t('chainHead')}</dt><dd><code class="wrap" id="export-digest">SHA-256 ${result.digest}</code></dd>
        <dt>${t('auditEntry')}</dt><dd><code class="wrap" id="export-audit">${JSON.stringify(result.audit)}</code></dd>
      </dl>
    </div>` : null}
  </section>`;
}
