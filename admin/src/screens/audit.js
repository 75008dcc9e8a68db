// The audit log with filters (time range, action prefix, actor), newest first.
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { t, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Field, Table, formData } from '../ui.js';
import { localToMs } from './journal.js';

export function Audit() {
  const [filter, setFilter] = useState({});
  const [data, error] = useLoad(() => api('GET', `/audit${query({ ...filter, limit: 200 })}`), [JSON.stringify(filter)]);
  const submit = (e) => {
    e.preventDefault();
    const v = formData(e);
    const ms = (x) => (localToMs(x) === undefined ? undefined : new Date(localToMs(x)).toISOString());
    setFilter({ from: ms(v.from), to: ms(v.to), action: v.action.trim(), actor: v.actor.trim() });
  };
  return html`<section aria-labelledby="audit-h"><h2 id="audit-h">${t('audit')}</h2>
    <form class="inline" id="audit-form" onSubmit=${submit}>
      <${Field} label=${t('from')} name="from" type="datetime-local" />
      <${Field} label=${t('to')} name="to" type="datetime-local" />
      <${Field} label=${t('action')} name="action" placeholder="journal.export" />
      <${Field} label=${t('actor')} name="actor" />
      <button type="submit">${t('filter')}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${data ? html`<${Table} label=${t('audit')} head=${[t('time'), t('actor'), t('source'), t('action'), t('target'), t('outcome'), '']}
      rows=${data.entries.map((e) => [fmtTime(Date.parse(e.time)), e.actor, e.source, e.action, e.target || '', `${e.outcome} ${e.status || ''}`,
        html`<code class="details">${e.details ? JSON.stringify(e.details) : ''}</code>`])} />` : html`<p>${t('loading')}</p>`}
  </section>`;
}
