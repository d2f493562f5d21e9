// The live dashboard: polls /dashboard/data every 2 s and draws the figures
// and, as SVG, the per-resource charts of who produced what over time.
'use strict';

const POLL_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';
const SOURCES = ['monolith', 'microservice', 'unattributed'];
const SOURCE_NAMES = { monolith: 'monolith', microservice: 'microservice', unattributed: 'not said' };
// Who made a resource's latest fulfillments, in "Now: …".
const MADE_BY = { monolith: 'gathered by the monolith', microservice: 'from the microservice', unattributed: 'with no producer said' };
const RESOURCES = ['iridium', 'magnesite'];
let view = 'hour';
let timer = null;
// Polls are numbered: a view picked while a poll is out starts another,
// and only the latest may draw (the day's answer, slower, would land on the
// hour's button) and arm the next, or every such click left one more loop.
let latestPoll = 0;
// When the figures shown were last fetched, said beside a failure.
let updated = null;
// The last timeline drawn, redrawn when a chart's width changes.
let timeline = null;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Cards are rewritten only when their figure changed.
function set(id, value) {
  const node = document.getElementById(id);
  if (node.textContent !== String(value)) node.textContent = value;
}

// The least room a time under the axis takes, and the steps between
// times, in minutes: each a whole number of bars in either view.
const LABEL_PX = 56;
const TIME_STEPS_MINUTES = [1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440];

function ms(value, orders) {
  if (!orders) return '–';
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${value} ms`;
}

// p50, p95 and max in one cell, "20 / 183 / 234 ms" (a unit each once
// one is a second or more): three columns of their own overflowed the
// table at 1400 px.
function latencies({ orders, p50_ms, p95_ms, max_ms }) {
  if (!orders) return '–';
  if (max_ms < 1000) return `${p50_ms} / ${p95_ms} / ${max_ms} ms`;
  return [p50_ms, p95_ms, max_ms].map((value) => ms(value, orders)).join(' / ');
}

function clock(epochSecs) {
  return new Date(epochSecs * 1000).toISOString().slice(11, 16);
}

// "minute", "15 minutes": what one bucket spans.
function bucketName(bucketSecs) {
  const minutes = Math.round(bucketSecs / 60);
  return minutes === 1 ? 'minute' : `${minutes} minutes`;
}

// The y axis' ticks: whole units in steps of 1, 2 or 5 × 10ⁿ, about four
// of them, so that no figure shows twice (a half tick of 1 rounds to 1).
function yTicks(max) {
  const raw = Math.max(1, max) / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw));
  const top = Math.ceil(Math.max(1, max) / step) * step;
  const values = [];
  for (let value = 0; value <= top; value += step) values.push(value);
  return { top, values };
}

// The y axis' figures, short enough for its margin at any count: 600K, 1.2M.
const AXIS_NUMBER = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

// `part` of `whole` in whole percent, but never 0% or 100% for a share
// that is neither: a monolith still gathering some is not "100%" strangled.
function percent(part, whole) {
  const share = Math.round((100 * part) / whole);
  if (share === 100 && part < whole) return 'over 99%';
  if (share === 0 && part > 0) return 'under 1%';
  return `${share}%`;
}

// Stacked bars, one per bucket: monolith at the bottom, then microservice.
// The viewBox is the container's width in CSS pixels, so the axis text is
// drawn at its stated size on a phone as on a desktop.
function chart(container, timeline, resource) {
  const width = Math.max(240, Math.round(container.clientWidth));
  const height = 220;
  const pad = { left: 44, right: 8, top: 26, bottom: 24 };
  const buckets = timeline.buckets;
  const per = bucketName(timeline.bucket_secs);
  const totals = buckets.map((b) => SOURCES.reduce((sum, s) => sum + b[resource][s], 0));
  const { top, values } = yTicks(Math.max(0, ...totals));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = plotW / buckets.length;
  const sum = (source) => buckets.reduce((total, b) => total + b[resource][source], 0);
  const all = SOURCES.reduce((total, s) => total + sum(s), 0);
  const summary = all
    ? `${all} ${resource} in this view: ${SOURCES.map((s) => `${sum(s)} ${SOURCE_NAMES[s]}`).join(', ')}; each ${per} in the figures that follow.`
    : `No ${resource} in this view.`;
  // Redrawn only when it would change: a screen reader on the chart keeps its place.
  const signature = JSON.stringify([width, timeline.bucket_secs, buckets.map((b) => [b.start, b[resource]])]);
  hq.replaceIfChanged(container, signature, () => [bars()]);
  figures(document.getElementById(`figures-${resource}`), buckets, resource, per);
  set(`share-${resource}`, all ? `: ${percent(sum('microservice'), all)} from the microservice in this view` : ': nothing fulfilled in this view');

  // The chart itself, built only when the signature above changed.
  function bars() {
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${resource} per ${per} by producer. ${summary}` });
    root.append(svg('text', { x: 2, y: 12, class: 'axis' }, `units per ${per}, times UTC`));
    for (const value of values) {
      const y = pad.top + plotH * (1 - value / top);
      root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
      root.append(svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis value' }, AXIS_NUMBER.format(value)));
    }
    buckets.forEach((bucket, i) => {
      let y = pad.top + plotH;
      for (const source of SOURCES) {
        const units = bucket[resource][source];
        if (!units) continue;
        // At least 2 px: the 1 px white stroke between segments (app.css)
        // would hide a thinner one.
        const h = Math.max(2, (units / top) * plotH);
        y -= h;
        const bar = svg('rect', { x: pad.left + i * barW, y, width: barW, height: h, class: source });
        bar.append(svg('title', {}, `${clock(bucket.start)} UTC: ${units} ${resource} (${SOURCE_NAMES[source]})`));
        root.append(bar);
      }
    });
    // The newest bar's time, where a live run's bars are, and round times
    // (11:10, 11:20; 04:00, 08:00) a round step apart, as many as fit
    // LABEL_PX each and clear of the newest's (a step counted in bars from
    // the newest put them 9 minutes apart). Each centred under its bar,
    // kept inside the chart.
    const fit = Math.max(1, Math.floor(plotW / LABEL_PX));
    const span = buckets.length * timeline.bucket_secs;
    const stepSecs = 60 * (TIME_STEPS_MINUTES.find((minutes) => (minutes * 60) % timeline.bucket_secs === 0
      && span / (minutes * 60) <= fit) || TIME_STEPS_MINUTES[TIME_STEPS_MINUTES.length - 1]);
    const newest = buckets.length - 1;
    const at = (i) => pad.left + (i + 0.5) * barW;
    buckets.forEach((bucket, i) => {
      if (i !== newest && (bucket.start % stepSecs !== 0 || at(newest) - at(i) < LABEL_PX)) return;
      const x = at(i);
      // The newest, under the last bar, ends at the chart's edge instead
      // when centred it would cross it (whatever the font's width).
      const atEdge = x + 20 > width;
      root.append(svg('text', {
        x: atEdge ? width - 1 : x, y: height - 6, 'text-anchor': atEdge ? 'end' : 'middle', class: 'axis time',
      }, clock(bucket.start)));
    });
    return root;
  }
}

// Who produces a resource now, from its last fulfillments of the last
// minute (HQ counts them): the view's share, over an hour or a day of them,
// lags a stage switch by as much. With none that recent, who made its
// newest, and when ("Latest"). The newest's producer is named first, so a
// mix reads the way the switch goes. Empty with none in the view, which the
// share already says.
function now({ now: made, newest }, generatedAt, atMost) {
  if (!newest) return '';
  const at = when(newest.at, generatedAt);
  const counts = SOURCES.filter((s) => made[s]).map((s) => [s, made[s]])
    .sort(([a], [b]) => (b === newest.source) - (a === newest.source));
  const count = counts.reduce((total, [, n]) => total + n, 0);
  if (!count) return `Latest: ${MADE_BY[newest.source]} (its newest fulfillment, at ${at}; none in the last minute).`;
  // Fewer than HQ counts at most are all of the minute's: "its 3", not "its last 3".
  const these = count < atMost ? `its ${count}` : `its last ${count}`;
  if (counts.length === 1) {
    const which = count === 1 ? 'its one fulfillment in the last minute, at' : `${these} fulfillments in the last minute, the newest at`;
    return `Now: ${MADE_BY[counts[0][0]]} (${which} ${at}).`;
  }
  const [[first, n], ...others] = counts;
  return `Now: mixed: of ${these} fulfillments in the last minute, ${n} ${MADE_BY[first]} (the newest at ${at}), ${others.map(([s, m]) => `${m} ${MADE_BY[s]}`).join(', ')}.`;
}

// A time the ledger wrote, as "16:31:58 UTC", with its date when that is
// not the day of the figures (the day view's newest may be yesterday's).
function when(at, generatedAt) {
  const time = `${at.slice(11, 19)} UTC`;
  return at.slice(0, 10) === generatedAt.slice(0, 10) ? time : `${at.slice(0, 10)} ${time}`;
}

// The chart's figures as a table under it, opened from the keyboard as
// from the mouse (a bar's own figures show only on hover) and read by
// screen readers: the buckets that had any units (an hour has 60, mostly
// empty). Rebuilt only when a figure changed.
function figures(container, buckets, resource, per) {
  const rows = buckets
    .filter((b) => SOURCES.some((s) => b[resource][s]))
    .map((b) => [clock(b.start), ...SOURCES.map((s) => b[resource][s])]);
  hq.replaceIfChanged(container, JSON.stringify([resource, per, rows]), () => {
    const caption = `${resource} units per ${per}, by producer${rows.length ? `, each ${per} with any` : ': none in this view'}`;
    return [hq.el('table', {},
      hq.el('caption', {}, caption),
      hq.el('thead', {}, hq.el('tr', {}, hq.el('th', { scope: 'col' }, 'time (UTC)'),
        ...SOURCES.map((s) => hq.el('th', { scope: 'col' }, SOURCE_NAMES[s])))),
      hq.el('tbody', {}, ...rows.map(([time, ...units]) =>
        hq.el('tr', {}, hq.el('th', { scope: 'row' }, time), ...units.map((u) => hq.el('td', {}, u))))))];
  });
}

function render(data) {
  const recon = data.reconciliation;
  for (const field of ['published', 'fulfilled', 'lost', 'duplicated', 'unrouted']) set(`recon-${field}`, recon[field]);
  // No feed counters when HQ publishes to SNS: SNS delivers and retries.
  const feeds = data.topics.every((t) => t.feed);
  set('feed-in_flight', feeds ? data.topics.reduce((sum, t) => sum + t.feed.in_flight, 0) : '–');
  for (const field of ['fulfillments', 'iridium', 'magnesite', 'replays', 'keys']) set(`totals-${field}`, data.totals[field]);
  // Revoked keys stay counted (their fulfillments stay in the totals), so say how many.
  set('keys-revoked', data.totals.revoked_keys ? `keys, ${data.totals.revoked_keys} revoked` : 'keys');
  // Not HQ's is_clean: pending orders are left out, in a live run mostly
  // deliveries under way.
  const clean = recon.lost === 0 && recon.duplicated === 0 && recon.rejected === 0;
  // HQ publishes only orders the services take: a refusal is a wiring or trust fault.
  const refused = recon.rejected ? ` ${recon.rejected} refused by a subscription (its endpoint or trust settings are wrong).` : '';
  // Unrouted orders are not lost (SNS too drops what no confirmed
  // subscription takes), but none of them was fulfilled: said, in amber.
  const unrouted = recon.unrouted ? ` ${recon.unrouted} published with no confirmed subscription, so not delivered.` : '';
  hq.say(
    'verdict',
    // With nothing published yet, there is nothing to vouch for.
    (clean ? (recon.published ? 'Nothing lost, nothing counted twice.' : 'Nothing published yet.') : `${recon.lost} lost, ${recon.duplicated} counted twice.`) + refused + unrouted,
    clean ? (unrouted ? 'warn' : recon.published ? 'ok' : '') : 'error',
  );
  // Named as HQ's reconciliation names them, but pending orders left out:
  // in a live run they are mostly deliveries under way, there one poll and
  // gone the next, and the verdict is about orders lost, refused or counted twice.
  const outcomeText = { lost: 'lost', duplicated: 'counted twice', rejected: 'refused' };
  const unaccounted = recon.unaccounted.filter((u) => u.outcome !== 'pending');
  const list = document.getElementById('unaccounted');
  list.hidden = unaccounted.length === 0;
  hq.replaceIfChanged(list.querySelector('ul'), JSON.stringify(unaccounted), () =>
    unaccounted.map((u) => hq.el('li', { 'data-outcome': u.outcome },
      hq.el('code', {}, u.message_id), ` on ${u.topic}: ${outcomeText[u.outcome] || u.outcome}`)));
  const names = ['published', 'fulfilled', 'failed', 'retried', 'in_flight', 'rejected', 'pending', 'unrouted', 'lost', 'duplicated', 'latency'];
  const topics = data.topics.map((t) => {
    // The delivery counters are HQ's feed's since it started (none on SNS);
    // every other figure, published included, is the view's orders.
    const feed = t.feed || { failed: '–', retried: '–', in_flight: '–' };
    return [t.name, [
      t.orders.published, t.orders.fulfilled, feed.failed, feed.retried, feed.in_flight,
      t.orders.rejected, t.orders.pending, t.orders.unrouted, t.orders.lost, t.orders.duplicated,
      latencies(t.latency),
    ]];
  });
  hq.replaceIfChanged(document.querySelector('#topics tbody'), JSON.stringify(topics), () =>
    topics.map(([name, cells]) => hq.el('tr', { 'data-topic': name }, hq.el('th', { scope: 'row' }, name),
      ...cells.map((value, i) => hq.el('td', { 'data-field': names[i], class: ['lost', 'duplicated', 'rejected'].includes(names[i]) && value > 0 ? 'bad' : '' }, value)))));
  timeline = data.timeline;
  for (const resource of RESOURCES) {
    chart(document.getElementById(`chart-${resource}`), timeline, resource);
    set(`now-${resource}`, now(timeline.recent[resource], data.generated_at, timeline.recent_at_most));
  }
  updated = `${data.generated_at.slice(11, 19)} UTC`;
  // The time changes every poll: shown, but not in a live region, which
  // would say it every 2 s. Only going stale and coming back are said.
  hq.say('updated', `updated ${updated}`);
  const wasStale = document.body.classList.contains('stale');
  hq.say('freshness', wasStale ? 'HQ answers again: the figures are updating.' : '', 'notice ok');
  document.body.classList.remove('stale');
}

async function poll() {
  clearTimeout(timer);
  const mine = ++latestPoll;
  try {
    const data = await hq.call('GET', `/dashboard/data?view=${view}`, undefined, {}, { timeoutMs: CALL_TIMEOUT_MS });
    if (mine !== latestPoll) return;
    render(data);
  } catch (error) {
    if (mine !== latestPoll) return;
    // The figures stay, marked stale, with the time they are from.
    hq.say('updated', `${updated ? `figures from ${updated}, ` : ''}not updated: ${error.message}`, 'error');
    // Signed out (a 401): the figures are hidden, nothing to mark.
    if (hq.token()) {
      hq.say('freshness', `Not updating: ${error.message}. ${updated ? `The figures below are from ${updated}.` : ''}`.trim(), 'notice error');
      document.body.classList.add('stale');
    }
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
  // A chart is redrawn when its width changes (a turned phone, a resized
  // window, the page shown after signing in), not scaled.
  // chart() leaves a chart whose width and figures did not change alone.
  const resized = new ResizeObserver((entries) => {
    if (!timeline) return;
    for (const { target } of entries) {
      if (target.clientWidth) chart(target, timeline, target.id.slice('chart-'.length));
    }
  });
  for (const resource of RESOURCES) resized.observe(document.getElementById(`chart-${resource}`));
  document.addEventListener('hq-signed-out', () => {
    clearTimeout(timer);
    latestPoll += 1; // an answer still out is dropped
  });
  hq.setUpCredential(poll);
});
