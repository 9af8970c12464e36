// SPDX-License-Identifier: MIT
// Queues: the paginated list (sorted, filtered and paged by the API, so it
// stays fast with 10,000 queues) with the declare form and its argument
// list, and a queue's detail: depth and rate charts, consumers, bindings,
// get messages, purge, delete.
import { api, get, getPage, seg } from './api.js';
import { h, replace, link, fmtNum, fmtRate, fmtBytes, fmtCell, pick, pagedTable, kvTable, simpleTable, confirmButton, act, field, select, argEditor } from './dom.js';
import { LiveChart } from './chart.js';
import { features, bindingTable } from './exchanges.js';

const rate = (k) => (q) => fmtRate(pick(q, 'message_stats.' + k + '_details.rate'));

const COLUMNS = [
  { key: 'vhost', label: 'Vhost' },
  { key: 'name', label: 'Name', render: (q) => link(q.name, 'queues', q.vhost, q.name) },
  { key: 'type', label: 'Type' },
  { key: 'durable', label: 'Features', render: (q) => features(q) },
  { key: 'policy', label: 'Policy' },
  { key: 'state', label: 'State', render: (q) => h('span', { class: 'state state-' + q.state }, q.state) },
  { key: 'messages_ready', label: 'Ready', num: true },
  { key: 'messages_unacknowledged', label: 'Unacked', num: true },
  { key: 'messages', label: 'Total', num: true },
  { key: 'consumers', label: 'Consumers', num: true },
  { key: 'memory', label: 'Memory', render: (q) => fmtBytes(q.memory) },
  { key: 'message_stats.publish_details.rate', label: 'Incoming', render: rate('publish') },
  { key: 'message_stats.deliver_get_details.rate', label: 'Deliver / get', render: rate('deliver_get') },
  { key: 'message_stats.ack_details.rate', label: 'Ack', render: rate('ack') },
];
const LIST_COLUMNS = COLUMNS.map((c) => c.key).concat(['auto_delete', 'exclusive', 'arguments']).join(',');

// The arguments RabbitMQ's form offers, with their types.
const QUEUE_ARGS = [['x-message-ttl', 'number'], ['x-expires', 'number'], ['x-max-length', 'number'],
  ['x-max-length-bytes', 'number'], ['x-overflow', 'string'], ['x-dead-letter-exchange', 'string'],
  ['x-dead-letter-routing-key', 'string'], ['x-single-active-consumer', 'boolean'], ['x-max-priority', 'number'],
  ['x-queue-mode', 'string']];

export function list(ctx) {
  const base = ctx.vhost ? '/queues/' + seg(ctx.vhost) : '/queues';
  const t = pagedTable({ columns: COLUMNS, load: (q) => getPage(base, Object.assign(q, { columns: LIST_COLUMNS })) });
  replace(ctx.main, h('h1', null, 'Queues'), t.el, addForm(ctx, t.refresh));
  return t.refresh;
}

function addForm(ctx, refresh) {
  const vhost = select('vhost', ctx.vhosts, ctx.vhost || ctx.vhosts[0]);
  const name = h('input', { type: 'text', name: 'name', id: 'queue-name', required: true });
  const durable = select('durable', [['true', 'Durable'], ['false', 'Transient']]);
  const autoDelete = select('auto_delete', [['false', 'No'], ['true', 'Yes']]);
  const args = argEditor(QUEUE_ARGS, 'Arguments');
  const form = h('form', { class: 'panel', id: 'add-queue' }, h('h2', null, 'Add a new queue'),
    field('Virtual host', vhost), field('Type', select('type', [['classic', 'Classic']])), field('Name', name),
    field('Durability', durable), field('Auto delete', autoDelete), args.el, h('button', { type: 'submit' }, 'Add queue'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      await api('PUT', '/queues/' + seg(vhost.value) + '/' + seg(name.value), { durable: durable.value === 'true',
        auto_delete: autoDelete.value === 'true', arguments: args.value() });
      await refresh();
    }, 'Queue declared');
  });
  return form;
}

export function detail(ctx, vhost, name) {
  const path = '/queues/' + seg(vhost) + '/' + seg(name);
  const info = h('div', { id: 'queue-info' });
  const consumers = h('div');
  const bindings = h('div');
  const depth = new LiveChart('Queued messages', [{ key: 'messages_ready', label: 'Ready' },
    { key: 'messages_unacknowledged', label: 'Unacked' }, { key: 'messages', label: 'Total' }], 600);
  const rates = new LiveChart('Message rates', [{ key: 'publish', label: 'Publish' },
    { key: 'deliver_get', label: 'Deliver / get' }, { key: 'ack', label: 'Ack' }, { key: 'redeliver', label: 'Redeliver' }], 600, '/s');
  const refresh = async () => {
    const [q, b] = await Promise.all([get(path), get(path + '/bindings')]);
    const t = Date.now();
    depth.push(t, q);
    const r = {};
    for (const k of ['publish', 'deliver_get', 'ack', 'redeliver']) r[k] = pick(q, 'message_stats.' + k + '_details.rate') || 0;
    rates.push(t, r);
    replace(info, kvTable([['Type', q.type], ['State', q.state], ['Features', features(q)], ['Arguments', q.arguments],
      ['Policy', q.policy], ['Effective policy definition', q.effective_policy_definition],
      ['Ready', h('span', { id: 'q-ready' }, fmtNum(q.messages_ready))],
      ['Unacked', h('span', { id: 'q-unacked' }, fmtNum(q.messages_unacknowledged))],
      ['Total', h('span', { id: 'q-total' }, fmtNum(q.messages))], ['Consumers', q.consumers],
      ['Memory', fmtBytes(q.memory)], ['Node', q.node]]));
    replace(consumers, simpleTable([{ label: 'Channel', render: (c) => pick(c, 'channel_details.name') },
      { key: 'consumer_tag', label: 'Tag' }, { key: 'ack_required', label: 'Ack required' },
      { key: 'exclusive', label: 'Exclusive' }, { key: 'prefetch_count', label: 'Prefetch', num: true },
      { key: 'activity_status', label: 'Status' }, { key: 'arguments', label: 'Arguments' }], q.consumer_details || []));
    replace(bindings, bindingTable(b, vhost, refresh, 'destination'));
  };
  replace(ctx.main, h('h1', null, 'Queue ', h('span', { class: 'name', id: 'queue-title' }, name), h('small', null, ' in vhost ', vhost)),
    h('div', { class: 'detail-top' }, info, h('div', { class: 'charts' }, depth.el, rates.el)), h('h2', null, 'Consumers'), consumers,
    h('h2', null, 'Bindings'), bindings, bindForm(vhost, name, refresh), getForm(path),
    h('div', { class: 'panel' }, h('h2', null, 'Purge'), confirmButton('Purge messages', () => act(async () => {
      await api('DELETE', path + '/contents');
      await refresh();
    }, 'Queue purged'))),
    deleteForm(path));
  return refresh;
}

function bindForm(vhost, queue, refresh) {
  const source = h('input', { type: 'text', name: 'source', required: true });
  const key = h('input', { type: 'text', name: 'routing_key' });
  const args = argEditor([], 'Arguments');
  const form = h('form', { class: 'panel', id: 'bind-queue' }, h('h3', null, 'Add binding to this queue'),
    field('From exchange', source), field('Routing key', key), args.el, h('button', { type: 'submit' }, 'Bind'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      await api('POST', '/bindings/' + seg(vhost) + '/e/' + seg(source.value) + '/q/' + seg(queue),
        { routing_key: key.value, arguments: args.value() });
      await refresh();
    }, 'Binding added');
  });
  return form;
}

function getForm(path) {
  const mode = select('ackmode', [['ack_requeue_true', 'Nack message requeue true'],
    ['reject_requeue_true', 'Reject requeue true'], ['ack_requeue_false', 'Automatic ack'],
    ['reject_requeue_false', 'Reject requeue false']]);
  const enc = select('encoding', [['auto', 'Auto string / base64'], ['base64', 'base64']]);
  const count = h('input', { type: 'number', name: 'count', value: '1', min: '1' });
  const truncate = h('input', { type: 'number', name: 'truncate', value: '50000', min: '0' });
  const out = h('div', { id: 'messages' });
  const form = h('form', { class: 'panel', id: 'get-messages' }, h('h2', null, 'Get messages'),
    h('p', { class: 'muted' }, 'Getting messages is a destructive action: requeued messages come back marked redelivered.'),
    field('Ack mode', mode), field('Encoding', enc), field('Messages', count), field('Truncate (bytes)', truncate),
    h('button', { type: 'submit' }, 'Get message(s)'), out);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(async () => {
      const msgs = await api('POST', path + '/get', { count: Number(count.value), ackmode: mode.value,
        encoding: enc.value, truncate: Number(truncate.value) });
      replace(out, msgs.length ? msgs.map(messageView) : h('p', { class: 'empty' }, 'Queue is empty'));
    });
  });
  return form;
}

function messageView(m, i) {
  const props = Object.assign({}, m.properties);
  const headers = props.headers;
  delete props.headers;
  return h('div', { class: 'message' }, h('h3', null, 'Message ' + (i + 1)),
    h('p', null, 'The server reported ' + m.message_count + ' messages remaining.'),
    kvTable([['Exchange', m.exchange === '' ? '(AMQP default)' : m.exchange], ['Routing key', m.routing_key],
      ['Redelivered', m.redelivered ? 'yes' : 'no'],
      ['Properties', h('div', null, Object.entries(props).map(([k, v]) => h('div', null, k + ': ' + fmtCell(v))))],
      ['Headers', h('div', null, Object.entries(headers || {}).map(([k, v]) => h('div', null, k + ': ' + fmtCell(v))))],
      ['Payload', h('div', null, h('small', null, m.payload_bytes + ' bytes, encoding: ' + m.payload_encoding),
        h('pre', { class: 'payload' }, m.payload))]]));
}

function deleteForm(path) {
  const ifEmpty = h('input', { type: 'checkbox', name: 'if-empty' });
  const ifUnused = h('input', { type: 'checkbox', name: 'if-unused' });
  return h('div', { class: 'panel', id: 'delete-queue' }, h('h2', null, 'Delete'),
    h('label', { class: 'inline' }, ifEmpty, ' Only if empty'), ' ', h('label', { class: 'inline' }, ifUnused, ' Only if unused'), ' ',
    confirmButton('Delete queue', () => act(async () => {
      const q = [ifEmpty.checked ? 'if-empty=true' : '', ifUnused.checked ? 'if-unused=true' : ''].filter((s) => s).join('&');
      await api('DELETE', path + (q ? '?' + q : ''));
      location.hash = '#/queues';
    }, 'Queue deleted')));
}


