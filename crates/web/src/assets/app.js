// blackbox dashboard. Every page is built from the JSON API with DOM
// methods and textContent only: nothing a device sent is parsed as HTML.
'use strict';

const B = document.body.dataset.base || '';
const PAGE = document.body.dataset.page;
const main = document.getElementById('main');
const ICONS = { ok: '\u2714', warning: '\u25B2', error: '\u25C6', critical: '\u2716', grey: '?', black: '\u25A0' };
let session = { actions: false };
let waiting = false;
let refreshTimer = null;
// The server's clock minus the browser's: ages are the server's (it may judge an old day's logs).
let skew = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.appendChild(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
  }
  return e;
}

function badge(level) {
  return el('span', { class: 'badge level-' + level, title: level }, el('span', { class: 'icon', 'aria-hidden': 'true' }, ICONS[level] || '?'), ' ' + level);
}

function ago(iso) {
  if (!iso) return '-';
  const s = (Date.now() + skew - Date.parse(iso)) / 1000;
  if (s < 0) return iso.replace('T', ' ').slice(0, 19);
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 172800) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' days ago';
}

function when(iso) { return iso ? iso.replace('T', ' ').slice(0, 19) : '-'; }

function path(...segments) { return segments.map(encodeURIComponent).join('/'); }

// `file:line` of a log line, linked to the line with the lines around it (the log page).
function where(file, line) {
  const day = /^(\d{8})\.txt/.exec(file || '');
  const text = `${file}:${line}`;
  return el('span', { class: 'where' }, day && line ? el('a', { href: B + 'log?day=' + day[1] + '&line=' + line }, text) : text, ' ');
}

// The id in the page's own path, after `prefix/`.
function idFromPath(prefix) {
  const p = location.pathname;
  const i = p.indexOf('/' + prefix + '/');
  return i < 0 ? '' : p.slice(i + prefix.length + 2).split('/').map(decodeURIComponent).join('/');
}

async function api(p) {
  const r = await fetch(B + p, { headers: { Accept: 'application/json' } });
  if (r.status === 503) { showProgress(await r.json()); throw new Error('catching up'); }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function replace(...kids) {
  main.replaceChildren(...kids.flat().filter(k => k !== null && k !== undefined));
}

function showError(e) {
  if (String(e.message) === 'catching up') return;
  replace(el('p', { class: 'error' }, 'Could not load this page: ' + e.message));
}

// The please-wait page while the cache is caught up or rebuilt.
function showProgress(p) {
  waiting = true;
  const pct = p.bytes_total ? Math.min(100, Math.round(100 * p.bytes_done / p.bytes_total)) : 0;
  const left = p.seconds_left === null || p.seconds_left === undefined ? '' : ', about ' + Math.ceil(p.seconds_left) + ' s left';
  replace(
    el('section', { class: 'wait', id: 'wait' },
      el('h1', {}, 'Please wait: ' + (p.what || 'catching up')),
      el('p', {}, 'blackbox is reading the logs into its cache. This page turns into the real one by itself when it is done.'),
      el('progress', { max: '100', value: String(pct) }),
      el('p', { id: 'wait-figures' }, `day ${p.day || '-'} (${Math.min(p.days_done + 1, p.days_total)} of ${p.days_total}), ${p.lines} lines, ${p.lines_per_s} lines/s${left}`)));
}

// At most one refresh per `ms`, however many events ask for one.
function refreshSoon(f, ms = 300) {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; f(); }, ms);
}

// ---- status bar ----
async function statusBar() {
  try {
    const b = await (await fetch(B + 'api/bar')).json();
    skew = Date.parse(b.now) - Date.now();
    const parts = b.sources.map(s => `${s.source}: last line ${ago(s.last)}`);
    if (b.lag_s !== null && b.lag_s !== undefined) parts.push(`cache ${b.lag_s < 2 ? 'current' : Math.round(b.lag_s) + ' s behind'}`);
    if (b.disk_free_bytes !== null) parts.push(`${(b.disk_free_bytes / 1e9).toFixed(1)} GB free for the logs`);
    const bar = document.getElementById('status-bar');
    bar.replaceChildren(el('span', { class: 'site' }, b.site), ' ', parts.join(' \u00B7 '));
    bar.classList.toggle('stale', b.sources.some(s => s.age_s > 600));
  } catch (e) {
    const bar = document.getElementById('status-bar');
    bar.textContent = 'disconnected: blackbox does not answer (stopped?); this page shows what it last knew';
    bar.classList.add('stale');
  }
}

// ---- overview ----
const filters = { source: '', level: '', text: '' };

async function overview() {
  const s = await api('api/status');
  skew = Date.parse(s.at) - Date.now();
  if (document.getElementById('groups')) {
    // A refresh: the filters stay as they are (and keep the focus).
    document.getElementById('site').replaceChildren(badge(s.level), ' ', s.site + ': ' + siteCounts(s));
    overviewRender(s);
    return;
  }
  const sources = [...new Set(s.devices.map(d => d.source))];
  const select = (name, options) => el('select', { id: 'filter-' + name, 'aria-label': name, onchange: e => { filters[name] = e.target.value; overviewRender(s); } },
    el('option', { value: '' }, 'every ' + name), ...options.map(o => el('option', { value: o, selected: filters[name] === o ? 'selected' : null }, o)));
  replace(
    el('h1', { id: 'site' }, badge(s.level), ' ', s.site + ': ' + siteCounts(s)),
    el('div', { class: 'filters' },
      select('source', sources), select('level', ['ok', 'warning', 'error', 'critical', 'grey', 'black']),
      el('input', { id: 'filter-text', type: 'search', placeholder: 'filter by name or why', value: filters.text, oninput: e => { filters.text = e.target.value; overviewRender(s); } })),
    el('div', { id: 'groups' }),
    notificationsPart(s.notifications));
  overviewRender(s);
}

function siteCounts(s) {
  return Object.entries(s.counts).filter(([, n]) => n > 0).map(([l, n]) => `${n} ${l}`).join(', ') || 'no devices yet';
}

// Acknowledged devices and silence globs, from the status' notifications part.
function quiet(s, device) {
  const n = s.notifications;
  if (!n) return null;
  if (n.acks.some(a => a.device === device)) return 'acknowledged';
  const glob = g => new RegExp('^' + g.split('*').map(p => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '$');
  if (n.silences.some(x => glob(x.glob).test(device))) return 'silenced';
  return null;
}

function overviewRender(s) {
  const t = filters.text.toLowerCase();
  const shown = s.devices.filter(d => (!filters.source || d.source === filters.source) && (!filters.level || d.level === filters.level)
    && (!t || d.device.toLowerCase().includes(t) || d.why.toLowerCase().includes(t)));
  const groups = {};
  shown.sort((a, b) => a.device.localeCompare(b.device, undefined, { numeric: true }));
  for (const d of shown) (groups[d.source] = groups[d.source] || []).push(d);
  const out = Object.entries(groups).map(([source, ds]) => el('section', { class: 'group' }, el('h2', {}, source),
    el('div', { class: 'tiles' }, ds.map(d => el('a', { class: 'tile level-' + d.level, href: B + 'device/' + path(...d.device.split('/')), 'data-device': d.device },
      badge(d.level), el('strong', { class: 'name' }, d.device.slice(d.source.length + 1) || d.device),
      el('span', { class: 'why' }, d.why), el('span', { class: 'seen' }, 'last seen ' + ago(d.last_seen)),
      quiet(s, d.device) ? el('span', { class: 'quiet' }, quiet(s, d.device)) : null)))));
  document.getElementById('groups').replaceChildren(...(out.length ? out : [el('p', {}, 'No device matches.')]));
}

function notificationsPart(n) {
  if (!n) return null;
  return el('section', { class: 'notifications' }, el('h2', {}, `Notifications: ${n.sent} sent, ${n.failed} failed`),
    el('ul', {}, n.last.map(e => el('li', {}, when(e.at) + ' ', e.outcome === 'sent' ? 'by ' + e.channel : 'FAILED', ': ' + e.text)),
      n.acks.map(a => el('li', {}, `acknowledged ${a.device} (${a.level})` + (a.note ? ` (${a.note})` : ''))),
      n.silences.map(x => el('li', {}, `silenced ${x.glob} until ${when(x.until)}` + (x.note ? ` (${x.note})` : '')))));
}

// ---- device ----
let deviceId = '';

async function device() {
  deviceId = idFromPath('device');
  const d = await api('api/device/' + path(...deviceId.split('/')));
  const results = d.results.length ? el('table', { class: 'results' },
    el('tr', {}, el('th', {}, 'level'), el('th', {}, 'check'), el('th', {}, 'sensor'), el('th', {}, 'since'), el('th', {}, 'why'), el('th', {}, 'the line behind it')),
    d.results.map(r => el('tr', { class: 'level-' + r.level }, el('td', {}, badge(r.level)), el('td', {}, r.check), el('td', {}, r.sensor), el('td', {}, when(r.since)), el('td', {}, r.message),
      el('td', {}, r.cause ? el('div', {}, where(r.cause.file, r.cause.line), el('code', { class: 'raw' }, r.cause.text || '')) : '-'))))
    : el('p', {}, 'Every check passes.');
  const checks = d.checks.length ? el('table', { class: 'checks' },
    el('tr', {}, ['check', 'kind', 'sensor', 'its level', 'now'].map(h => el('th', {}, h))),
    d.checks.map(c => el('tr', { class: c.state === 'passes' ? 'passes' : 'level-' + c.level },
      el('td', {}, c.check), el('td', {}, c.kind), el('td', {}, c.sensor), el('td', {}, c.level),
      el('td', {}, c.state === 'passes' ? 'passes' : badge(c.level), c.state === 'passes' ? '' : ` ${c.state} since ${when(c.since)}`))))
    : el('p', {}, 'No check applies to it.');
  const sensors = el('div', { class: 'sensors' }, d.sensors.map(s => {
    const c = el('canvas', { class: 'mini', width: '300', height: '60' });
    const card = el('div', { class: 'sensor' }, el('a', { href: B + 'sensor/' + path(...s.sensor.split('/')) }, s.sensor.split('/').pop()),
      el('span', { class: 'value' }, s.value === null ? '-' : String(s.value) + (s.unit ? ' ' + s.unit : '')), c);
    if (s.kind !== 'text') api('api/sensor/' + path(...s.sensor.split('/')) + '?epoch=ms').then(data => plot(c, data, { mini: true })).catch(() => {});
    return card;
  }));
  const lines = el('ol', { id: 'lines', class: 'lines' }, d.last_lines.slice().reverse().map(l => el('li', {}, where(l.file, l.line), el('code', {}, l.text || ''))));
  const ack = session.actions ? el('div', { class: 'controls' },
    d.level !== 'ok' ? el('button', { id: 'ack', onclick: () => act('api/ack', { device: deviceId, note: prompt('Acknowledge: a note for the others (optional)') || '' }) }, 'Acknowledge') : null,
    el('button', { id: 'silence', onclick: () => { const f = prompt('Silence its notifications for how long?', '2h'); if (f) act('api/silence', { glob: deviceId, for: f, note: 'from the dashboard' }); } }, 'Silence...')) : null;
  const events = d.events.length ? el('table', { class: 'events' },
    el('tr', {}, ['time', 'level', 'code', 'what', 'the line'].map(h => el('th', {}, h))),
    d.events.map(e => el('tr', {}, el('td', {}, when(e.time)), el('td', {}, badge(e.level)), el('td', {}, e.code), el('td', {}, e.description),
      el('td', {}, where(e.file, e.line), el('code', {}, e.text)))))
    : el('p', {}, 'No events from its source in the last day.');
  replace(
    el('h1', {}, badge(d.level), ' ', d.device),
    el('p', { class: 'why' }, `${d.why} (since ${when(d.since)}, last seen ${ago(d.last_seen)})`), quietPart(d), ack,
    el('h2', {}, 'Checks'), results,
    el('h2', {}, 'Every check of it'), checks,
    el('h2', {}, 'Events of ' + d.source + ', last day'), events,
    el('h2', {}, 'Sensors, their last 24 hours of readings'), sensors,
    el('h2', {}, 'Last lines (newest first)'), lines);
}

// Whether notifications about the device were acknowledged or silenced, as its tile says.
function quietPart(d) {
  const parts = [];
  const a = d.acknowledged;
  if (a) parts.push(`acknowledged (${a.level}) at ${when(a.at)}` + (a.until ? ` until ${when(a.until)}` : ' until its level changes') + (a.note ? ` (${a.note})` : ''));
  for (const x of d.silenced || []) parts.push(`silenced (${x.glob}) until ${when(x.until)}` + (x.note ? ` (${x.note})` : ''));
  return parts.length ? el('ul', { class: 'quiet', id: 'quiet' }, parts.map(p => el('li', {}, p))) : null;
}

function deviceLine(l) {
  if (!l.devices.includes(deviceId)) return;
  const list = document.getElementById('lines');
  if (!list) return;
  list.prepend(el('li', { class: 'new' }, el('span', { class: 'where' }, when(new Date(l.time_ms).toISOString()) + ' '), el('code', {}, l.text)));
  while (list.children.length > 50) list.lastChild.remove();
}

async function act(url, body) {
  const r = await fetch(B + url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf || '' }, body: JSON.stringify(body) });
  const res = await r.json();
  alert(r.ok ? 'Done.' : 'Refused: ' + res.error);
  // The page shows what was done (acknowledged, silenced).
  if (r.ok) render();
}

// ---- sensor ----
let sensorRange = null;

async function sensor() {
  const id = idFromPath('sensor');
  const q = new URLSearchParams(location.search);
  if (!sensorRange) sensorRange = { from: q.get('from') || '', to: q.get('to') || '', every: q.get('every') || 'auto' };
  // The range in the address, so a reload or a link shows the same.
  const shown = new URLSearchParams({ from: sensorRange.from, to: sensorRange.to, every: sensorRange.every });
  history.replaceState(null, '', location.pathname + '?' + shown);
  const query = `from=${encodeURIComponent(sensorRange.from)}&to=${encodeURIComponent(sensorRange.to)}&every=${sensorRange.every}`;
  const url = 'api/sensor/' + path(...id.split('/')) + '?' + query;
  // Times as numbers for the plot (a year of hours is 8,760 of them); the
  // downloads have them as the API gives them by default.
  const data = await api(url + '&epoch=ms');
  const canvas = el('canvas', { id: 'plot', width: '960', height: '360' });
  const span = r => el('button', { onclick: () => { sensorRange = { from: r, to: 'now', every: 'auto' }; sensor().catch(showError); } }, r.slice(1));
  // A mean to six digits (the downloads have all of them); times in UTC, as everywhere.
  const mean = data.columns.indexOf('mean');
  const cell = (c, i) => el('td', {}, c === null ? '' : i === 0 ? when(new Date(c).toISOString())
    : i === mean && Math.abs(c) < 1e6 ? String(Number(c.toPrecision(6))) : String(c));
  const table = el('table', { class: 'values' }, el('tr', {}, data.columns.map((c, i) => el('th', {}, i === 0 ? c + ' (UTC)' : c))),
    data.rows.slice(-500).reverse().map(r => el('tr', {}, r.map(cell))));
  replace(
    el('h1', {}, id + (data.unit ? ` (${data.unit})` : '')),
    el('div', { class: 'controls' }, ['-1h', '-24h', '-7d', '-30d', '-365d'].map(span),
      el('span', {}, ` ${when(data.from)} to ${when(data.to)}, ${data.every === 'raw' ? 'readings' : data.columns.includes('increment') ? data.every + ' increments' : data.every + ' rollups (min, mean, max)'}; wheel to zoom, drag to pan `),
      el('a', { href: B + url + '&format=csv', download: '' }, 'CSV'), ' ', el('a', { href: B + url }, 'JSON')),
    data.rows.length ? null : el('p', { class: 'error' }, 'No readings in this range: the buttons above choose another, ending now.'),
    canvas, el('h2', {}, 'Values (newest first)'), table);
  plot(canvas, data, { onRange: (from, to) => { sensorRange = { from: new Date(from).toISOString(), to: new Date(to).toISOString(), every: 'auto' }; refreshSoon(() => sensor().catch(showError)); } });
}

// Round values for about n ticks from lo to hi: steps of 1, 2 or 5 times a
// power of ten, and as many decimals as the step needs.
function niceTicks(lo, hi, n) {
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw * 0.7);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) ticks.push({ v: i * step, label: (i * step).toFixed(decimals) });
  return ticks;
}

// Round times (UTC) for about n ticks from x0 to x1 (ms): whole seconds,
// minutes, hours, days or months, labelled as much as the step needs.
const TIME_STEPS = [1, 2, 5, 10, 15, 30].map(s => s * 1e3)
  .concat([1, 2, 5, 10, 15, 30].map(m => m * 60e3), [1, 2, 3, 6, 12].map(h => h * 3600e3), [1, 2, 7, 14].map(d => d * 86400e3));
function timeTicks(x0, x1, n) {
  const raw = (x1 - x0) / n, ticks = [];
  const iso = t => new Date(t).toISOString();
  const step = TIME_STEPS.find(s => s >= raw * 0.7);
  if (step) {
    // Within a day, midnight shows the date instead.
    const label = step >= 86400e3 ? t => iso(t).slice(0, 10)
      : t => t % 86400e3 === 0 ? iso(t).slice(5, 10) : iso(t).slice(11, step < 60e3 ? 19 : 16);
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) ticks.push({ t, label: label(t) });
    return ticks;
  }
  // Months: the first of a month, every 1, 2, 3, 6 or 12 months (or more years).
  const months = [1, 2, 3, 6, 12].find(m => m * 30.44 * 86400e3 >= raw * 0.7) || 12 * Math.ceil(raw / (365.25 * 86400e3));
  const d = new Date(x0);
  let m = d.getUTCFullYear() * 12 + d.getUTCMonth();
  if (Date.UTC(Math.floor(m / 12), m % 12, 1) < x0) m += 1;
  m = Math.ceil(m / months) * months;
  for (let t = Date.UTC(Math.floor(m / 12), m % 12, 1); t <= x1; m += months, t = Date.UTC(Math.floor(m / 12), m % 12, 1)) {
    ticks.push({ t, label: months >= 12 ? iso(t).slice(0, 4) : iso(t).slice(0, 7) });
  }
  return ticks;
}

// The points to draw from the API's rows, in columns of typed arrays (time,
// low, middle, high: the row's columns `at`), without those with a missing
// value, in one pass that allocates nothing per row. Times are numbers
// (`epoch=ms`) or text. With more points than pixel columns, one point per
// column, with the lowest low, the mean of the middles and the highest
// high of the points in it (as plotting libraries do for long series): a
// year of hours is 8,760 points for some 900 columns, and the drawing
// costs what the columns do.
function plotPoints(rows, at, x0, x1, width) {
  const n = rows.length, reduce = n > width * 2, [a, b, c] = at;
  const out = { t: new Float64Array(n), lo: new Float64Array(n), mid: new Float64Array(n), hi: new Float64Array(n), length: 0, reduced: reduce };
  const num = v => typeof v === 'number' ? v : v === null || v === undefined ? NaN : Number(v);
  let col = NaN, k = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    const t = typeof r[0] === 'number' ? r[0] : Date.parse(r[0]), lo = num(r[a]), mid = num(r[b]), hi = num(r[c]);
    if (!(Number.isFinite(t) && Number.isFinite(lo) && Number.isFinite(mid) && Number.isFinite(hi))) continue;
    const column = reduce ? Math.floor((t - x0) / (x1 - x0) * width) : i;
    if (column !== col) {
      if (out.length) out.mid[out.length - 1] /= k;
      col = column; k = 1;
      out.t[out.length] = t; out.lo[out.length] = lo; out.mid[out.length] = mid; out.hi[out.length] = hi;
      out.length++;
    } else {
      const j = out.length - 1;
      if (lo < out.lo[j]) out.lo[j] = lo;
      if (hi > out.hi[j]) out.hi[j] = hi;
      out.mid[j] += mid; k++;
    }
  }
  if (out.length) out.mid[out.length - 1] /= k;
  return out;
}

// Draws readings (a line) or rollups (a min-max band and the mean) and the range checks' limits.
// The time the last full-size drawing took is kept in window.blackboxPlotMs.
// With window.blackboxMeasure set (`bench web` sets it in a real browser),
// the page's own style and layout are done before the clock starts (they
// are the page's cost, not the plot's) and the drawing is rasterised before
// it stops (the browser would otherwise do that later, at the next frame).
function plot(canvas, data, opts) {
  const measure = window.blackboxMeasure && !opts.mini;
  if (measure) void document.body.offsetHeight;
  const started = performance.now();
  drawPlot(canvas, data, opts);
  if (measure) canvas.getContext('2d').getImageData(0, 0, 1, 1);
  if (!opts.mini) window.blackboxPlotMs = performance.now() - started;
}

function drawPlot(canvas, data, opts) {
  const ratio = window.devicePixelRatio || 1;
  const W = canvas.width, H = canvas.height;
  canvas.width = W * ratio; canvas.height = H * ratio; canvas.style.width = W + 'px'; canvas.style.height = H + 'px';
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  const raw = data.every === 'raw';
  const counter = data.columns.includes('increment');
  const x0 = Date.parse(data.from), x1 = Date.parse(data.to);
  const L = opts.mini ? 2 : 50, R = W - 4, T = 4, Bm = opts.mini ? H - 2 : H - 22;
  const pts = plotPoints(data.rows, raw ? [1, 1, 1] : counter ? [2, 2, 2] : [2, 3, 4], x0, x1, R - L);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < pts.length; i++) { lo = Math.min(lo, pts.lo[i]); hi = Math.max(hi, pts.hi[i]); }
  for (const t of data.thresholds || []) for (const v of [t.min, t.max]) if (v !== null && v !== undefined) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  const X = t => L + (t - x0) / (x1 - x0) * (R - L), Y = v => Bm - (v - lo) / (hi - lo) * (Bm - T);
  g.clearRect(0, 0, W, H);
  g.font = '11px sans-serif'; g.fillStyle = '#666'; g.strokeStyle = '#ddd';
  if (!opts.mini) {
    for (const { v, label } of niceTicks(lo, hi, 5)) {
      const y = Y(v);
      g.beginPath(); g.moveTo(L, y); g.lineTo(R, y); g.stroke();
      g.fillText(label, 2, y + 4);
    }
    g.textAlign = 'center';
    for (const { t, label } of timeTicks(x0, x1, 6)) {
      const x = X(t);
      g.beginPath(); g.moveTo(x, Bm); g.lineTo(x, Bm + 4); g.stroke();
      g.fillText(label, Math.max(L + 30, Math.min(x, R - 30)), H - 6);
    }
    g.textAlign = 'start';
  }
  // Reduced to pixel columns, the band is a rectangle per column and the
  // line one pixel wide: a ragged outline or a thick line with a join at
  // each column costs the browser several times more than the columns do
  // (20 to 35 ms each for a year of noisy temperatures in Chromium's
  // software drawing, against 1 to 2: docs/performance.md, Dashboard).
  const n = pts.length;
  if (!raw && !counter && n) {
    g.fillStyle = 'rgba(70,130,180,0.25)';
    if (pts.reduced) {
      for (let i = 0; i < n; i++) {
        const top = Y(pts.hi[i]);
        g.fillRect(Math.floor(X(pts.t[i])), top, 1, Math.max(1, Y(pts.lo[i]) - top));
      }
    } else {
      g.beginPath();
      g.moveTo(X(pts.t[0]), Y(pts.hi[0]));
      for (let i = 1; i < n; i++) g.lineTo(X(pts.t[i]), Y(pts.hi[i]));
      for (let i = n - 1; i >= 0; i--) g.lineTo(X(pts.t[i]), Y(pts.lo[i]));
      g.closePath(); g.fill();
    }
  }
  g.strokeStyle = '#2a6fb0'; g.lineWidth = pts.reduced ? 1 : 1.5;
  g.beginPath();
  for (let i = 0; i < n; i++) {
    const x = X(pts.t[i]);
    if (raw || counter) {
      // Through each column's lowest and highest value: a spike stays visible.
      i ? g.lineTo(x, Y(pts.lo[i])) : g.moveTo(x, Y(pts.lo[i]));
      if (pts.hi[i] !== pts.lo[i]) g.lineTo(x, Y(pts.hi[i]));
    } else {
      i ? g.lineTo(x, Y(pts.mid[i])) : g.moveTo(x, Y(pts.mid[i]));
    }
  }
  g.stroke();
  if (n === 1) {
    // A lone reading makes no line: a dot, so that it shows.
    g.fillStyle = '#2a6fb0';
    g.beginPath(); g.arc(X(pts.t[0]), Y(raw || counter ? pts.lo[0] : pts.mid[0]), 2.5, 0, 2 * Math.PI); g.fill();
  }
  g.setLineDash([6, 4]);
  for (const t of data.thresholds || []) {
    g.strokeStyle = { warning: '#c90', error: '#e67e00', critical: '#c00' }[t.level] || '#999';
    for (const v of [t.min, t.max]) if (v !== null && v !== undefined) { g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(R, Y(v)); g.stroke(); }
  }
  g.setLineDash([]);
  if (!opts.onRange) return;
  canvas.onwheel = e => {
    e.preventDefault();
    const t = x0 + (e.offsetX - L) / (R - L) * (x1 - x0), k = e.deltaY > 0 ? 1.5 : 1 / 1.5;
    opts.onRange(t - (t - x0) * k, t + (x1 - t) * k);
  };
  let down = null;
  canvas.onmousedown = e => { down = e.offsetX; };
  canvas.onmouseup = e => {
    if (down === null) return;
    const dt = (down - e.offsetX) / (R - L) * (x1 - x0);
    down = null;
    if (Math.abs(dt) > 0) opts.onRange(x0 + dt, x1 + dt);
  };
}

// ---- live ----
let paused = false;
// Lines that came while paused, shown on resume (the newest 1,000).
let held = [];

async function live() {
  const lines = await api('api/lines');
  const list = el('ol', { id: 'live', class: 'lines' });
  replace(
    el('h1', {}, 'Live'),
    el('div', { class: 'controls' },
      el('input', { id: 'live-filter', type: 'search', placeholder: 'filter (source, device or text)', oninput: liveFilter }),
      el('button', { id: 'pause', onclick: e => {
        paused = !paused;
        e.target.textContent = paused ? 'Resume' : 'Pause';
        if (!paused) { const lines = held; held = []; lines.forEach(liveLine); }
      } }, 'Pause')),
    list);
  lines.forEach(liveLine);
}

function liveLine(l) {
  const list = document.getElementById('live');
  if (!list) return;
  if (paused) {
    held.push(l);
    if (held.length > 1000) held.shift();
    return;
  }
  const item = el('li', {}, el('span', { class: 'where' }, when(new Date(l.time_ms).toISOString()) + ' '), el('span', { class: 'source' }, l.source + ' '),
    el('code', { class: l.decoded ? 'decoded' : 'raw' }, l.decoded || l.text));
  item.dataset.text = (l.source + ' ' + l.text + ' ' + (l.decoded || '') + ' ' + l.devices.join(' ')).toLowerCase();
  const f = document.getElementById('live-filter').value.toLowerCase();
  item.hidden = f && !item.dataset.text.includes(f);
  list.prepend(item);
  while (list.children.length > 1000) list.lastChild.remove();
}

function liveFilter(e) {
  const f = e.target.value.toLowerCase();
  for (const li of document.querySelectorAll('#live li')) li.hidden = f && !li.dataset.text.includes(f);
}

// ---- history ----
async function historyPage() {
  const [ts, es] = await Promise.all([api('api/transitions?limit=2000'), api('api/events?limit=1000')]);
  const rows = ts.filter(t => t.kind === 'device').map(t => ({ time: t.time, level: t.to, what: `${t.subject}: ${t.from} \u2192 ${t.to}`, why: t.message, device: t.device, cause: t.cause }))
    .concat(es.map(e => ({ time: e.time, level: e.level, what: `${e.source}: event ${e.code}`, why: e.description || e.text, device: null, cause: { file: e.file, line: e.line }, text: e.text })))
    .sort((a, b) => b.time.localeCompare(a.time));
  const table = el('table', { id: 'history', class: 'history' }, el('tr', {}, ['time', 'level', 'what', 'why', 'line'].map(h => el('th', {}, h))),
    rows.map(r => el('tr', { 'data-text': (r.what + ' ' + r.why).toLowerCase() }, el('td', {}, when(r.time)), el('td', {}, badge(r.level)),
      el('td', {}, r.device ? el('a', { href: B + 'device/' + path(...r.device.split('/')) }, r.what) : r.what), el('td', {}, r.why),
      el('td', {}, r.cause ? where(r.cause.file, r.cause.line) : ''))));
  replace(el('h1', {}, 'History (the last 2,000 changes and 1,000 events)'),
    el('input', { type: 'search', placeholder: 'filter', oninput: e => { const f = e.target.value.toLowerCase(); for (const tr of table.querySelectorAll('tr[data-text]')) tr.hidden = f && !tr.dataset.text.includes(f); } }),
    table);
}

// ---- log: a line and the lines around it ----
async function logPage() {
  const q = new URLSearchParams(location.search);
  const day = q.get('day') || '', line = Number(q.get('line')), context = Math.min(100, Number(q.get('context')) || 10);
  const l = await api(`api/log?day=${encodeURIComponent(day)}&line=${encodeURIComponent(q.get('line') || '')}&context=${context}`);
  const more = el('a', { href: B + `log?day=${day}&line=${line}&context=${Math.min(100, context * 4)}` }, 'more lines around it');
  const list = el('ol', { id: 'log', class: 'lines' }, l.lines.map(x => el('li', x.line === l.line ? { class: 'target', id: 'target' } : {},
    el('span', { class: 'where' }, `${x.line} `), el('code', {}, x.text))));
  replace(el('h1', {}, `${l.file}:${l.line}`),
    el('p', {}, `The line and ${context} lines either side, as they are in the log. `, context < 100 ? more : null),
    list);
  document.getElementById('target').scrollIntoView({ block: 'center' });
}

// ---- fleet (serve --sites) ----
async function fleet() {
  const f = await (await fetch(B + 'api/fleet', { headers: { Accept: 'application/json' } })).json();
  skew = Date.parse(f.at) - Date.now();
  const text = s => s.error ? 'cannot read: ' + s.error : !s.ready ? 'catching up' : s.devices + ' devices: ' + siteCounts(s);
  replace(
    el('h1', { id: 'site' }, badge(f.level), ` fleet: ${f.sites.length} sites: ` + (siteCounts(f) || 'none yet')),
    el('div', { class: 'tiles', id: 'sites' }, f.sites.map(s => el('a', { class: 'tile level-' + s.level, href: B + 'sites/' + path(s.site) + '/', 'data-site': s.site },
      badge(s.level), el('strong', { class: 'name' }, s.site), el('span', { class: 'why' }, text(s)),
      el('span', { class: 'seen' }, 'last seen ' + ago(s.last_seen))))));
  document.getElementById('status-bar').textContent = 'updated ' + when(f.at);
}

// ---- wiring ----
const PAGES = { overview, device, sensor, live, history: historyPage, log: logPage, fleet };

function render() {
  waiting = false;
  return (PAGES[PAGE] || overview)().catch(showError);
}

async function start() {
  if (PAGE === 'fleet') {
    // The fleet has no stream of its own: it looks again every few seconds.
    render();
    setInterval(render, 5000);
    return;
  }
  try { session = await (await fetch(B + 'api/session')).json(); } catch (e) { /* read-only */ }
  // The page does not wait for the live stream: a proxy may buffer it, or it may be refused.
  try {
    const p = await (await fetch(B + 'api/progress')).json();
    if (p.ready) { main.dataset.shown = '1'; render(); } else showProgress(p);
  } catch (e) { showError(e); }
  const events = new EventSource(B + 'events');
  events.onerror = () => document.getElementById('status-bar').classList.add('stale');
  events.addEventListener('progress', e => showProgress(JSON.parse(e.data)));
  events.addEventListener('ready', () => { if (waiting || !main.dataset.shown) { main.dataset.shown = '1'; render(); } });
  events.addEventListener('indexed', () => {
    if (waiting) return;
    if (PAGE === 'overview') refreshSoon(render, 300);
    if (PAGE === 'device') refreshSoon(render, 5000);
    // A sensor's page that ends now follows new readings.
    if (PAGE === 'sensor' && sensorRange && (!sensorRange.to || sensorRange.to === 'now')) refreshSoon(render, 5000);
    statusBar();
  });
  events.addEventListener('line', e => {
    const l = JSON.parse(e.data);
    if (PAGE === 'live') liveLine(l);
    if (PAGE === 'device') deviceLine(l);
  });
  statusBar();
  setInterval(statusBar, 5000);
}

start();
