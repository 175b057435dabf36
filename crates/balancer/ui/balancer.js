// hakv balancer console, loaded by /ui on the admin listener: the backends with their
// health, weights and counters, and drain/undrain and weight changes. Plain browser JavaScript,
// no framework and no build step; it calls only the admin API (docs/balancer.md) on its origin.

const POLL_MS = 2000; // /lb/status is read this often
const TOKEN_KEY = 'hakv.lb.token';

const $ = (selector) => document.querySelector(selector);

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

const fmt = (v, digits = 1) => (v === null || v === undefined ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));

// Changes carry the admin token when one is set (docs/balancer.md, Endpoints).
async function api(path, { method = 'GET', body } = {}) {
  const headers = new Headers();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (body !== undefined) headers.set('Content-Type', 'application/json');
  const res = await fetch(path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    try {
      const json = JSON.parse(text);
      message = `${json.code}: ${json.error}`;
    } catch {}
    throw new Error(`${res.status} ${message}`.trim());
  }
  return res.json();
}

// ---- status ----------------------------------------------------------------------------

let previous = null; // {t, requests: Map addr -> count} of the last poll, for requests/s

function stateOf(b) {
  if (b.draining) return 'draining';
  if (b.ejected) return 'ejected';
  return b.healthy ? 'up' : 'down';
}

function render(status) {
  const t = performance.now() / 1000;
  const rate = (addr, now) => {
    const before = previous?.requests.get(addr);
    return before === undefined || now < before ? null : (now - before) / (t - previous.t);
  };
  $('#lb-name').textContent = location.host;
  const available = status.backends.filter((b) => b.available).length;
  $('#lb-summary').replaceChildren(
    `${status.algorithm}; ${available} of ${status.backends.length} backends available; ` +
      (status.leader ? `leader ${status.leader}. ` : 'not leader-aware or no leader known. '),
    ...(status.panic ? [el('span', 'panic mode: no backend is available, requests go to all', 'badge panic')] : []),
  );
  const total = rate('', status.requests);
  const stats = [
    ['requests/s', fmt(total)],
    ['requests', fmt(status.requests, 0)],
    ['in flight', fmt(status.in_flight, 0)],
    ['retries', fmt(status.retries, 0)],
    ['retry budget refusals', fmt(status.retry_budget_exhausted, 0)],
    ['panic requests', fmt(status.panic_requests, 0)],
  ];
  $('#lb-stats').replaceChildren(...stats.map(([k, v]) => el('span', `${k} ${v}`)));

  // Rows are updated in place, so a weight being typed is not overwritten.
  const tbody = $('#backends tbody');
  const seen = new Set();
  for (const b of status.backends) {
    seen.add(b.addr);
    let tr = [...tbody.rows].find((r) => r.dataset.addr === b.addr);
    if (!tr) tbody.append((tr = newRow(b.addr)));
    const state = stateOf(b);
    tr.dataset.draining = String(b.draining);
    const [, stateCell, weightCell] = tr.cells;
    stateCell.replaceChildren(el('span', state, `badge ${state}`));
    if (!b.healthy && state !== 'down') stateCell.append(' ', el('span', 'down', 'badge down'));
    const weight = weightCell.querySelector('input');
    if (document.activeElement !== weight) weight.value = b.weight;
    const numbers = [b.in_flight, fmt(rate(b.addr, b.requests)), b.requests, b.errors, b.retries, b.ejections, fmt(b.ewma_latency_ms, 2)];
    numbers.forEach((v, i) => (tr.cells[3 + i].textContent = typeof v === 'number' ? fmt(v, 0) : v));
    const button = tr.querySelector('button.drain');
    button.textContent = b.draining ? 'Undrain' : 'Drain';
    button.classList.toggle('secondary', b.draining);
  }
  for (const tr of [...tbody.rows]) if (!seen.has(tr.dataset.addr)) tr.remove();
  if (!status.backends.length) {
    const td = el('td', 'no backends', 'muted');
    td.colSpan = 11;
    tbody.replaceChildren(el('tr'));
    tbody.rows[0].append(td);
  }
  previous = { t, requests: new Map([['', status.requests], ...status.backends.map((b) => [b.addr, b.requests])]) };
}

function newRow(addr) {
  const tr = el('tr');
  tr.dataset.addr = addr;
  const weight = el('input');
  Object.assign(weight, { type: 'number', min: 1, max: 1000, title: `weight of ${addr}` });
  weight.addEventListener('change', () => act(`weight of ${addr} set to ${weight.value}`, `/lb/backends/${addr}`, 'PATCH', { weight: Number(weight.value) }));
  const drain = el('button', 'Drain', 'drain');
  drain.type = 'button';
  // The admin API takes the address as it is in the path (not percent-encoded).
  drain.addEventListener('click', () =>
    tr.dataset.draining === 'true'
      ? act(`${addr} serving again`, `/lb/backends/${addr}`, 'PATCH', { draining: false })
      : act(`${addr} draining`, `/lb/backends/${addr}/drain`, 'POST'),
  );
  const cells = [el('td', addr), el('td'), el('td'), ...Array.from({ length: 7 }, () => el('td', '', 'num')), el('td')];
  cells[2].append(weight);
  cells[10].append(drain);
  tr.append(...cells);
  return tr;
}

// One change through the admin API, then a fresh status.
async function act(done, path, method, body) {
  const status = $('#action-status');
  try {
    await api(path, { method, body });
    status.textContent = done;
    status.className = 'ok';
  } catch (e) {
    status.textContent = `${method} ${path} failed: ${e.message}`;
    status.className = 'bad';
  }
  await refresh();
}

async function refresh() {
  try {
    render(await api('/lb/status'));
  } catch (e) {
    $('#lb-summary').textContent = `Cannot read /lb/status: ${e.message}`;
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

// ---- start -------------------------------------------------------------------------------

$('#token').value = sessionStorage.getItem(TOKEN_KEY) ?? '';
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('#token').value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('#token-note').textContent = token ? 'saved for this tab' : 'cleared';
});
$('#token-clear').addEventListener('click', () => {
  $('#token').value = '';
  sessionStorage.removeItem(TOKEN_KEY);
  $('#token-note').textContent = 'cleared';
});
poll();
