// SPDX-License-Identifier: MIT
// Live line charts drawn on a <canvas>: each chart keeps the samples of the
// last `span` seconds for its series and redraws on every push. No library.
import { h, fmtNum } from './dom.js';

const COLORS = ['#1f6fb2', '#d9822b', '#2e8540', '#b83280', '#6b46c1', '#c53030'];

export class LiveChart {
  // title, series: [{key, label}], span in seconds, unit ('' or '/s').
  constructor(title, series, span, unit) {
    this.series = series;
    this.span = span || 600;
    this.unit = unit || '';
    this.samples = [];
    this.canvas = h('canvas', { width: 560, height: 180, role: 'img', 'aria-label': title });
    this.legend = h('ul', { class: 'legend' }, series.map((s, i) =>
      h('li', null, h('span', { class: 'swatch swatch-' + i }), s.label, ' ', h('strong', { 'data-key': s.key }, '\u2014'))));
    this.el = h('figure', { class: 'chart' }, h('figcaption', null, title), this.canvas, this.legend);
  }

  // values: {key: number}; t in ms (Date.now()).
  push(t, values) {
    this.samples.push({ t, v: values });
    while (this.samples.length > 2 && this.samples[0].t < t - this.span * 1000) this.samples.shift();
    for (const s of this.series) {
      const v = values[s.key];
      this.legend.querySelector('[data-key="' + s.key + '"]').textContent =
        v === undefined ? '\u2014' : (this.unit ? (v < 10 ? v.toFixed(1) : fmtNum(Math.round(v))) + this.unit : fmtNum(v));
    }
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const ctx = c.getContext('2d');
    const w = c.width, ht = c.height, left = 56, bottom = 20, top = 8, right = 8;
    const now = this.samples.length ? this.samples[this.samples.length - 1].t : Date.now();
    // The window grows with the data from one minute to the full span.
    const span = Math.min(this.span, Math.max(60, this.samples.length ? (now - this.samples[0].t) / 1000 : 0));
    let max = 1;
    for (const s of this.samples) for (const k of this.series) max = Math.max(max, s.v[k.key] || 0);
    max = niceMax(max);
    ctx.clearRect(0, 0, w, ht);
    ctx.font = '11px sans-serif';
    ctx.fillStyle = '#555';
    ctx.strokeStyle = '#ddd';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + ((ht - top - bottom) * i) / 4;
      ctx.beginPath();
      ctx.moveTo(left, y + 0.5);
      ctx.lineTo(w - right, y + 0.5);
      ctx.stroke();
      const v = (max * (4 - i)) / 4;
      ctx.fillText(max < 10 ? v.toFixed(max < 4 ? 2 : 1) : fmtNum(Math.round(v)), 4, y + 4);
    }
    ctx.fillText(span < 120 ? '-' + Math.round(span) + ' s' : '-' + Math.round(span / 60) + ' min', left, ht - 4);
    ctx.fillText('now', w - right - 22, ht - 4);
    const x = (t) => left + ((w - left - right) * (t - (now - span * 1000))) / (span * 1000);
    const y = (v) => top + (ht - top - bottom) * (1 - v / max);
    this.series.forEach((s, i) => {
      ctx.strokeStyle = COLORS[i % COLORS.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      this.samples.forEach((p, j) => {
        const v = p.v[s.key] || 0;
        if (j === 0) ctx.moveTo(x(p.t), y(v));
        else ctx.lineTo(x(p.t), y(v));
      });
      ctx.stroke();
    });
  }
}

// 1, 2, 5 x 10^n at or above v.
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
