// Small shared pieces: htm bound to Preact, an error line, a table that scrolls inside its box.
import { h } from 'preact';
import { useEffect, useState, useCallback } from 'preact/hooks';
import htm from 'htm';
import { t } from './i18n.js';

export const html = htm.bind(h);

/** Loads `fn()` on mount and when `deps` change; returns [data, error, reload]. */
export function useLoad(fn, deps = []) {
  const [state, setState] = useState({ data: null, error: null });
  const reload = useCallback(() => {
    fn().then((data) => setState({ data, error: null }), (error) => setState({ data: null, error }));
  }, deps);
  useEffect(reload, [reload]);
  return [state.data, state.error, reload];
}

/** An API error for people: the message, and each problem with its field and entry. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">
    <p>${error.status ? `${error.status} : ` : ''}${error.message}</p>
    ${error.problems && error.problems.length ? html`<ul>${error.problems.map((p) => html`<li>${p.field}${p.entry ? ` (${p.entry})` : ''} : ${p.message}</li>`)}</ul>` : null}
  </div>`;
}

export function Notice({ text }) {
  return text ? html`<p class="notice" role="status">${text}</p>` : null;
}

/** A table inside a scrolling box, so a wide table never widens the page. */
export function Table({ head, rows, label }) {
  if (!rows || !rows.length) return html`<p>${t('nothingHere')}</p>`;
  return html`<div class="scroll" role="region" aria-label=${label} tabindex="0"><table>
    <thead><tr>${head.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

/** A labelled input; the label wraps the control so both are one click target. */
export function Field({ label, ...props }) {
  return html`<label class="field"><span>${label}</span><input ...${props} /></label>`;
}

export function Select({ label, options, ...props }) {
  return html`<label class="field"><span>${label}</span><select ...${props}>${options.map(([v, text]) => html`<option value=${v}>${text}</option>`)}</select></label>`;
}

/** Turns a form's fields into an object of strings. */
export const formData = (e) => Object.fromEntries(new FormData(e.currentTarget).entries());
