// SPDX-License-Identifier: MIT
// Connections and channels: paginated lists, a connection's detail with its
// channels, and closing a connection with a reason (DELETE, X-Reason).
import { api, get, getPage, seg } from './api.js';
import { h, replace, link, fmtRate, fmtNum, pick, pagedTable, kvTable, simpleTable, confirmButton, act, field } from './dom.js';

function state(it) {
  const s = it.state || 'running';
  return h('span', { class: 'state state-' + s.replace(/[^a-z]/g, '') }, s);
}

const CONN_COLUMNS = [
  { key: 'name', label: 'Name', render: (c) => link(c.name, 'connections', c.name) },
  { key: 'client_properties.connection_name', label: 'Client name', sort: false },
  { key: 'user', label: 'User' },
  { key: 'vhost', label: 'Vhost' },
  { key: 'peer_host', label: 'Peer', render: (c) => c.peer_host + ':' + c.peer_port },
  { key: 'ssl', label: 'TLS', render: (c) => (c.ssl ? 'TLS' : '') },
  { key: 'state', label: 'State', render: state },
  { key: 'channels', label: 'Channels', num: true },
  { key: 'recv_oct_details.rate', label: 'From client', render: (c) => bytesRate(pick(c, 'recv_oct_details.rate')) },
  { key: 'send_oct_details.rate', label: 'To client', render: (c) => bytesRate(pick(c, 'send_oct_details.rate')) },
];

function bytesRate(r) {
  return r === undefined ? '\u2014' : fmtNum(Math.round(r)) + ' B/s';
}

export function list(ctx) {
  const t = pagedTable({ columns: CONN_COLUMNS, load: (q) => getPage('/connections', q) });
  replace(ctx.main, h('h1', null, 'Connections'), t.el);
  return t.refresh;
}

const CHANNEL_COLUMNS = [
  { key: 'name', label: 'Channel' },
  { key: 'user', label: 'User' },
  { key: 'vhost', label: 'Vhost' },
  { key: 'confirm', label: 'Mode', render: (c) => [c.confirm ? 'confirm' : '', c.transactional ? 'tx' : ''].join(' ').trim() },
  { key: 'state', label: 'State', render: state },
  { key: 'prefetch_count', label: 'Prefetch', num: true },
  { key: 'messages_unacknowledged', label: 'Unacked', num: true },
  { key: 'consumer_count', label: 'Consumers', num: true },
  { key: 'message_stats.publish_details.rate', label: 'Publish', render: (c) => fmtRate(pick(c, 'message_stats.publish_details.rate')) },
  { key: 'message_stats.ack_details.rate', label: 'Ack', render: (c) => fmtRate(pick(c, 'message_stats.ack_details.rate')) },
];

export function channels(ctx) {
  const t = pagedTable({ columns: CHANNEL_COLUMNS, load: (q) => getPage('/channels', q) });
  replace(ctx.main, h('h1', null, 'Channels'), t.el);
  return t.refresh;
}

export function detail(ctx, name) {
  const info = h('div');
  const chans = h('div');
  const reason = h('input', { type: 'text', name: 'reason', value: 'Closed via management plugin' });
  const close = confirmButton('Close connection', () => act(async () => {
    await api('DELETE', '/connections/' + seg(name), undefined, { 'X-Reason': reason.value });
    location.hash = '#/connections';
  }, 'Connection closed'));
  replace(ctx.main, h('h1', null, 'Connection ', h('span', { class: 'name' }, name)), info,
    h('h2', null, 'Channels'), chans,
    h('h2', null, 'Close this connection'), h('div', { class: 'form-row' }, field('Reason', reason), close));
  return async () => {
    const [c, ch] = await Promise.all([get('/connections/' + seg(name)), get('/connections/' + seg(name) + '/channels')]);
    replace(info, kvTable([['Client name', pick(c, 'client_properties.connection_name')], ['User', c.user],
      ['Vhost', c.vhost], ['Peer', c.peer_host + ':' + c.peer_port], ['TLS', c.ssl ? 'yes' : 'no'], ['State', state(c)],
      ['Protocol', c.protocol], ['Channels', c.channels], ['Channel max', c.channel_max], ['Frame max', c.frame_max],
      ['Heartbeat', c.timeout + ' s'], ['Connected at', new Date(c.connected_at).toISOString()],
      ['Client properties', c.client_properties]]));
    replace(chans, simpleTable(CHANNEL_COLUMNS, ch));
  };
}
