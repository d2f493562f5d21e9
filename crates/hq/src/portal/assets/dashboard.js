// The live dashboard: polls /dashboard/data every 2 s and draws the figures
// and, as SVG, the per-resource charts of who produced what over time.
'use strict';

const POLL_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';
const SOURCES = ['monolith', 'microservice', 'unattributed'];
let view = 'hour';
let timer = null;
// When the figures shown were last fetched, said beside a failure.
let updated = null;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function set(id, value) {
  document.getElementById(id).textContent = value;
}

function ms(value, orders) {
  if (!orders) return '–';
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${value} ms`;
}

function clock(epochSecs) {
  return new Date(epochSecs * 1000).toISOString().slice(11, 16);
}

// Stacked bars, one per bucket: monolith at the bottom, then microservice.
function chart(container, timeline, resource) {
  const width = 640;
  const height = 200;
  const pad = { left: 44, right: 8, top: 10, bottom: 24 };
  const buckets = timeline.buckets;
  const totals = buckets.map((b) => SOURCES.reduce((sum, s) => sum + b[resource][s], 0));
  const max = Math.max(1, ...totals);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = plotW / buckets.length;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${resource} per bucket by producer` });
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    root.append(svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, Math.round(max * fraction)));
  }
  buckets.forEach((bucket, i) => {
    let y = pad.top + plotH;
    for (const source of SOURCES) {
      const units = bucket[resource][source];
      if (!units) continue;
      const h = (units / max) * plotH;
      y -= h;
      const bar = svg('rect', { x: pad.left + i * barW + 0.5, y, width: Math.max(1, barW - 1), height: h, class: source });
      bar.append(svg('title', {}, `${clock(bucket.start)}: ${units} ${resource} (${source})`));
      root.append(bar);
    }
  });
  const step = Math.ceil(buckets.length / 6);
  buckets.forEach((bucket, i) => {
    if (i % step === 0) {
      root.append(svg('text', { x: pad.left + i * barW, y: height - 6, class: 'axis' }, clock(bucket.start)));
    }
  });
  container.replaceChildren(root);
  const sum = (source) => buckets.reduce((total, b) => total + b[resource][source], 0);
  const all = SOURCES.reduce((total, s) => total + sum(s), 0);
  set(`share-${resource}`, all ? `: ${Math.round((100 * sum('microservice')) / all)}% from the microservice in this view` : ': nothing fulfilled in this view');
}

function render(data) {
  const recon = data.reconciliation;
  for (const field of ['published', 'fulfilled', 'lost', 'duplicated', 'unrouted']) set(`recon-${field}`, recon[field]);
  // No feed counters when HQ publishes to SNS: SNS delivers and retries.
  const feeds = data.topics.every((t) => t.feed);
  set('feed-in_flight', feeds ? data.topics.reduce((sum, t) => sum + t.feed.in_flight, 0) : '–');
  for (const field of ['fulfillments', 'iridium', 'magnesite', 'replays', 'keys']) set(`totals-${field}`, data.totals[field]);
  const clean = recon.lost === 0 && recon.duplicated === 0;
  // Unrouted orders are not lost (SNS too drops what no confirmed
  // subscription takes), but none of them was fulfilled: said, in amber.
  const unrouted = recon.unrouted ? ` ${recon.unrouted} published with no confirmed subscription, so not delivered.` : '';
  hq.say(
    'verdict',
    (clean ? 'Nothing lost, nothing counted twice.' : `${recon.lost} lost, ${recon.duplicated} counted twice.`) + unrouted,
    clean ? (unrouted ? 'warn' : 'ok') : 'error',
  );
  const rows = data.topics.map((t) => {
    const feed = t.feed || { published: t.orders.published, failed: '–', retried: '–', in_flight: '–' };
    const cells = [
      feed.published, t.orders.fulfilled, feed.failed, feed.retried, feed.in_flight,
      t.orders.rejected, t.orders.pending, t.orders.unrouted, t.orders.lost, t.orders.duplicated,
      ms(t.latency.p50_ms, t.latency.orders), ms(t.latency.p95_ms, t.latency.orders), ms(t.latency.max_ms, t.latency.orders),
    ];
    const names = ['published', 'fulfilled', 'failed', 'retried', 'in_flight', 'rejected', 'pending', 'unrouted', 'lost', 'duplicated', 'p50', 'p95', 'max'];
    return hq.el('tr', { 'data-topic': t.name }, hq.el('th', {}, t.name),
      ...cells.map((value, i) => hq.el('td', { 'data-field': names[i], class: (names[i] === 'lost' || names[i] === 'duplicated') && value > 0 ? 'bad' : '' }, value)));
  });
  document.querySelector('#topics tbody').replaceChildren(...rows);
  chart(document.getElementById('chart-iridium'), data.timeline, 'iridium');
  chart(document.getElementById('chart-magnesite'), data.timeline, 'magnesite');
  updated = `${data.generated_at.slice(11, 19)} UTC`;
  hq.say('updated', `updated ${updated}`);
  document.body.classList.remove('stale');
}

async function poll() {
  clearTimeout(timer);
  try {
    render(await hq.call('GET', `/dashboard/data?view=${view}`));
  } catch (error) {
    // The figures stay, dimmed, with the time they are from.
    hq.say('updated', `${updated ? `figures from ${updated}, ` : ''}not updated: ${error.message}`, 'error');
    document.body.classList.add('stale');
  }
  if (hq.token()) timer = setTimeout(poll, POLL_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  for (const button of document.querySelectorAll('button[data-view]')) {
    button.addEventListener('click', () => {
      view = button.dataset.view;
      for (const other of document.querySelectorAll('button[data-view]')) {
        other.setAttribute('aria-pressed', String(other === button));
      }
      poll();
    });
  }
  hq.setUpCredential(poll);
});
