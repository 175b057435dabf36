// hakv node console, loaded by /ui: cluster members, live charts computed from
// /metrics, and a key browser. Plain browser JavaScript, no framework and no build step. It
// calls only this node's own HTTP API (docs/api.md), on the same origin.

const POLL_MS = 2000; // /cluster and /metrics are read this often
const POINTS = 90; // samples a chart keeps: 3 minutes
const TOKEN_KEY = 'hakv.token';

const $ = (selector) => document.querySelector(selector);

// ---- the API --------------------------------------------------------------------------------

// Every request carries the bearer token when one is set (docs/security.md).
async function api(path, { method = 'GET', headers = {}, body } = {}) {
  const h = new Headers(headers);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.set('Authorization', `Bearer ${token}`);
  if (body !== undefined) h.set('Content-Type', 'application/json');
  return fetch(path, { method, headers: h, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
}

// "404 key_not_found: Key not found" from an error answer (`{"code", "error"}`).
async function describe(res) {
  const text = await res.text();
  try {
    const json = JSON.parse(text);
    return `${res.status} ${json.code ?? ''}: ${json.error ?? text}`.trim();
  } catch {
    return `${res.status} ${res.statusText} ${text}`.trim();
  }
}

// A key's path, as the client's `data_path` (crates/api/src/key_path.rs) writes it: `/` kept,
// each segment percent-encoded, and "." and ".." escaped so that no URL normaliser drops them.
const escape = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const dataPath = (key) =>
  '/data/' + key.split('/').map((s) => (s === '.' ? '%2E' : s === '..' ? '%2E%2E' : escape(s))).join('/');

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

// ---- cluster ----------------------------------------------------------------------------------

function renderCluster(c) {
  const rows = []; // {id, addr, link, role, state, matched, lag}
  if (c.mode === 'single') {
    $('#node-name').textContent = location.host;
    $('#cluster-summary').textContent = 'Single node: no cluster; this node serves every read and write itself.';
    rows.push({ id: '—', addr: `${location.host} (this node)`, role: 'single', state: 'serving', matched: '—', lag: '—' });
    $('#cluster-note').textContent = '';
  } else {
    const leader = c.leader;
    $('#node-name').textContent = `node ${c.node_id} · ${c.state}`;
    $('#cluster-summary').textContent =
      `Node ${c.node_id} is ${c.state} in term ${c.term}. ` +
      (!leader ? 'No leader is known. ' : leader.id === c.node_id ? '' : `The leader is node ${leader.id} (${leader.addr}). `) +
      `Log: last ${c.last_log_index ?? '—'}, committed ${c.commit_index ?? '—'}, applied ${c.applied_index ?? '—'}` +
      (c.millis_since_quorum_ack != null ? `; a majority answered ${c.millis_since_quorum_ack} ms ago.` : '.');
    // Only the leader knows how far each follower is (`replication`).
    const replication = new Map((c.replication ?? []).map((r) => [r.id, r]));
    for (const m of c.members) {
      const self = m.id === c.node_id;
      const r = replication.get(m.id);
      rows.push({
        id: m.id,
        addr: m.addr + (self ? ' (this node)' : ''),
        link: self ? null : m.addr,
        role: m.role,
        state: self ? c.state : leader && m.id === leader.id ? 'leader' : leader ? 'follower' : '?',
        matched: r ? r.matched_index : self && c.state === 'leader' ? c.last_log_index : '—',
        lag: r ? r.lag : self && c.state === 'leader' ? 0 : '—',
      });
    }
    $('#cluster-note').textContent =
      c.replication || !leader ? '' : `Lag is measured by the leader: open the console of node ${leader.id} to see it.`;
  }
  $('#members tbody').replaceChildren(
    ...rows.map((row) => {
      const tr = el('tr');
      tr.dataset.state = row.state;
      const addr = el('td');
      if (row.link) {
        const a = el('a', row.addr);
        a.href = `${location.protocol}//${row.link}/ui`;
        addr.append(a);
      } else addr.textContent = row.addr;
      tr.append(el('td', String(row.id)), addr, el('td', row.role));
      const state = el('td');
      state.append(el('span', row.state, `badge ${row.state}`));
      tr.append(state, el('td', String(row.matched), 'num'), el('td', String(row.lag), 'num'));
      return tr;
    }),
  );
}

// ---- metrics and charts -------------------------------------------------------------------------

// Prometheus text format: one sample per line, `name{label="value",...} number`.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

// What one scrape says about requests under /data (not this page's own polling), the cache and
// a few gauges.
function summarize(samples) {
  const s = { t: performance.now() / 1000, requests: 0, errors: 0, buckets: new Map(), hits: 0, misses: 0, gauge: {} };
  for (const { name, labels, value } of samples) {
    const data = labels.route?.startsWith('/data');
    if (name === 'hakv_http_requests_total' && data) {
      s.requests += value;
      if (Number(labels.status) >= 500) s.errors += value;
    } else if (name === 'hakv_http_request_duration_seconds_bucket' && data) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      s.buckets.set(le, (s.buckets.get(le) ?? 0) + value);
    } else if (name === 'hakv_cache_hits_total') s.hits = value;
    else if (name === 'hakv_cache_misses_total') s.misses = value;
    else if (Object.keys(labels).length === 0) s.gauge[name] = value;
  }
  return s;
}

// The q-quantile of a cumulative histogram [[le, count]], interpolated within its bucket as
// Prometheus's histogram_quantile does; null without observations.
function quantile(q, buckets) {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (!total) return null;
  let [lower, below] = [0, 0];
  for (const [le, count] of buckets) {
    if (count >= q * total) {
      if (le === Infinity) return lower;
      return lower + ((le - lower) * (q * total - below)) / (count - below);
    }
    [lower, below] = [le, count];
  }
  return lower;
}

// Rates between two scrapes; null when the counters went back (the node restarted).
function rates(prev, cur) {
  const dt = cur.t - prev.t;
  if (cur.requests < prev.requests || dt <= 0) return null;
  const deltas = [...cur.buckets.keys()].sort((a, b) => a - b).map((le) => [le, cur.buckets.get(le) - (prev.buckets.get(le) ?? 0)]);
  const ms = (v) => (v === null ? null : v * 1000);
  const hits = cur.hits - prev.hits;
  const lookups = hits + cur.misses - prev.misses;
  return {
    qps: (cur.requests - prev.requests) / dt,
    errors: (cur.errors - prev.errors) / dt,
    p50: ms(quantile(0.5, deltas)),
    p99: ms(quantile(0.99, deltas)),
    hitRatio: lookups > 0 ? (100 * hits) / lookups : null,
  };
}

const fmt = (v, digits = 1) => (v === null || v === undefined ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));

function makeChart(id, legendId, series, fixedMax) {
  return { canvas: $(id), legend: $(legendId), series: series.map(([label, color]) => ({ label, color, values: [] })), fixedMax };
}

const charts = {
  qps: makeChart('#chart-qps', '#legend-qps', [['all', '--c1'], ['5xx', '--bad']]),
  latency: makeChart('#chart-latency', '#legend-latency', [['p50', '--c1'], ['p99', '--c2']]),
  cache: makeChart('#chart-cache', '#legend-cache', [['hits', '--c1']], 100),
};

function push(chart, ...values) {
  chart.series.forEach((s, i) => {
    s.values.push(values[i]);
    if (s.values.length > POINTS) s.values.shift();
  });
  chart.canvas.dataset.samples = chart.series[0].values.length;
  chart.canvas.dataset.last = values[0] ?? '';
  chart.legend.replaceChildren(
    ...chart.series.map((s, i) => {
      const span = el('span', `${s.label} ${fmt(values[i])}`);
      span.style.setProperty('--swatch', `var(${s.color})`);
      return span;
    }),
  );
  draw(chart);
}

// 1, 2 or 5 times a power of ten, at least v.
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((n) => n >= v);
}

function draw({ canvas, series, fixedMax }) {
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const dpr = window.devicePixelRatio || 1;
  const [w, h] = [canvas.clientWidth, canvas.clientHeight];
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const [left, right, top, bottom] = [48, 10, 8, 20];
  const seen = series.flatMap((s) => s.values).filter((v) => v !== null);
  const max = fixedMax ?? niceCeil(Math.max(0, ...seen));
  const x = (i) => left + ((w - left - right) * i) / (POINTS - 1);
  const y = (v) => top + (h - top - bottom) * (1 - v / max);

  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  ctx.strokeStyle = color('--grid');
  ctx.fillStyle = color('--muted');
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const f of [0, 0.5, 1]) {
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y(max * f)) + 0.5);
    ctx.lineTo(w - right, Math.round(y(max * f)) + 0.5);
    ctx.stroke();
    ctx.fillText(fmt(max * f, 2), left - 6, y(max * f));
  }
  ctx.textBaseline = 'alphabetic';
  ctx.fillText('now', w - right, h - 4);
  ctx.textAlign = 'left';
  ctx.fillText(`${(POINTS * POLL_MS) / 60000} min ago`, left, h - 4);

  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  for (const s of [...series].reverse()) {
    // The first series is drawn last, on top.
    const offset = POINTS - s.values.length; // the newest sample is at the right edge
    ctx.strokeStyle = ctx.fillStyle = color(s.color);
    ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) return void (pen = false);
      ctx[pen ? 'lineTo' : 'moveTo'](x(offset + i), y(v));
      pen = true;
    });
    ctx.stroke();
    const last = s.values.at(-1);
    if (last !== null && last !== undefined) {
      ctx.beginPath();
      ctx.arc(x(POINTS - 1), y(last), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

const bytes = (n) => {
  if (n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log2(Math.max(n, 1)) / 10));
  return `${fmt(n / 1024 ** i)} ${units[i]}`;
};

function renderStats(g) {
  const items = [
    ['keys', fmt(g.hakv_storage_keys, 0)],
    ['revision', fmt(g.hakv_storage_revision, 0)],
    ['in flight', fmt(g.hakv_http_requests_in_flight, 0)],
    ['cache', `${fmt(g.hakv_cache_entries, 0)} entries, ${bytes(g.hakv_cache_bytes)} of ${bytes(g.hakv_cache_capacity_bytes)}`],
    ['on disk', bytes(g.hakv_storage_disk_bytes)],
    ['memory', bytes(g.process_resident_memory_bytes)],
  ];
  $('#stats').replaceChildren(...items.map(([k, v]) => el('span', `${k} ${v}`)));
}

// ---- polling -----------------------------------------------------------------------------------

let previous = null;

async function poll() {
  try {
    const res = await api('/cluster');
    if (!res.ok) throw new Error(await describe(res));
    renderCluster(await res.json());
  } catch (e) {
    $('#cluster-summary').textContent = `Cannot read /cluster: ${e.message}`;
  }
  try {
    const res = await api('/metrics');
    if (!res.ok) throw new Error(await describe(res));
    const current = summarize(parseMetrics(await res.text()));
    const r = previous && rates(previous, current);
    if (r) {
      push(charts.qps, r.qps, r.errors);
      push(charts.latency, r.p50, r.p99);
      push(charts.cache, r.hitRatio);
    }
    previous = current;
    renderStats(current.gauge);
  } catch (e) {
    $('#stats').textContent = `Cannot read /metrics: ${e.message}`;
  }
  setTimeout(poll, POLL_MS);
}

// ---- the key browser ---------------------------------------------------------------------------

let scan = null; // the scan shown: {prefix, limit, cursor}

async function runScan(more = false) {
  if (!more) scan = { prefix: $('#prefix').value, limit: $('#limit').value || 50, cursor: null };
  let query = `?prefix=${escape(scan.prefix)}&limit=${escape(String(scan.limit))}`;
  if (more) query += `&cursor=${escape(scan.cursor)}`;
  const tbody = $('#scan tbody');
  try {
    const res = await api('/data' + query);
    if (!res.ok) throw new Error(await describe(res));
    const page = await res.json();
    if (!more) tbody.replaceChildren();
    for (const item of page.items) {
      const tr = el('tr');
      tr.dataset.key = item.key;
      const key = el('button', item.key, 'link');
      key.type = 'button';
      key.addEventListener('click', () => {
        $('#key').value = item.key;
        getKey();
      });
      const value = JSON.stringify(item.data);
      const td = el('td');
      td.append(key);
      tr.append(td, el('td', value.length > 120 ? value.slice(0, 119) + '…' : value, 'value'), el('td', String(item.revision), 'num'));
      tbody.append(tr);
    }
    scan.cursor = page.next_cursor;
    $('#scan-more').hidden = !page.next_cursor;
    const n = tbody.rows.length;
    $('#scan-status').textContent = n ? `${n} key${n === 1 ? '' : 's'} shown${page.next_cursor ? '; more follow' : ''}` : 'no keys';
  } catch (e) {
    $('#scan-status').textContent = `Scan failed: ${e.message}`;
  }
}

function showStatus(text, ok) {
  const p = $('#key-status');
  p.textContent = text;
  p.className = ok ? 'ok' : 'bad';
}

// The If-Match header when asked for: the ETag field as it is, or * for "it exists".
function condition() {
  if (!$('#if-match').checked) return {};
  const etag = $('#etag').value.trim();
  if (!etag) throw new Error('If-Match needs an ETag: read the key first');
  return { 'If-Match': etag === '*' || etag.startsWith('"') ? etag : `"${etag}"` };
}

function keyOrThrow() {
  const key = $('#key').value;
  if (!key) throw new Error('type a key first');
  return key;
}

async function getKey() {
  try {
    const res = await api(dataPath(keyOrThrow()));
    if (!res.ok) return showStatus(await describe(res), false);
    const { data } = await res.json();
    $('#value').value = JSON.stringify(data, null, 2);
    $('#etag').value = res.headers.get('ETag') ?? '';
    showStatus(`${res.status} read · ETag ${res.headers.get('ETag')}`, true);
  } catch (e) {
    showStatus(e.message, false);
  }
}

async function putKey() {
  try {
    const key = keyOrThrow();
    let value;
    try {
      value = JSON.parse($('#value').value);
    } catch (e) {
      throw new Error(`the value is not JSON (${e.message}); a string needs quotes: "text"`);
    }
    const body = { value };
    const ttl = $('#ttl').value.trim();
    if (ttl) body.ttl_seconds = Number(ttl);
    const res = await api(dataPath(key), { method: 'PUT', headers: condition(), body });
    if (!res.ok) return showStatus(await describe(res), false);
    $('#etag').value = res.headers.get('ETag') ?? '';
    const what = res.status === 201 ? 'created' : 'replaced';
    showStatus(`${res.status} ${what} · ETag ${res.headers.get('ETag')}${ttl ? ` · expires in ${ttl} s` : ''}`, true);
    if (scan) runScan();
  } catch (e) {
    showStatus(e.message, false);
  }
}

async function deleteKey() {
  try {
    const res = await api(dataPath(keyOrThrow()), { method: 'DELETE', headers: condition() });
    if (!res.ok) return showStatus(await describe(res), false);
    $('#etag').value = '';
    showStatus(`${res.status} deleted · ETag of the deletion ${res.headers.get('ETag')}`, true);
    if (scan) runScan();
  } catch (e) {
    showStatus(e.message, false);
  }
}

// ---- start ---------------------------------------------------------------------------------

function setupToken() {
  $('#token').value = sessionStorage.getItem(TOKEN_KEY) ?? '';
  const note = (text) => ($('#token-note').textContent = text);
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('#token').value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    note(token ? 'saved for this tab' : 'cleared');
  });
  $('#token-clear').addEventListener('click', () => {
    $('#token').value = '';
    sessionStorage.removeItem(TOKEN_KEY);
    note('cleared');
  });
}

setupToken();
$('#scan-form').addEventListener('submit', (e) => {
  e.preventDefault();
  runScan();
});
$('#scan-more').addEventListener('click', () => runScan(true));
$('#key-form').addEventListener('submit', (e) => e.preventDefault());
$('#get').addEventListener('click', getKey);
$('#put').addEventListener('click', putKey);
$('#delete').addEventListener('click', deleteKey);
window.addEventListener('resize', () => Object.values(charts).forEach(draw));
poll();
