// SPDX-License-Identifier: MIT
// Exchanges: the paginated list with the declare form, and an exchange's
// detail: its bindings both ways, binding and unbinding, publishing a
// message with properties and headers, deleting it.
import { api, get, getPage, seg } from './api.js';
import { h, replace, link, fmtRate, pick, pagedTable, kvTable, simpleTable, confirmButton, act, field, select, argEditor, notify } from './dom.js';

export const xname = (name) => name || 'amq.default';
const label = (name) => name || '(AMQP default)';

const COLUMNS = [
  { key: 'vhost', label: 'Vhost' },
  { key: 'name', label: 'Name', render: (x) => link(label(x.name), 'exchanges', x.vhost, xname(x.name)) },
  { key: 'type', label: 'Type' },
  { key: 'durable', label: 'Features', render: (x) => features(x) },
  { key: 'policy', label: 'Policy' },
  { key: 'message_stats.publish_in_details.rate', label: 'In', render: (x) => fmtRate(pick(x, 'message_stats.publish_in_details.rate')) },
  { key: 'message_stats.publish_out_details.rate', label: 'Out', render: (x) => fmtRate(pick(x, 'message_stats.publish_out_details.rate')) },
];

export function features(o) {
  const f = [];
  if (o.durable) f.push('D');
  if (o.auto_delete) f.push('AD');
  if (o.internal) f.push('I');
  if (o.exclusive) f.push('Excl');
  const args = Object.keys(o.arguments || {});
  return h('span', { class: 'features', title: args.join(', ') }, f.join(' '), args.length ? ' Args' : '');
}

const vhostSelect = (ctx) => select('vhost', ctx.vhosts, ctx.vhost || ctx.vhosts[0]);

export function list(ctx) {
  const base = ctx.vhost ? '/exchanges/' + seg(ctx.vhost) : '/exchanges';
  const t = pagedTable({ columns: COLUMNS, load: (q) => getPage(base, q) });
  replace(ctx.main, h('h1', null, 'Exchanges'), t.el, addForm(ctx, t.refresh));
  return t.refresh;
}

function addForm(ctx, refresh) {
  const vhost = vhostSelect(ctx);
  const name = h('input', { type: 'text', name: 'name', required: true });
  const type = select('type', ['direct', 'fanout', 'topic', 'headers']);
  const durable = select('durable', [['true', 'Durable'], ['false', 'Transient']]);
  const autoDelete = select('auto_delete', [['false', 'No'], ['true', 'Yes']]);
  const internal = select('internal', [['false', 'No'], ['true', 'Yes']]);
  const args = argEditor([['alternate-exchange', 'string']], 'Arguments');
  const form = h('form', { class: 'panel', id: 'add-exchange' }, h('h2', null, 'Add a new exchange'),
    field('Virtual host', vhost), field('Name', name), field('Type', type), field('Durability', durable),
    field('Auto delete', autoDelete), field('Internal', internal), args.el, h('button', { type: 'submit' }, 'Add exchange'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      await api('PUT', '/exchanges/' + seg(vhost.value) + '/' + seg(name.value), { type: type.value,
        durable: durable.value === 'true', auto_delete: autoDelete.value === 'true', internal: internal.value === 'true',
        arguments: args.value() });
      await refresh();
    }, 'Exchange declared');
  });
  return form;
}

export function bindingTable(rows, vhost, refresh, side) {
  return simpleTable([
    { label: side === 'source' ? 'To' : 'From', render: (b) => side === 'source'
      ? link(b.destination, b.destination_type === 'queue' ? 'queues' : 'exchanges', vhost, b.destination)
      : link(label(b.source), 'exchanges', vhost, xname(b.source)) },
    { key: 'destination_type', label: 'Type' },
    { key: 'routing_key', label: 'Routing key' },
    { key: 'arguments', label: 'Arguments' },
    { label: '', render: (b) => b.source === '' ? '' : confirmButton('Unbind', () => act(async () => {
      await api('DELETE', '/bindings/' + seg(vhost) + '/e/' + seg(b.source) + '/' + (b.destination_type === 'queue' ? 'q' : 'e') +
        '/' + seg(b.destination) + '/' + seg(b.properties_key));
      await refresh();
    }, 'Binding removed'), 'small') },
  ], rows);
}

export function detail(ctx, vhost, name) {
  const path = '/exchanges/' + seg(vhost) + '/' + seg(name);
  const info = h('div');
  const out = h('div');
  const into = h('div');
  const refresh = async () => {
    const [x, src, dst] = await Promise.all([get(path), get(path + '/bindings/source'), get(path + '/bindings/destination')]);
    replace(info, kvTable([['Type', x.type], ['Features', features(x)], ['Arguments', x.arguments], ['Policy', x.policy],
      ['Publish in', fmtRate(pick(x, 'message_stats.publish_in_details.rate'))],
      ['Publish out', fmtRate(pick(x, 'message_stats.publish_out_details.rate'))]]));
    replace(out, bindingTable(src, vhost, refresh, 'source'));
    replace(into, bindingTable(dst, vhost, refresh, 'destination'));
  };
  const del = confirmButton('Delete this exchange', () => act(async () => {
    await api('DELETE', path);
    location.hash = '#/exchanges';
  }, 'Exchange deleted'));
  replace(ctx.main, h('h1', null, 'Exchange ', h('span', { class: 'name', id: 'exchange-name' }, label(name === 'amq.default' ? '' : name)),
    h('small', null, ' in vhost ', vhost)), info,
  h('h2', null, 'Bindings from this exchange'), out, name === 'amq.default' ? null : bindForm(vhost, name, refresh),
  h('h2', null, 'Bindings to this exchange'), into,
  publishForm(path), name.startsWith('amq.') ? null : h('div', { class: 'panel' }, h('h2', null, 'Delete'), del));
  return refresh;
}

function bindForm(vhost, source, refresh) {
  const type = select('destination_type', [['q', 'To queue'], ['e', 'To exchange']]);
  const dest = h('input', { type: 'text', name: 'destination', required: true });
  const key = h('input', { type: 'text', name: 'routing_key' });
  const args = argEditor([], 'Arguments');
  const form = h('form', { class: 'panel', id: 'bind' }, h('h3', null, 'Add binding from this exchange'),
    field('Destination type', type), field('Destination', dest), field('Routing key', key), args.el,
    h('button', { type: 'submit' }, 'Bind'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      await api('POST', '/bindings/' + seg(vhost) + '/e/' + seg(source) + '/' + type.value + '/' + seg(dest.value),
        { routing_key: key.value, arguments: args.value() });
      await refresh();
    }, 'Binding added');
  });
  return form;
}

const PROPERTIES = [['content_type', 'string'], ['content_encoding', 'string'], ['priority', 'number'],
  ['correlation_id', 'string'], ['reply_to', 'string'], ['expiration', 'string'], ['message_id', 'string'],
  ['timestamp', 'number'], ['type', 'string'], ['user_id', 'string'], ['app_id', 'string']];

function publishForm(path) {
  const key = h('input', { type: 'text', name: 'routing_key', id: 'publish-routing-key' });
  const mode = select('delivery_mode', [['1', '1 - Non-persistent'], ['2', '2 - Persistent']]);
  const headers = argEditor([], 'Headers');
  const props = argEditor(PROPERTIES, 'Properties');
  const payload = h('textarea', { name: 'payload', id: 'publish-payload', rows: 5 });
  const enc = select('payload_encoding', [['string', 'String (UTF-8)'], ['base64', 'Base64']]);
  const result = h('p', { class: 'result', id: 'publish-result', role: 'status' });
  const form = h('form', { class: 'panel', id: 'publish' }, h('h2', null, 'Publish message'), field('Routing key', key),
    field('Delivery mode', mode), headers.el, props.el, field('Payload', payload), field('Payload encoding', enc),
    h('button', { type: 'submit' }, 'Publish message'), result);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      const properties = Object.assign({ delivery_mode: Number(mode.value) }, props.value());
      const hdrs = headers.value();
      if (Object.keys(hdrs).length) properties.headers = hdrs;
      const r = await api('POST', path + '/publish', { routing_key: key.value, properties, payload: payload.value,
        payload_encoding: enc.value });
      result.textContent = r.routed ? 'Message published.' : 'Message published, but not routed.';
      notify(result.textContent, !r.routed);
    });
  });
  return form;
}
