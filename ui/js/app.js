// SPDX-License-Identifier: MIT
// The management UI's shell: login, the navigation a user's tags allow, the
// hash router (#/queues/%2F/jobs) and the refresh loop that updates the
// current page. Each refresh is timed with the Performance API
// ("refresh:<page>" measures), which tests/browser reads.
import { api, get, setCredentials, clearCredentials, hasCredentials } from './api.js';
import { h, replace, notify, field, select } from './dom.js';
import * as overview from './overview.js';
import * as connections from './connections.js';
import * as exchanges from './exchanges.js';
import * as queues from './queues.js';
import * as admin from './admin.js';

const ROUTES = {
  '': overview.render,
  connections: (ctx, p) => (p.length ? connections.detail(ctx, p[0]) : connections.list(ctx)),
  channels: (ctx) => connections.channels(ctx),
  exchanges: (ctx, p) => (p.length >= 2 ? exchanges.detail(ctx, p[0], p[1]) : exchanges.list(ctx)),
  queues: (ctx, p) => (p.length >= 2 ? queues.detail(ctx, p[0], p[1]) : queues.list(ctx)),
  admin: (ctx, p) => admin.render(ctx, p[0] || 'users'),
};

const NAV = [['', 'Overview'], ['connections', 'Connections'], ['channels', 'Channels'], ['exchanges', 'Exchanges'],
  ['queues', 'Queues'], ['admin', 'Admin']];

const state = { ctx: null, refresh: null, timer: null, busy: false, interval: 5000, route: '' };

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter((s, i) => i === 0 || s !== '');
  return parts.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch (e) {
      return s;
    }
  });
}

async function tick() {
  if (!state.refresh || state.busy || document.hidden) return;
  state.busy = true;
  const name = 'refresh:' + (state.route || 'overview');
  performance.mark(name + ':start');
  try {
    await state.refresh();
    performance.measure(name, name + ':start');
  } catch (e) {
    if (e.status === 401 && e.error === 'not_authorized') return logout('Your session ended: ' + e.message);
    notify(e.message, true);
  } finally {
    performance.clearMarks(name + ':start');
    state.busy = false;
  }
}

function show() {
  const [top, ...rest] = route();
  const ctx = state.ctx;
  const main = document.getElementById('main');
  state.route = top || '';
  for (const a of document.querySelectorAll('nav.tabs a')) {
    a.classList.toggle('active', a.dataset.route === state.route);
    if (a.dataset.route === state.route) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  ctx.main = replace(main);
  const page = ROUTES[state.route];
  state.refresh = null;
  if (!page) {
    main.appendChild(h('p', { class: 'error' }, 'No such page.'));
    return;
  }
  state.refresh = page(ctx, rest) || null;
  tick();
}

function setTimer() {
  clearInterval(state.timer);
  state.timer = state.interval > 0 ? setInterval(tick, state.interval) : null;
}

function header(ctx) {
  const interval = select('refresh', [['5000', 'Refresh every 5 s'], ['10000', 'every 10 s'], ['30000', 'every 30 s'],
    ['0', 'Do not refresh']], String(state.interval));
  interval.setAttribute('aria-label', 'Refresh interval');
  interval.addEventListener('change', () => { state.interval = Number(interval.value); setTimer(); });
  const vhost = select('vhost', [['', 'All vhosts'], ...ctx.vhosts.map((v) => [v, v])], ctx.vhost);
  vhost.setAttribute('aria-label', 'Virtual host');
  vhost.addEventListener('change', () => { ctx.vhost = vhost.value; show(); });
  const nav = NAV.filter(([r]) => r !== 'admin' || ctx.isAdmin || ctx.isPolicymaker);
  return [
    h('div', { class: 'brand' }, h('strong', null, 'warren'), ' management'),
    h('nav', { class: 'tabs', 'aria-label': 'Pages' }, nav.map(([r, label]) =>
      h('a', { href: '#/' + r, 'data-route': r, id: 'nav-' + (r || 'overview') }, label))),
    h('div', { class: 'session' }, vhost, interval,
      h('span', { class: 'who' }, 'User ', h('strong', { id: 'whoami' }, ctx.user.name),
        ctx.user.tags.length ? ' (' + ctx.user.tags.join(', ') + ')' : ''),
      h('button', { type: 'button', id: 'logout', on: { click: () => logout() } }, 'Log out')),
  ];
}

async function start() {
  const user = await get('/whoami');
  const tags = Array.isArray(user.tags) ? user.tags : String(user.tags || '').split(',').filter((t) => t);
  user.tags = tags;
  const vhosts = (await get('/vhosts?columns=name')).map((v) => v.name);
  const ctx = {
    user, vhosts, vhost: '',
    isAdmin: tags.includes('administrator'),
    isMonitor: tags.includes('administrator') || tags.includes('monitoring'),
    isPolicymaker: tags.includes('administrator') || tags.includes('policymaker'),
  };
  state.ctx = ctx;
  replace(document.getElementById('header'), header(ctx));
  window.addEventListener('hashchange', show);
  setTimer();
  show();
}

function logout(reason) {
  clearCredentials();
  clearInterval(state.timer);
  if (reason) sessionStorage.setItem('warren.logout', reason);
  location.hash = '';
  location.reload();
}

function loginForm() {
  const user = h('input', { type: 'text', name: 'username', id: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { type: 'password', name: 'password', id: 'password', autocomplete: 'current-password' });
  const err = h('p', { class: 'error', id: 'login-error', role: 'alert' });
  const reason = sessionStorage.getItem('warren.logout');
  sessionStorage.removeItem('warren.logout');
  if (reason) err.textContent = reason;
  const form = h('form', { id: 'login', class: 'login' }, h('h1', null, 'warren management'),
    field('Username', user), field('Password', pass), h('button', { type: 'submit' }, 'Log in'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setCredentials(user.value, pass.value);
    try {
      await api('GET', '/whoami');
    } catch (e) {
      clearCredentials();
      err.textContent = e.status === 401 ? (e.error === 'not_authorised' ? e.message : 'Login failed') : e.message;
      return;
    }
    replace(document.getElementById('main'));
    start().catch((e) => notify(e.message, true));
  });
  replace(document.getElementById('main'), form);
  user.focus();
}

window.addEventListener('DOMContentLoaded', () => {
  if (!hasCredentials()) return loginForm();
  start().catch((e) => {
    clearCredentials();
    loginForm();
    notify(e.message, true);
  });
});
