// SPDX-License-Identifier: MIT
// The overview: queued messages and message rates as live charts, object
// totals, nodes (memory, disk, descriptors, alarms), listeners. One refresh
// reads /api/overview (totals, never the queue list) and, for monitoring
// users and administrators, /api/nodes.
import { api, get } from './api.js';
import { h, replace, fmtNum, fmtBytes, fmtDuration, pick, simpleTable } from './dom.js';
import { LiveChart } from './chart.js';

const RATES = [['publish', 'Publish'], ['deliver_get', 'Deliver / get'], ['ack', 'Ack'], ['confirm', 'Confirm'],
  ['redeliver', 'Redeliver']];
const OVERVIEW_COLUMNS = 'product_name,product_version,rabbitmq_version,node,queue_totals,message_stats,object_totals,listeners';

export function render(ctx) {
  const queued = new LiveChart('Queued messages', [{ key: 'messages_ready', label: 'Ready' },
    { key: 'messages_unacknowledged', label: 'Unacked' }, { key: 'messages', label: 'Total' }], 600);
  const rates = new LiveChart('Message rates', RATES.map(([key, label]) => ({ key, label })), 600, '/s');
  const alarms = h('div', { id: 'alarms', 'aria-live': 'polite' });
  const totals = h('div', { class: 'totals', id: 'totals' });
  const nodes = h('section', { id: 'nodes' });
  const listeners = h('section', { id: 'listeners' });
  const version = h('p', { class: 'muted', id: 'version' });
  replace(ctx.main, h('h1', null, 'Overview'), version, alarms, totals,
    h('div', { class: 'charts' }, queued.el, rates.el), nodes, listeners);
  return async () => {
    const [o, nodeList, health] = await Promise.all([
      get('/overview?columns=' + OVERVIEW_COLUMNS),
      ctx.isMonitor ? get('/nodes') : Promise.resolve(null),
      ctx.isMonitor ? Promise.resolve(null) : healthAlarms(),
    ]);
    const t = Date.now();
    queued.push(t, o.queue_totals || {});
    const r = {};
    for (const [k] of RATES) {
      const v = pick(o, 'message_stats.' + k + '_details.rate');
      if (v !== undefined) r[k] = v;
    }
    rates.push(t, r);
    version.textContent = (o.product_name || 'warren') + ' ' + (o.product_version || '') + ' (RabbitMQ ' +
      o.rabbitmq_version + ' API) on ' + o.node;
    const ot = o.object_totals || {};
    replace(totals, ['connections', 'channels', 'exchanges', 'queues', 'consumers'].map((k) =>
      h('div', { class: 'total', 'data-total': k }, h('span', { class: 'count' }, fmtNum(ot[k])), h('span', null, k))));
    replace(alarms, activeAlarms(nodeList, health).map((a) => h('p', { class: 'alarm', role: 'alert' }, a)));
    if (nodeList) replace(nodes, h('h2', null, 'Nodes'), nodesTable(nodeList));
    replace(listeners, h('h2', null, 'Listeners'), simpleTable([{ key: 'protocol', label: 'Protocol' },
      { key: 'ip_address', label: 'Address' }, { label: 'Port', render: (l) => String(l.port) }], o.listeners || []));
  };
}

// The health check answers 503 with the alarms in effect.
async function healthAlarms() {
  try {
    await api('GET', '/health/checks/alarms');
    return [];
  } catch (e) {
    return e.status === 503 ? [e.message] : [];
  }
}

function activeAlarms(nodeList, health) {
  if (!nodeList) return health || [];
  const out = [];
  for (const n of nodeList) {
    if (n.mem_alarm) out.push('Memory alarm on ' + n.name + ': publishers are blocked');
    if (n.disk_free_alarm) out.push('Disk space alarm on ' + n.name + ': publishers are blocked');
  }
  return out;
}

function gauge(used, limit, alarm, fmt) {
  const pct = limit ? Math.min(100, (100 * used) / limit) : 0;
  return h('div', { class: alarm ? 'gauge alarm' : 'gauge' },
    h('meter', { min: 0, max: 100, value: pct.toFixed(1) }), ' ', fmt(used), ' / ', fmt(limit), alarm ? ' ALARM' : '');
}

function nodesTable(list) {
  return simpleTable([
    { key: 'name', label: 'Name' },
    { label: 'Memory (used / high watermark)', render: (n) => gauge(n.mem_used, n.mem_limit, n.mem_alarm, fmtBytes) },
    { label: 'Disk free / limit', render: (n) => h('span', { class: n.disk_free_alarm ? 'alarm-text' : null },
      fmtBytes(n.disk_free), ' / ', fmtBytes(n.disk_free_limit), n.disk_free_alarm ? ' ALARM' : '') },
    { label: 'File descriptors', render: (n) => gauge(n.fd_used, n.fd_total, false, fmtNum) },
    { label: 'Uptime', render: (n) => fmtDuration(n.uptime || 0) },
    { label: 'Running', render: (n) => (n.running ? 'yes' : 'no') },
  ], list);
}
