// Every call to the supervision API goes through here; the token stays in this tab's sessionStorage.
const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, message, problems) {
    super(message);
    this.status = status;
    this.problems = problems || [];
  }
}

let token = sessionStorage.getItem('vigie-token') || '';
export const setToken = (t) => {
  token = t;
  if (t) sessionStorage.setItem('vigie-token', t);
  else sessionStorage.removeItem('vigie-token');
};
export const hasToken = () => token !== '';

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function send(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

export async function api(method, path, body) {
  const res = await send(method, path, body);
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, (data && data.message) || res.statusText, data && data.problems);
  return data;
}

/** The raw text of an answer (exports). */
export async function apiText(path) {
  const res = await send('GET', path);
  const text = await res.text();
  if (!res.ok) {
    let msg = res.statusText;
    try { msg = JSON.parse(text).message || msg; } catch { /* not JSON */ }
    throw new ApiError(res.status, msg);
  }
  return { text, headers: res.headers };
}
