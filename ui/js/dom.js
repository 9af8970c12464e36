// SPDX-License-Identifier: MIT
// Building the page safely: every element is made with createElement and
// every piece of data goes in as a text node, never as HTML. Small widgets
// shared by the pages: sortable paginated tables, forms, notices, formats.

// h('tag', {class, id, on: {click: fn}, other attributes}, ...children):
// children are nodes, strings (text), numbers, arrays of those, or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value') {
      el.value = v;
    } else if (k === 'checked' || k === 'disabled' || k === 'selected') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A link inside the app: parts are encoded as one path segment each.
export function link(text, ...parts) {
  return h('a', { href: '#/' + parts.map(encodeURIComponent).join('/') }, text);
}

export function fmtNum(n) {
  if (n === undefined || n === null) return '\u2014';
  return Number(n).toLocaleString('en-US');
}

export function fmtRate(r) {
  if (r === undefined || r === null) return '\u2014';
  return (r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US')) + '/s';
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '\u2014';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

export function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? d + 'd ' + hr + 'h' : hr ? hr + 'h ' + m + 'm' : m + 'm ' + (s % 60) + 's';
}

// A value at a dotted path ("message_stats.publish_details.rate").
export function pick(obj, path) {
  for (const k of path.split('.')) {
    if (obj === null || obj === undefined) return undefined;
    obj = obj[k];
  }
  return obj;
}

// Shows a message in the page's notice area (role=status or alert).
export function notify(text, isError) {
  const area = document.getElementById('notice');
  const item = h('div', { class: isError ? 'notice error' : 'notice', role: isError ? 'alert' : 'status' },
    h('span', null, text),
    h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', on: { click: () => item.remove() } }, '\u00d7'));
  area.appendChild(item);
  if (!isError) setTimeout(() => item.remove(), 6000);
}

// Runs an async action, reporting its failure (or `ok` text) as a notice.
export async function act(fn, ok) {
  try {
    await fn();
    if (ok) notify(ok, false);
    return true;
  } catch (e) {
    notify(e.message, true);
    return false;
  }
}

// A button that asks for a second click before running action: no modal
// dialog, works from the keyboard.
export function confirmButton(label, action, cls) {
  let armed = null;
  const b = h('button', { type: 'button', class: cls || 'danger' }, label);
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = 'Confirm: ' + label;
      armed = setTimeout(() => { armed = null; b.textContent = label; }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    b.textContent = label;
    b.disabled = true;
    try {
      await action();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// A labelled form field.
export function field(label, input) {
  return h('label', { class: 'field' }, h('span', null, label), input);
}

export function select(name, options, value) {
  return h('select', { name }, options.map((o) => {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: v === value }, text);
  }));
}

// Key / value / type rows for arguments, headers and policy definitions.
// known: names offered as shortcuts (RabbitMQ's form lists them). Returns
// {el, value()}: value() is an object, or throws on a bad number or list.
export function argEditor(known, title) {
  const rows = h('div', { class: 'args' });
  const addRow = (key, type) => {
    const row = h('div', { class: 'arg-row' },
      h('input', { type: 'text', class: 'arg-key', 'aria-label': title + ' name', value: key || '' }),
      h('input', { type: 'text', class: 'arg-value', 'aria-label': title + ' value' }),
      select('type', [['string', 'String'], ['number', 'Number'], ['boolean', 'Boolean'], ['list', 'List']], type || 'string'),
      h('button', { type: 'button', class: 'link', 'aria-label': 'Remove', on: { click: () => row.remove() } }, '\u00d7'));
    row.querySelector('select').setAttribute('aria-label', title + ' type');
    rows.appendChild(row);
    return row;
  };
  const shortcuts = h('div', { class: 'shortcuts' }, known.length ? h('span', null, 'Add: ') : null,
    known.map(([k, type]) => h('button', {
      type: 'button', class: 'link', 'data-arg': k,
      on: { click: () => addRow(k, type).querySelector('.arg-value').focus() },
    }, k)));
  const el = h('fieldset', { class: 'arg-editor' }, h('legend', null, title), rows,
    h('button', { type: 'button', class: 'link', on: { click: () => addRow('', 'string') } }, '+ ' + title.toLowerCase()),
    shortcuts);
  const value = () => {
    const out = {};
    for (const row of rows.querySelectorAll('.arg-row')) {
      const k = row.querySelector('.arg-key').value.trim();
      const raw = row.querySelector('.arg-value').value;
      const type = row.querySelector('select').value;
      if (!k) continue;
      if (type === 'number') {
        if (raw.trim() === '' || Number.isNaN(Number(raw))) throw new Error(k + ': not a number');
        out[k] = Number(raw);
      } else if (type === 'boolean') {
        out[k] = raw.trim() === 'true';
      } else if (type === 'list') {
        out[k] = raw.split(',').map((s) => s.trim()).filter((s) => s);
      } else {
        out[k] = raw;
      }
    }
    return out;
  };
  return { el, value, addRow };
}

// A sortable, filterable, paginated table over a paginated API list.
// opts: {columns: [{key, label, render(item) -> node|text, sort: apiKey|false}],
// load(query) -> page, pageSize, sort, rowKey(item)}. Returns {el, refresh()}.
export function pagedTable(opts) {
  const st = { page: 1, size: opts.pageSize || 100, name: '', regex: false, sort: opts.sort || '', reverse: false,
    asked: 0 };
  const filter = h('input', { type: 'search', class: 'filter', placeholder: 'Filter by name', 'aria-label': 'Filter by name' });
  const regex = h('input', { type: 'checkbox', class: 'regex' });
  const size = select('page_size', ['20', '50', '100', '500'], String(st.size));
  size.setAttribute('aria-label', 'Items per page');
  const info = h('span', { class: 'page-info' });
  const prev = h('button', { type: 'button', class: 'prev' }, '\u2190 Prev');
  const next = h('button', { type: 'button', class: 'next' }, 'Next \u2192');
  const thead = h('thead');
  const tbody = h('tbody');
  let timer = null;
  const refresh = async () => {
    const q = { page: st.page, page_size: st.size, name: st.name, use_regex: st.regex ? 'true' : '', sort: st.sort,
      sort_reverse: st.reverse ? 'true' : '' };
    const asked = ++st.asked;
    let res;
    try {
      res = await opts.load(q);
    } catch (e) {
      if (asked !== st.asked) return;
      if (e.error === 'page_out_of_range' && st.page > 1) {
        st.page = 1;
        return refresh();
      }
      replace(info, e.message);
      return;
    }
    // An answer to an older request (the page as it was before a click, a
    // filter or a refresh tick) must not overwrite a newer one, nor the
    // buttons' state: a stale "page 1 of 1" disabled Next.
    if (asked !== st.asked) return;
    replace(tbody, res.items.length ? res.items.map((it) => h('tr', null,
      opts.columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.render ? c.render(it) : fmtCell(pick(it, c.key))))))
      : h('tr', null, h('td', { colspan: opts.columns.length, class: 'empty' }, '(none)')));
    replace(info, 'Page ' + res.page + ' of ' + Math.max(res.page_count, 1) + ' \u2014 ' + fmtNum(res.filtered_count) +
      ' shown of ' + fmtNum(res.total_count));
    prev.disabled = res.page <= 1;
    next.disabled = res.page >= res.page_count;
  };
  const renderHead = () => replace(thead, h('tr', null, opts.columns.map((c) => {
    if (c.sort === false) return h('th', { scope: 'col' }, c.label);
    const key = c.sort || c.key;
    const mark = st.sort === key ? (st.reverse ? ' \u25bc' : ' \u25b2') : '';
    return h('th', { scope: 'col', 'aria-sort': st.sort === key ? (st.reverse ? 'descending' : 'ascending') : null },
      h('button', { type: 'button', class: 'sort', on: { click: () => {
        st.reverse = st.sort === key ? !st.reverse : false;
        st.sort = key;
        st.page = 1;
        renderHead();
        refresh();
      } } }, c.label + mark));
  })));
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.page = 1; st.name = filter.value; st.regex = regex.checked; refresh(); }, 250);
  };
  filter.addEventListener('input', changed);
  regex.addEventListener('change', changed);
  size.addEventListener('change', () => { st.size = Number(size.value); st.page = 1; refresh(); });
  prev.addEventListener('click', () => { st.page = Math.max(1, st.page - 1); refresh(); });
  next.addEventListener('click', () => { st.page += 1; refresh(); });
  renderHead();
  const el = h('div', { class: 'paged' },
    h('div', { class: 'toolbar' }, filter, h('label', { class: 'inline' }, regex, ' Regex'), size, prev, next, info),
    h('table', { class: 'list' }, thead, tbody));
  return { el, refresh };
}

export function fmtCell(v) {
  if (v === undefined || v === null) return '\u2014';
  if (typeof v === 'number') return fmtNum(v);
  if (typeof v === 'boolean') return v ? '\u2713' : '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// An object's fields as a two-column table (key: value).
export function kvTable(rows) {
  return h('table', { class: 'kv' }, h('tbody', null, rows.map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k),
    h('td', null, v instanceof Node ? v : fmtCell(v))))));
}

// A plain (unpaginated) table from items.
export function simpleTable(columns, items) {
  return h('table', { class: 'list' },
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
    h('tbody', null, items.length ? items.map((it) => h('tr', null, columns.map((c) =>
      h('td', { class: c.num ? 'num' : null }, c.render ? c.render(it) : fmtCell(pick(it, c.key))))))
      : h('tr', null, h('td', { colspan: columns.length, class: 'empty' }, '(none)'))));
}
