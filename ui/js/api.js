// SPDX-License-Identifier: MIT
// The management API client: every request goes to /api/ with HTTP basic
// credentials in the Authorization header, as RabbitMQ's UI sends them.
// The credentials live in sessionStorage (gone when the tab closes), never
// in a URL or a cookie, so a foreign page has nothing to ride (no CSRF).

const KEY = 'warren.credentials';

export class ApiError extends Error {
  constructor(status, error, reason) {
    super(reason || error || ('HTTP ' + status));
    this.status = status;
    this.error = error;
  }
}

function base64Utf8(text) {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function setCredentials(user, password) {
  sessionStorage.setItem(KEY, base64Utf8(user + ':' + password));
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
}

export function hasCredentials() {
  return sessionStorage.getItem(KEY) !== null;
}

// A path segment: a vhost "/" is "%2F", as the API wants it.
export const seg = (s) => encodeURIComponent(s);

// method, path under /api, optional JSON body, optional extra headers.
// Resolves to the parsed JSON reply (null for none); rejects with ApiError.
export async function api(method, path, body, headers) {
  const h = Object.assign({ Authorization: 'Basic ' + (sessionStorage.getItem(KEY) || '') }, headers || {});
  const init = { method, headers: h, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch('/api' + path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = { error: 'bad_reply', reason: text.slice(0, 200) };
    }
  }
  if (!res.ok) throw new ApiError(res.status, data && data.error, data && data.reason);
  return data;
}

export const get = (path) => api('GET', path);

// A list with RabbitMQ's pagination: {items, page, page_count, filtered_count,
// item_count, total_count}. q: {page, page_size, name, use_regex, sort,
// sort_reverse, columns}.
export function getPage(path, q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  return get(path + '?' + p.toString());
}
