// SPDX-License-Identifier: MIT
// Admin: users, virtual hosts, permissions, policies, limits, definitions
// export and import. Administrators see every tab; policymakers only
// policies and limits; the API enforces the same (this only hides).
import { api, get, seg } from './api.js';
import { h, replace, fmtNum, kvTable, simpleTable, confirmButton, act, field, select, argEditor, notify } from './dom.js';

const TABS = [['users', 'Users', true], ['vhosts', 'Virtual hosts', true], ['permissions', 'Permissions', true],
  ['policies', 'Policies', false], ['limits', 'Limits', false], ['definitions', 'Definitions', true]];
const PAGES = { users, vhosts, permissions, policies, limits, definitions };

export function render(ctx, tab) {
  if (!ctx.isAdmin && !ctx.isPolicymaker) {
    replace(ctx.main, h('h1', null, 'Admin'), h('p', { class: 'error', id: 'not-authorised' },
      'Not authorised: the Admin pages need the administrator or policymaker tag.'));
    return null;
  }
  const tabs = TABS.filter(([, , adminOnly]) => ctx.isAdmin || !adminOnly);
  if (!tabs.some(([t]) => t === tab)) tab = tabs[0][0];
  const body = h('div', { id: 'admin-' + tab });
  replace(ctx.main, h('h1', null, 'Admin'),
    h('nav', { class: 'subtabs', 'aria-label': 'Admin sections' }, tabs.map(([t, label]) =>
      h('a', { href: '#/admin/' + t, class: t === tab ? 'active' : null, 'aria-current': t === tab ? 'page' : null, id: 'tab-' + t }, label))),
    body);
  return PAGES[tab](ctx, body);
}

const TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'impersonator'];

function users(ctx, body) {
  const list = h('div');
  const refresh = async () => {
    const us = await get('/users');
    replace(list, simpleTable([{ key: 'name', label: 'Name' },
      { label: 'Tags', render: (u) => (Array.isArray(u.tags) ? u.tags.join(', ') : u.tags) },
      { label: 'Has password', render: (u) => (u.password_hash ? '\u2713' : '') },
      { label: '', render: (u) => u.name === ctx.user.name ? '' : confirmButton('Delete', () => act(async () => {
        await api('DELETE', '/users/' + seg(u.name));
        await refresh();
      }, 'User deleted'), 'small') }], us));
  };
  const name = h('input', { type: 'text', name: 'username', id: 'user-name', required: true });
  const pass = h('input', { type: 'password', name: 'password', id: 'user-password', autocomplete: 'new-password' });
  const tags = h('input', { type: 'text', name: 'tags', id: 'user-tags' });
  const form = h('form', { class: 'panel', id: 'add-user' }, h('h2', null, 'Add or update a user'),
    field('Username', name), field('Password (empty: keep)', pass), field('Tags (comma-separated)', tags),
    h('div', { class: 'shortcuts' }, 'Set: ', TAGS.map((t) => h('button', { type: 'button', class: 'link', on: { click: () => {
      const cur = tags.value.split(',').map((s) => s.trim()).filter((s) => s && s !== t);
      tags.value = cur.concat([t]).join(', ');
    } } }, t))),
    h('button', { type: 'submit' }, 'Add / update user'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      const b = { tags: tags.value.split(',').map((s) => s.trim()).filter((s) => s).join(',') };
      if (pass.value) b.password = pass.value;
      await api('PUT', '/users/' + seg(name.value), b);
      pass.value = '';
      await refresh();
    }, 'User saved');
  });
  replace(body, list, form);
  return refresh;
}

function vhosts(ctx, body) {
  const list = h('div');
  replace(body, list, h('p', { class: 'muted' }, 'Virtual hosts are declared in warren\u2019s configuration file.'));
  return async () => {
    replace(list, simpleTable([{ key: 'name', label: 'Name' }, { key: 'messages_ready', label: 'Ready', num: true },
      { key: 'messages_unacknowledged', label: 'Unacked', num: true }, { key: 'messages', label: 'Total', num: true }],
    await get('/vhosts')));
  };
}

function permissions(ctx, body) {
  const list = h('div');
  const user = select('user', []);
  const vhost = select('vhost', ctx.vhosts, ctx.vhost || ctx.vhosts[0]);
  const re = (n) => h('input', { type: 'text', name: n, value: '.*' });
  const [conf, write, read] = [re('configure'), re('write'), re('read')];
  const refresh = async () => {
    const [perms, us] = await Promise.all([get('/permissions'), get('/users')]);
    const cur = user.value;
    replace(user, us.map((u) => h('option', { value: u.name, selected: u.name === cur }, u.name)));
    replace(list, simpleTable([{ key: 'user', label: 'User' }, { key: 'vhost', label: 'Vhost' },
      { key: 'configure', label: 'Configure' }, { key: 'write', label: 'Write' }, { key: 'read', label: 'Read' },
      { label: '', render: (p) => confirmButton('Clear', () => act(async () => {
        await api('DELETE', '/permissions/' + seg(p.vhost) + '/' + seg(p.user));
        await refresh();
      }, 'Permission cleared'), 'small') }], perms));
  };
  const form = h('form', { class: 'panel', id: 'set-permission' }, h('h2', null, 'Set permission'), field('User', user),
    field('Virtual host', vhost), field('Configure regexp', conf), field('Write regexp', write), field('Read regexp', read),
    h('button', { type: 'submit' }, 'Set permission'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      await api('PUT', '/permissions/' + seg(vhost.value) + '/' + seg(user.value),
        { configure: conf.value, write: write.value, read: read.value });
      await refresh();
    }, 'Permission set');
  });
  replace(body, list, form);
  return refresh;
}

const POLICY_KEYS = [['max-length', 'number'], ['max-length-bytes', 'number'], ['overflow', 'string'],
  ['message-ttl', 'number'], ['expires', 'number'], ['dead-letter-exchange', 'string'],
  ['dead-letter-routing-key', 'string'], ['delivery-limit', 'number'], ['consumer-timeout', 'number'],
  ['queue-mode', 'string'], ['alternate-exchange', 'string']];

function policies(ctx, body) {
  const list = h('div');
  const refresh = async () => {
    const ps = await get(ctx.vhost ? '/policies/' + seg(ctx.vhost) : '/policies');
    replace(list, simpleTable([{ key: 'vhost', label: 'Vhost' }, { key: 'name', label: 'Name' },
      { key: 'pattern', label: 'Pattern' }, { key: 'apply-to', label: 'Apply to' },
      { key: 'definition', label: 'Definition' }, { key: 'priority', label: 'Priority', num: true },
      { label: '', render: (p) => confirmButton('Delete', () => act(async () => {
        await api('DELETE', '/policies/' + seg(p.vhost) + '/' + seg(p.name));
        await refresh();
      }, 'Policy deleted'), 'small') }], ps));
  };
  const vhost = select('vhost', ctx.vhosts, ctx.vhost || ctx.vhosts[0]);
  const name = h('input', { type: 'text', name: 'name', required: true });
  const pattern = h('input', { type: 'text', name: 'pattern', required: true });
  const applyTo = select('apply-to', [['all', 'Exchanges and queues'], ['queues', 'Queues'], ['exchanges', 'Exchanges']]);
  const priority = h('input', { type: 'number', name: 'priority', value: '0' });
  const def = argEditor(POLICY_KEYS, 'Definition');
  const form = h('form', { class: 'panel', id: 'add-policy' }, h('h2', null, 'Add or update a policy'),
    field('Virtual host', vhost), field('Name', name), field('Pattern', pattern), field('Apply to', applyTo),
    field('Priority', priority), def.el, h('button', { type: 'submit' }, 'Add / update policy'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      await api('PUT', '/policies/' + seg(vhost.value) + '/' + seg(name.value), { pattern: pattern.value,
        'apply-to': applyTo.value, priority: Number(priority.value), definition: def.value() });
      await refresh();
    }, 'Policy saved');
  });
  replace(body, list, ctx.isPolicymaker ? form : null);
  return refresh;
}

function limits(ctx, body) {
  const list = h('div');
  replace(body, h('h2', null, 'User limits'), list, h('p', { class: 'muted' },
    'User limits and the broker\u2019s limits are set in warren\u2019s configuration file (docs/CONFIGURATION.md); ' +
    'per-vhost limits (/api/vhost-limits) are not served.'));
  if (!ctx.isAdmin) return null;
  return async () => {
    const us = await get('/users');
    replace(list, simpleTable([{ key: 'name', label: 'User' },
      { label: 'Max connections', render: (u) => { const v = (u.limits || {})['max-connections']; return v === undefined ? 'no limit' : fmtNum(v); } }],
    us));
  };
}

function definitions(ctx, body) {
  const vhost = select('vhost', [['', 'All virtual hosts'], ...ctx.vhosts.map((v) => [v, v])], ctx.vhost);
  vhost.setAttribute('aria-label', 'Definitions of');
  const path = () => '/definitions' + (vhost.value ? '/' + seg(vhost.value) : '');
  const file = h('input', { type: 'file', name: 'file', id: 'definitions-file', accept: '.json,application/json' });
  const result = h('p', { class: 'result', id: 'import-result', role: 'status' });
  const exportBtn = h('button', { type: 'button', id: 'export' }, 'Download broker definitions');
  exportBtn.addEventListener('click', () => act(async () => {
    const defs = await get(path());
    const url = URL.createObjectURL(new Blob([JSON.stringify(defs, null, 2)], { type: 'application/json' }));
    const a = h('a', { href: url, download: 'warren-definitions' + (vhost.value ? '-' + vhost.value.replace(/[^\w.-]/g, '_') : '') + '.json' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }));
  const form = h('form', { class: 'panel', id: 'import' }, h('h2', null, 'Import definitions'),
    field('Definitions file', file), h('button', { type: 'submit' }, 'Upload broker definitions'), result);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      if (!file.files.length) throw new Error('Choose a definitions file first');
      let defs;
      try {
        defs = JSON.parse(await file.files[0].text());
      } catch (e) {
        throw new Error('Not a JSON file: ' + e.message);
      }
      await api('POST', path(), defs);
      result.textContent = 'Definitions imported from ' + file.files[0].name + '.';
      notify(result.textContent, false);
    });
  });
  replace(body, field('Virtual host', vhost), h('div', { class: 'panel' }, h('h2', null, 'Export definitions'), exportBtn), form,
    kvTable([['Note', 'An import adds and updates objects; it never deletes what the file does not name.']]));
  return null;
}
