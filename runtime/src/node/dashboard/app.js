// wray dashboard: vanilla ES2020, no dependencies, no build step.
//
// Rules this file keeps:
// - Everything from the API is untrusted (guest output, names, errors): the
//   DOM is built with createElement/textContent only, never innerHTML.
// - Only the visible page is polled, once a second, one request round at a
//   time, and not at all while the tab is hidden.
// - A list is rendered from what one API call returns (at most 1000 rows) and
//   a tbody's rows are replaced in one go, and only when the response changed.
// - Clicks are handled by delegation on the document: no per-row listeners.
'use strict';

(() => {
  const POLL_MS = 1000;
  const PAGE_SIZE = 100;
  const TREE_LIMIT = 1000;
  const LOG_LIMIT = 1000;
  const CHART_WINDOW_MS = 120000;
  const CHART_GAP_MS = 3500;
  const MAX_JOB_LOG_CHARS = 2000000;
  const KILL_ARM_MS = 10000; // a kill or delete button stays armed this long
  const TOKEN_MSG = 'this node needs a token: open /?token=…';

  // ---------------------------------------------------------------- DOM --

  const $ = (sel, root = document) => root.querySelector(sel);
  const byId = (id) => document.getElementById(id);

  function append(el, c) {
    if (c == null || c === false) return;
    if (Array.isArray(c)) { for (const x of c) append(el, x); return; }
    el.append(c instanceof Node ? c : String(c)); // strings become text nodes
  }

  // h('td', {class: 'num', data: {since: 1}, title: 'x'}, 'text', childNode)
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'data') {
          for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = String(dv);
        } else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, children);
    return el;
  }

  function setText(id, text) {
    const el = byId(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function frag(nodes) {
    const f = document.createDocumentFragment();
    for (const n of nodes) if (n) f.append(n);
    return f;
  }

  // Rows keyed by id: a row whose item (and extra state) did not change is
  // reused, so a refresh where 20 of 1000 tasks changed builds 20 rows.
  // Returns the rows in order and the cache for the next refresh.
  function keyedRows(cache, items, key, build, extra) {
    const next = new Map();
    const rows = items.map((it) => {
      const k = key(it);
      const sig = JSON.stringify(it) + (extra ? `|${extra(it)}` : '');
      const c = cache.get(k);
      const tr = c && c.sig === sig && !next.has(k) ? c.tr : build(it);
      next.set(k, { sig, tr });
      return tr;
    });
    return { rows, cache: next };
  }

  // Make `parent`'s children exactly `nodes`, touching only what differs.
  function reconcile(parent, nodes) {
    let cur = parent.firstChild;
    for (const n of nodes) {
      if (cur === n) { cur = cur.nextSibling; continue; }
      parent.insertBefore(n, cur);
    }
    while (cur) { const nx = cur.nextSibling; cur.remove(); cur = nx; }
  }

  // ---------------------------------------------------------- formatting --

  const nf = new Intl.NumberFormat('en-US');
  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const validTime = (ms) => isNum(ms) && ms > 0;
  const dash = '—';

  function fmtInt(n) { return isNum(n) ? nf.format(n) : dash; }

  function fmtBytes(n) {
    if (!isNum(n)) return dash;
    if (Math.abs(n) < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = n, i = -1;
    do { v /= 1024; i++; } while (Math.abs(v) >= 1024 && i < units.length - 1);
    return `${v.toFixed(Math.abs(v) >= 100 ? 0 : 1)} ${units[i]}`;
  }

  function fmtDuration(ms) {
    if (!isNum(ms)) return dash;
    if (ms < 0) ms = 0;
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 100) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 10) return `${s.toFixed(2)} s`;
    if (s < 60) return `${s.toFixed(1)} s`;
    const total = Math.floor(s);
    const d = Math.floor(total / 86400), hh = Math.floor(total / 3600) % 24;
    const m = Math.floor(total / 60) % 60, ss = total % 60;
    if (d) return `${d}d ${hh}h`;
    if (hh) return `${hh}h ${m}m`;
    return `${m}m ${ss}s`;
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function fmtTime(ms) {
    if (!validTime(ms)) return dash;
    const d = new Date(ms), now = new Date();
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (d.toDateString() === now.toDateString()) return hms;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
  }

  function fmtClock(ms) {
    if (!validTime(ms)) return dash;
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function isoTitle(ms) { return validTime(ms) ? new Date(ms).toISOString() : null; }

  function fmtRate(x) {
    if (!isNum(x)) return dash;
    return x >= 100 ? nf.format(Math.round(x)) : x.toFixed(1);
  }

  function fmtCompact(x) {
    if (x >= 1e9) return `${+(x / 1e9).toFixed(1)}G`;
    if (x >= 1e6) return `${+(x / 1e6).toFixed(1)}M`;
    if (x >= 1e3) return `${+(x / 1e3).toFixed(1)}k`;
    return `${+x.toFixed(x < 10 ? 1 : 0)}`;
  }

  function str(v) { return v == null ? '' : String(v); }

  // ------------------------------------------------------------- states --

  const STATE_TONE = {
    FINISHED: 'ok', ALIVE: 'ok', SUCCEEDED: 'ok', MEMORY: 'ok', MEMOIZED: 'ok',
    RUNNING: 'run',
    PENDING: 'wait', STARTING: 'wait',
    FAILED: 'bad', DEAD: 'bad', LOST: 'bad',
    CANCELLED: 'warn', STOPPED: 'warn', RESTARTING: 'warn', SPILLED: 'warn',
  };
  const toneClass = (s) => `st st-${STATE_TONE[s] || 'none'}`;

  // A <td class="state"> holding exactly the state text.
  function stateCell(s) { return h('td', { class: `state ${toneClass(s)}` }, str(s)); }

  const TASK_STATES = ['PENDING', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLED', 'MEMOIZED'];
  const ACTOR_STATES = ['STARTING', 'ALIVE', 'RESTARTING', 'DEAD'];
  const JOB_STATES = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STOPPED'];

  // ----------------------------------------------------------- shared UI --

  function numCell(v) { return h('td', { class: 'num' }, fmtInt(v)); }

  function emptyRow(cols, text) {
    return h('tr', { class: 'empty-row' }, h('td', { colspan: cols }, text));
  }

  // A duration cell; a running item's duration keeps ticking client side
  // (data-since) without re-rendering the table.
  function durationCell(durMs, startMs, endMs, running) {
    const td = h('td', { class: 'num' });
    if (isNum(durMs)) td.textContent = fmtDuration(durMs);
    else if (validTime(startMs) && validTime(endMs)) td.textContent = fmtDuration(endMs - startMs);
    else if (running && validTime(startMs)) {
      td.dataset.since = String(startMs);
      td.textContent = fmtDuration(Date.now() - startMs);
    } else td.textContent = dash;
    return td;
  }

  function tickSince(root) {
    const now = Date.now();
    for (const el of root.querySelectorAll('[data-since]')) {
      const t = fmtDuration(now - Number(el.dataset.since));
      if (el.textContent !== t) el.textContent = t;
    }
  }

  // Error as "KIND: message" then each cause on its own line, indented.
  function errorBlock(err) {
    if (err == null || err === '') return null;
    if (typeof err !== 'object') return h('div', { class: 'err' }, h('div', { class: 'err-msg' }, String(err)));
    const box = h('div', { class: 'err' },
      h('div', { class: 'err-msg' }, h('span', { class: 'err-kind' }, str(err.kind || 'ERROR')), ': ', str(err.message)));
    const chain = Array.isArray(err.chain) ? err.chain : [];
    chain.forEach((c, i) => {
      const d = h('div', { class: 'err-cause' }, str(c));
      d.style.setProperty('--lvl', String(Math.min(i + 1, 12)));
      box.append(d);
    });
    return box;
  }

  function jobLink(jobId) {
    if (jobId == null || jobId === '') return dash;
    return h('a', { href: `#/jobs/${encodeURIComponent(jobId)}` }, String(jobId));
  }

  function hashFor(page, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v != null && v !== '' && !(k === 'offset' && Number(v) === 0)) q.set(k, String(v));
    }
    const qs = q.toString();
    return `#/${page}${qs ? `?${qs}` : ''}`;
  }

  function renderPager(page, offset, count, total) {
    const el = $(`.pager[data-pager-for="${page}"]`);
    if (!el) return;
    const from = count ? offset + 1 : 0;
    const info = total ? `${fmtInt(from)}–${fmtInt(offset + count)} of ${fmtInt(total)}` : '0';
    const hasPrev = offset > 0;
    const hasNext = offset + count < total;
    const sig = `${info}|${hasPrev}|${hasNext}`;
    if (el.dataset.sig === sig) return;
    el.dataset.sig = sig;
    el.replaceChildren(
      h('button', { type: 'button', class: 'btn', 'data-pager': 'prev', disabled: !hasPrev, title: 'Newer' }, '‹ Prev'),
      h('span', { class: 'pager-info' }, info),
      h('button', { type: 'button', class: 'btn', 'data-pager': 'next', disabled: !hasNext, title: 'Older' }, 'Next ›'),
    );
  }

  function clearPager(page) {
    const el = $(`.pager[data-pager-for="${page}"]`);
    if (el) { el.replaceChildren(); delete el.dataset.sig; }
  }

  // ---------------------------------------------------------------- API --

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function abortError() { return new DOMException('aborted', 'AbortError'); }

  async function request(url, { method = 'GET', signal } = {}) {
    let res;
    try {
      res = await fetch(url, {
        method,
        signal,
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'Cannot reach the node (network error); retrying…');
    }
    const text = await res.text();
    if (res.status === 401) throw new ApiError(401, TOKEN_MSG);
    if (!res.ok) {
      let msg = '';
      try { const j = JSON.parse(text); msg = j && j.error ? String(j.error) : ''; } catch (_) { /* not JSON */ }
      throw new ApiError(res.status, `${res.status} ${res.statusText || ''}`.trim() + (msg ? `: ${msg}` : '') + ` (${url})`);
    }
    return text;
  }

  // GET a JSON document; returns {text, data}. `text` lets a page skip a
  // re-render when nothing changed.
  async function getJSON(url, signal) {
    const text = await request(url, { signal });
    if (signal && signal.aborted) throw abortError();
    let data;
    try { data = JSON.parse(text); } catch (_) { throw new ApiError(0, `Bad JSON from ${url}`); }
    return { text, data };
  }

  // POST, DELETE...: the JSON answer, or {} if it has none.
  async function sendJSON(method, url) {
    const text = await request(url, { method });
    try { return JSON.parse(text); } catch (_) { return {}; }
  }

  // Two-click buttons (kill, delete): the first click arms `key` for
  // KILL_ARM_MS and shows `confirmText`; a second click within that time
  // confirms (returns true). `lapsed` runs if the arming runs out.
  const armed = new Map(); // key -> expiry
  function isArmed(key) {
    const exp = armed.get(key);
    return !!exp && exp > Date.now();
  }
  function confirmClick(key, btn, confirmText, lapsed) {
    if (isArmed(key)) {
      armed.delete(key);
      btn.classList.remove('armed');
      return true;
    }
    armed.set(key, Date.now() + KILL_ARM_MS);
    btn.textContent = confirmText;
    btn.classList.add('armed');
    setTimeout(() => {
      const exp = armed.get(key);
      if (exp && exp <= Date.now()) { armed.delete(key); lapsed(); }
    }, KILL_ARM_MS + 50);
    return false;
  }

  function apiUrl(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v != null && v !== '') q.set(k, String(v));
    const qs = q.toString();
    return qs ? `${path}?${qs}` : path;
  }

  // A list response: {"total": n, "<key>": [...]}, or a bare array.
  function listOf(data, key) {
    if (Array.isArray(data)) return { total: data.length, items: data };
    const items = data && Array.isArray(data[key]) ? data[key] : [];
    const total = data && isNum(data.total) ? data.total : items.length;
    return { total, items };
  }

  // ------------------------------------------------------------- banner --

  let bannerTimer = null;
  function showBanner(msg, kind = 'error', autoHideMs = 0) {
    const b = byId('banner');
    b.dataset.kind = kind;
    setText('banner-text', msg);
    b.hidden = false;
    clearTimeout(bannerTimer);
    if (autoHideMs) bannerTimer = setTimeout(hideBanner, autoHideMs);
  }
  function hideBanner() { byId('banner').hidden = true; clearTimeout(bannerTimer); }
  function clearErrorBanner() {
    const b = byId('banner');
    if (!b.hidden && b.dataset.kind === 'error') hideBanner();
  }

  function setLive(state) {
    const el = byId('live');
    if (el.dataset.live === state) return;
    el.dataset.live = state;
    el.textContent = { live: 'live', paused: 'paused', error: 'offline', denied: 'no token', idle: 'connecting' }[state] || state;
  }

  function setNodeAddress(addr) {
    if (addr) setText('node-address', String(addr));
  }

  // ============================================================== pages ==

  // ------------------------------------------------------------ overview --

  const chartSamples = []; // {t, v}, kept across page switches

  function pushSample(v) {
    if (!isNum(v)) return;
    const t = Date.now();
    chartSamples.push({ t, v });
    while (chartSamples.length && chartSamples[0].t < t - CHART_WINDOW_MS - 5000) chartSamples.shift();
  }

  function niceCeil(x) {
    if (x <= 1) return 1;
    const p = 10 ** Math.floor(Math.log10(x));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
    return 10 * p;
  }

  function drawChart() {
    const canvas = byId('ov-chart');
    if (!canvas || canvas.offsetParent === null) return;
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth, cssH = canvas.clientHeight;
    if (!cssW || !cssH) return;
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);

    const now = Date.now();
    const t0 = now - CHART_WINDOW_MS;
    const pts = chartSamples.filter((s) => s.t >= t0 - 2000);
    const max = niceCeil(Math.max(1, ...pts.map((s) => s.v)));
    const L = 48, R = 10, T = 10, B = 22;
    const w = cssW - L - R, hgt = cssH - T - B;
    const x = (t) => L + ((t - t0) / CHART_WINDOW_MS) * w;
    const y = (v) => T + hgt - (v / max) * hgt;

    ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    ctx.lineWidth = 1;
    // grid + y labels
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = i === 0 ? '#c9d1d9' : '#eef1f4';
      ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(L + w, yy); ctx.stroke();
      ctx.fillStyle = '#6e7781';
      ctx.fillText(fmtCompact(v), L - 6, yy);
    }
    // x labels
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let s = 120; s >= 0; s -= 30) {
      const xx = x(now - s * 1000);
      ctx.fillStyle = '#6e7781';
      ctx.fillText(s === 0 ? 'now' : `-${s}s`, Math.min(Math.max(xx, L + 12), L + w - 12), T + hgt + 6);
    }
    if (!pts.length) {
      ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.fillStyle = '#8c959f';
      ctx.fillText('waiting for samples…', L + w / 2, T + hgt / 2);
      return;
    }
    // split into runs where samples are contiguous (no gap while hidden)
    const runs = [];
    let run = [];
    for (const p of pts) {
      if (run.length && p.t - run[run.length - 1].t > CHART_GAP_MS) { runs.push(run); run = []; }
      run.push(p);
    }
    if (run.length) runs.push(run);

    ctx.save();
    ctx.beginPath(); ctx.rect(L, T - 2, w, hgt + 4); ctx.clip();
    for (const r of runs) {
      ctx.beginPath();
      r.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
      ctx.lineTo(x(r[r.length - 1].t), y(0));
      ctx.lineTo(x(r[0].t), y(0));
      ctx.closePath();
      ctx.fillStyle = 'rgba(9, 105, 218, 0.10)';
      ctx.fill();
      ctx.beginPath();
      r.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
      ctx.strokeStyle = '#0969da';
      ctx.lineWidth = 1.75;
      ctx.lineJoin = 'round';
      ctx.stroke();
      if (r.length === 1) {
        ctx.fillStyle = '#0969da';
        ctx.beginPath(); ctx.arc(x(r[0].t), y(r[0].v), 2, 0, Math.PI * 2); ctx.fill();
      }
    }
    ctx.restore();
  }

  function kvList(el, pairs) {
    el.replaceChildren(frag(pairs.flatMap(([k, v, title]) => [
      h('dt', null, k),
      h('dd', { title: title || null }, v instanceof Node ? v : str(v)),
    ])));
  }

  function countsList(el, obj, states, linkPage) {
    const items = states.map((s) => {
      const n = obj && isNum(obj[s]) ? obj[s] : 0;
      const label = h('span', { class: `state ${toneClass(s)}` }, s);
      const left = linkPage ? h('a', { href: hashFor(linkPage, { state: s }) }, label) : label;
      return h('li', { class: n ? '' : 'zero', data: { state: s } }, left, h('span', { class: 'num' }, fmtInt(n)));
    });
    el.replaceChildren(frag(items));
  }

  function setMeter(id, frac) {
    const el = byId(id);
    const f = isNum(frac) ? Math.max(0, Math.min(1, frac)) : 0;
    el.style.width = `${(f * 100).toFixed(1)}%`;
    el.classList.toggle('hot', f >= 0.9);
  }

  const overview = {
    enter() {},
    leave() {},
    async load(signal) {
      const { data: s } = await getJSON('api/v0/status', signal);
      const node = s.node || {};
      setNodeAddress(node.address);
      const tasks = s.tasks || {};
      pushSample(tasks.per_second);

      const uptime = validTime(node.started_ms) ? fmtDuration(Date.now() - node.started_ms) : dash;
      kvList(byId('ov-node'), [
        ['Address', str(node.address) || dash],
        ['Version', str(node.version) || dash],
        ['Uptime', uptime, isoTitle(node.started_ms) && `started ${isoTitle(node.started_ms)}`],
        ['Node ID', str(node.node_id) || dash],
        ['PID', node.pid != null ? str(node.pid) : dash],
      ]);

      const cpus = s.cpus || {};
      setText('ov-cpu', `${fmtInt(cpus.in_use)} / ${fmtInt(cpus.total)}`);
      setMeter('ov-cpu-bar', cpus.total ? cpus.in_use / cpus.total : 0);

      const mem = s.memory || {};
      setText('ov-rss', fmtBytes(mem.rss_bytes));
      setText('ov-mem-total', isNum(mem.total_bytes) ? `machine: ${fmtBytes(mem.total_bytes)}` : '');

      const os = s.object_store || {};
      setText('ov-store', `${fmtBytes(os.bytes)} / ${fmtBytes(os.capacity)}`);
      setMeter('ov-store-bar', os.capacity ? os.bytes / os.capacity : 0);
      kvList(byId('ov-store-info'), [
        ['Objects', fmtInt(os.objects)],
        ['Spilled', fmtBytes(os.spilled_bytes)],
      ]);

      setText('ov-rate', fmtRate(tasks.per_second));
      countsList(byId('ov-tasks'), tasks, TASK_STATES, 'tasks');
      countsList(byId('ov-actors'), s.actors, ACTOR_STATES, 'actors');
      countsList(byId('ov-jobs'), s.jobs, JOB_STATES, null);
      drawChart();

      // Every node of the cluster (this one alone otherwise), each with
      // the load it told when asked.
      const { data: nodes } = await getJSON('api/v0/nodes', signal);
      renderNodes(Array.isArray(nodes) ? nodes : []);
    },
  };

  function renderNodes(nodes) {
    const rows = nodes.map((n) => {
      const l = n.load || {};
      const told = !!n.load;
      const res = Object.entries(n.resources || {}).map(([k, v]) => `${k}=${v}`).join(', ');
      const id = h('td', {}, str(n.node_id), n.is_head ? h('span', { class: 'muted', title: 'the head node' }, ' (head)') : null);
      return h('tr', { data: { nodeId: str(n.node_id) }, title: told ? null : 'did not tell its load in time' },
        id,
        h('td', {}, str(n.rpc_address || n.address)),
        h('td', { class: 'num' }, told ? `${fmtInt(l.cpus_in_use)} / ${fmtInt(n.cpus)}` : dash),
        h('td', { class: 'num' }, told ? fmtInt(l.running) : dash),
        h('td', { class: 'num' }, told ? fmtInt(l.pending) : dash),
        h('td', { class: 'num' }, told ? fmtBytes(l.object_store_bytes) : dash),
        h('td', { class: 'num' }, told ? fmtBytes(l.rss_bytes) : dash),
        h('td', {}, res || dash));
    });
    byId('ov-nodes').replaceChildren(frag(rows));
    setText('ov-nodes-count', `${fmtInt(nodes.length)} ${nodes.length === 1 ? 'node' : 'nodes'}`);
  }

  // ---------------------------------------------------- generic list page --

  // filters: names of query parameters, shared by the hash and the API call.
  // `fixed`: query parameters every load sends.
  function listPage({ name, endpoint, key, filters, cols, emptyText, row, rowKey, rowExtra, afterRender, fixed = {} }) {
    const st = { params: {}, text: null, cache: new Map() };
    const tbody = () => byId(`${name}-rows`);
    return {
      st,
      enter(params) {
        st.params = params;
        st.text = null;
        syncFilterForm(name, params);
      },
      leave() {
        st.text = null;
        st.cache = new Map();
        tbody().replaceChildren();
        clearPager(name);
        setText(`${name}-count`, '');
      },
      async load(signal) {
        const offset = Math.max(0, parseInt(st.params.offset, 10) || 0);
        const q = { ...fixed, limit: PAGE_SIZE, offset };
        for (const f of filters) q[f] = st.params[f];
        const { text, data } = await getJSON(apiUrl(endpoint, q), signal);
        const { total, items } = listOf(data, key);
        if (text !== st.text) {
          st.text = text;
          let rows;
          if (items.length) {
            const k = keyedRows(st.cache, items, rowKey, row, rowExtra);
            rows = k.rows;
            st.cache = k.cache;
          } else {
            rows = [emptyRow(cols, offset && total ? 'No more rows.' : emptyText)];
            st.cache = new Map();
          }
          reconcile(tbody(), rows);
          renderPager(name, offset, items.length, total);
          const filtered = filters.some((f) => st.params[f]);
          setText(`${name}-count`, `${fmtInt(total)} ${filtered ? 'matching' : 'total'}`);
          if (afterRender) afterRender(data);
        }
        tickSince(tbody());
      },
      forceRender() { st.text = null; },
    };
  }

  function syncFilterForm(name, params) {
    const form = $(`form[data-filters="${name}"]`);
    if (!form) return;
    for (const el of form.elements) {
      if (!el.name || el === document.activeElement) continue;
      const v = params[el.name] || '';
      if (el.tagName === 'SELECT' && v && ![...el.options].some((o) => o.value === v)) {
        el.append(h('option', null, v));
      }
      if (el.value !== v) el.value = v;
    }
  }

  // --------------------------------------------------------------- jobs --

  function jobDuration(j) {
    const running = j.status === 'RUNNING' || j.status === 'PENDING';
    return durationCell(null, j.start_time_ms, j.end_time_ms, running);
  }

  function taskTotals(t) {
    if (!t || typeof t !== 'object') return dash;
    const all = Object.values(t).reduce((a, b) => a + (isNum(b) ? b : 0), 0);
    const n = (k) => t[k] ?? t[k.toUpperCase()] ?? 0;
    return `${fmtInt(n("finished"))} / ${fmtInt(all)}${n("failed") ? ` (${fmtInt(n("failed"))} failed)` : ""}`;
  }

  function firstLine(s) {
    const t = str(s);
    const i = t.indexOf('\n');
    return i < 0 ? t : `${t.slice(0, i)} …`;
  }

  const jobs = listPage({
    name: 'jobs',
    rowKey: (j) => str(j.job_id),
    endpoint: 'api/v0/jobs',
    key: 'jobs',
    filters: [],
    cols: 9,
    emptyText: 'No jobs yet. Submit one with POST /api/jobs/.',
    row(j) {
      const id = str(j.job_id);
      return h('tr', { class: 'link-row', data: { jobId: id } },
        h('td', { class: 'mono' }, jobLink(id)),
        h('td', null, str(j.name)),
        stateCell(j.status),
        h('td', { class: 'mono' }, j.node_id == null ? dash : str(j.node_id)),
        h('td', { title: isoTitle(j.start_time_ms) }, fmtTime(j.start_time_ms)),
        jobDuration(j),
        h('td', { class: 'num' }, j.exit_code == null ? dash : str(j.exit_code)),
        h('td', { class: 'num' }, taskTotals(j.tasks)),
        h('td', { class: 'msg', title: j.message ? str(j.message) : null }, firstLine(j.message)),
      );
    },
  });

  // ---------------------------------------------------------- one job --

  function sortTasksAsc(a, b) {
    const sa = a.submitted_ms || 0, sb = b.submitted_ms || 0;
    if (sa !== sb) return sa - sb;
    const na = Number(a.task_id), nb = Number(b.task_id);
    if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
    return str(a.task_id).localeCompare(str(b.task_id));
  }

  function taskDuration(t) {
    return durationCell(t.duration_ms, t.started_ms, t.ended_ms, t.state === 'RUNNING');
  }

  // Tasks nested by parent_id: children indented under their parent.
  function taskTreeRows(tasks, cache) {
    const sorted = tasks.slice().sort(sortTasksAsc);
    const ids = new Set(sorted.map((t) => str(t.task_id)));
    const kids = new Map();
    const roots = [];
    for (const t of sorted) {
      const p = t.parent_id == null ? null : str(t.parent_id);
      if (p !== null && p !== str(t.task_id) && ids.has(p)) {
        if (!kids.has(p)) kids.set(p, []);
        kids.get(p).push(t);
      } else roots.push(t);
    }
    const rows = [];
    const seen = new Set();
    const walk = (start) => {
      const stack = [[start, 0]];
      while (stack.length) {
        const [t, depth] = stack.pop();
        const id = str(t.task_id);
        if (seen.has(id)) continue;
        seen.add(id);
        rows.push([t, depth]);
        const ch = kids.get(id) || [];
        for (let i = ch.length - 1; i >= 0; i--) stack.push([ch[i], depth + 1]);
      }
    };
    for (const r of roots) walk(r);
    for (const t of sorted) if (!seen.has(str(t.task_id))) walk(t); // cycles
    return keyedRows(cache, rows, ([t]) => str(t.task_id), ([t, depth]) => treeRow(t, depth));
  }

  function treeRow(t, depth) {
    const fn = h('td', { class: depth ? 'fn nested' : 'fn' }, str(t.function));
    fn.style.setProperty('--depth', String(Math.min(depth, 24)));
    return h('tr', { data: { taskId: str(t.task_id), parentId: t.parent_id == null ? null : str(t.parent_id) } },
      h('td', { class: 'num mono' }, str(t.task_id)),
      fn,
      h('td', { class: 'kind' }, str(t.kind)),
      stateCell(t.state),
      numCell(t.attempts),
      taskDuration(t),
      h('td', { class: 'num' }, workerOf(t)),
      h('td', { class: 'errcell' }, errorBlock(t.error), retriedNote(t)),
    );
  }

  const STRIP_ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

  const job = {
    st: {},
    reset(id) {
      this.st = { id, offset: 0, logsDone: false, logChars: 0, jobText: null, sumText: null, tasksText: null, stopping: false, trimmed: false, treeCache: new Map() };
    },
    enter(params) {
      this.leave(); // a new visit (or another job) starts from offset 0
      this.reset(params.id);
      const id = params.id;
      setText('job-title', `Job ${id}`);
      byId('job-tasks-link').setAttribute('href', hashFor('tasks', { job: id }));
      byId('job-logs-link').setAttribute('href', hashFor('logs', { job: id }));
    },
    leave() {
      byId('job-logs').replaceChildren();
      byId('job-tasks').replaceChildren();
      byId('job-summary').replaceChildren();
      byId('job-info').replaceChildren();
      byId('job-message').textContent = '';
      byId('job-message-wrap').hidden = true;
      byId('job-notfound').hidden = true;
      byId('job-body').hidden = false;
      byId('job-stop').hidden = true;
      resetDelete(byId('job-delete'));
      setText('job-status', '');
      setText('job-logs-state', '');
      setText('job-tasks-count', '');
      this.st = {};
    },
    async load(signal) {
      const st = this.st;
      const id = st.id;
      const base = `api/jobs/${encodeURIComponent(id)}`;
      const [jr, lr, sr, tr] = await Promise.allSettled([
        getJSON(base, signal),
        st.logsDone ? Promise.resolve(null) : getJSON(`${base}/logs?offset=${st.offset}`, signal),
        getJSON(apiUrl('api/v0/tasks/summary', { job: id }), signal),
        getJSON(apiUrl('api/v0/tasks', { job: id, limit: TREE_LIMIT }), signal),
      ]);
      if (signal.aborted || this.st !== st) throw abortError();
      if (jr.status === 'rejected') {
        const e = jr.reason;
        if (e && e.status === 404) {
          byId('job-body').hidden = true;
          const nf = byId('job-notfound');
          nf.hidden = false;
          nf.textContent = `No job with id ${id}.`;
          setText('job-status', '');
          byId('job-stop').hidden = true;
          byId('job-delete').hidden = true;
          return;
        }
        throw e;
      }
      byId('job-notfound').hidden = true;
      byId('job-body').hidden = false;
      this.renderJob(jr.value);
      let err = null;
      if (lr.status === 'fulfilled') { if (lr.value) this.appendLogs(lr.value.data); } else err = err || lr.reason;
      if (sr.status === 'fulfilled') this.renderSummary(sr.value); else err = err || sr.reason;
      if (tr.status === 'fulfilled') this.renderTasks(tr.value); else err = err || tr.reason;
      tickSince(byId('page-job'));
      if (err) throw err;
    },
    renderJob({ text, data: j }) {
      const st = this.st;
      const running = j.status === 'RUNNING' || j.status === 'PENDING';
      const stop = byId('job-stop');
      stop.hidden = !running;
      if (!st.stopping) { stop.disabled = false; stop.textContent = 'Stop'; }
      // Only an ended job can be deleted (the node refuses the others).
      byId('job-delete').hidden = running || !j.status;
      if (text === st.jobText) return;
      st.jobText = text;
      setText('job-title', j.name ? `Job ${str(j.job_id || st.id)} · ${str(j.name)}` : `Job ${str(j.job_id || st.id)}`);
      const badge = byId('job-status');
      badge.textContent = str(j.status);
      badge.className = `badge ${toneClass(j.status)}`;
      const info = [
        ['Status', stateSpan(j.status)],
        ['Submission', str(j.submission_id) || dash],
        ['Start', fmtTime(j.start_time_ms), isoTitle(j.start_time_ms)],
        ['End', fmtTime(j.end_time_ms), isoTitle(j.end_time_ms)],
        ['Duration', durationSpan(j)],
        ['Exit code', j.exit_code == null ? dash : str(j.exit_code)],
        ['Tasks', taskTotals(j.tasks)],
        ['Module', j.module ? `${str(j.module).slice(0, 12)}…` : dash, str(j.module) || null],
        ['Args', Array.isArray(j.args) && j.args.length ? j.args.map((a) => JSON.stringify(String(a))).join(' ') : dash],
      ];
      kvList(byId('job-info'), info);
      const wrap = byId('job-message-wrap');
      const msg = j.message == null ? '' : (typeof j.message === 'string' ? j.message : JSON.stringify(j.message, null, 2));
      wrap.hidden = !msg;
      const pre = byId('job-message');
      pre.classList.toggle('neutral', j.status !== 'FAILED');
      if (pre.textContent !== msg) pre.textContent = msg;
    },
    appendLogs(data) {
      const st = this.st;
      const pre = byId('job-logs');
      const chunk = str(data && data.logs).replace(STRIP_ANSI, '');
      if (data && isNum(data.offset)) st.offset = data.offset;
      if (data && data.done && !chunk) st.logsDone = true;
      setText('job-logs-state', st.logsDone ? '(job ended)' : data && data.done ? '' : '(following)');
      if (!chunk) {
        if (!pre.firstChild) pre.dataset.empty = 'true';
        return;
      }
      delete pre.dataset.empty;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      pre.append(document.createTextNode(chunk));
      st.logChars += chunk.length;
      // Keep the DOM bounded for chatty jobs: drop the oldest chunks.
      while (st.logChars > MAX_JOB_LOG_CHARS && pre.childNodes.length > 1) {
        const first = pre.firstChild;
        if (first.nodeType === Node.TEXT_NODE) st.logChars -= first.data.length;
        first.remove();
        st.trimmed = true;
      }
      if (st.trimmed && !(pre.firstChild && pre.firstChild.nodeType === Node.ELEMENT_NODE)) {
        pre.prepend(h('span', { class: 'trimmed' }, '[earlier output trimmed]\n'));
      }
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    },
    renderSummary({ text, data }) {
      if (text === this.st.sumText) return;
      this.st.sumText = text;
      const fns = data && Array.isArray(data.functions) ? data.functions : [];
      const id = this.st.id;
      const rows = fns.map((f) => h('tr', { data: { function: str(f.function) } },
        h('td', { class: 'fn' }, h('a', { href: hashFor('tasks', { job: id, function: f.function }) }, str(f.function))),
        ...TASK_STATES.map((s) => {
          const n = isNum(f[s]) ? f[s] : 0;
          return h('td', { class: `num${n && (s === 'FAILED' || s === 'CANCELLED') ? ` ${toneClass(s)}` : ''}${n ? '' : ' zero'}` }, fmtInt(n));
        }),
        h('td', { class: 'num' }, fmtDuration(f.mean_ms)),
      ));
      byId('job-summary').replaceChildren(frag(rows.length ? rows : [emptyRow(7, 'No tasks.')]));
    },
    renderTasks({ text, data }) {
      if (text === this.st.tasksText) return;
      this.st.tasksText = text;
      const { total, items } = listOf(data, 'tasks');
      let rows;
      if (items.length) {
        const k = taskTreeRows(items, this.st.treeCache);
        rows = k.rows;
        this.st.treeCache = k.cache;
      } else {
        rows = [emptyRow(8, 'No tasks.')];
        this.st.treeCache = new Map();
      }
      reconcile(byId('job-tasks'), rows);
      setText('job-tasks-count', total > items.length ? `(newest ${fmtInt(items.length)} of ${fmtInt(total)})` : `(${fmtInt(total)})`);
    },
  };

  function stateSpan(s) { return h('span', { class: `state ${toneClass(s)}` }, str(s)); }

  function durationSpan(j) {
    const td = jobDuration(j);
    const span = h('span', null, td.textContent);
    if (td.dataset.since) span.dataset.since = td.dataset.since;
    return span;
  }

  // -------------------------------------------------------------- tasks --

  const tasks = listPage({
    name: 'tasks',
    rowKey: (t) => str(t.task_id),
    endpoint: 'api/v0/tasks',
    // In a cluster, every node's calls (a node alone ignores it).
    fixed: { scope: 'cluster' },
    key: 'tasks',
    filters: ['state', 'job', 'function', 'actor'],
    cols: 9,
    emptyText: 'No tasks match.',
    row(t) {
      return h('tr', { data: { taskId: str(t.task_id) } },
        h('td', { class: 'num mono' }, str(t.task_id)),
        h('td', { class: 'fn' }, str(t.function),
          t.actor_id != null ? h('a', { class: 'sub-link', href: hashFor('tasks', { actor: t.actor_id }), title: 'Tasks of this actor' }, `actor ${str(t.actor_id)}`) : null),
        h('td', { class: 'kind' }, str(t.kind)),
        stateCell(t.state),
        numCell(t.attempts),
        taskDuration(t),
        h('td', { class: 'mono' }, jobLink(t.job_id)),
        h('td', { class: 'num' }, workerOf(t)),
        h('td', { class: 'errcell' }, errorBlock(t.error), retriedNote(t), memoNote(t.memo)),
      );
    },
  });
  // Why a call's attempt that was retried failed, under a call that then
  // succeeded (a failed call shows its own error).
  function retriedNote(t) {
    const e = t.retried_error;
    if (e == null || t.error != null) return null;
    return h('div', { class: 'muted' }, `retried after ${str(e.kind)}: ${str(e.message)}`);
  }
  // The worker thread of a call's last attempt, and in a cluster its node
  // (`node 2 · 1`).
  function workerOf(t) {
    const w = t.worker == null ? dash : str(t.worker);
    return t.node_id == null ? w : `node ${str(t.node_id)} · ${w}`;
  }
  // What became of a memoized call's result: `memo: hit`, `memo: stored`,
  // `memo: not stored: <why>`.
  function memoNote(m) {
    return m == null ? null : h('div', { class: 'muted memo' }, `memo: ${str(m)}`);
  }
  // Completion lists for the filters: fetched once per visit, best effort.
  const tasksEnter = tasks.enter;
  tasks.enter = function (params) {
    tasksEnter.call(this, params);
    fillDatalists();
  };

  let datalistsAt = 0;
  async function fillDatalists() {
    if (Date.now() - datalistsAt < 30000) return; // at most every 30 s
    datalistsAt = Date.now();
    try {
      const [sum, js] = await Promise.all([
        getJSON(apiUrl('api/v0/tasks/summary', { scope: 'cluster' })),
        getJSON(apiUrl('api/v0/jobs', { limit: 100 })),
      ]);
      const fns = (sum.data && Array.isArray(sum.data.functions) ? sum.data.functions : []).slice(0, 500);
      byId('dl-functions').replaceChildren(frag(fns.map((f) => h('option', { value: str(f.function) }))));
      const jl = listOf(js.data, 'jobs').items;
      byId('dl-jobs').replaceChildren(frag(jl.map((j) => h('option', { value: str(j.job_id) }, str(j.name || '')))));
    } catch (_) { datalistsAt = 0; /* completions are optional */ }
  }

  // ------------------------------------------------------------- actors --

  const killing = new Set();

  function killState(id) {
    if (killing.has(id)) return 'killing';
    return isArmed(`actor:${id}`) ? 'armed' : '';
  }

  function killButton(id) {
    const ks = killState(id);
    if (ks === 'killing') return h('button', { type: 'button', class: 'btn kill', disabled: true }, 'Killing…');
    if (ks === 'armed') return h('button', { type: 'button', class: 'btn kill armed' }, 'Confirm kill');
    return h('button', { type: 'button', class: 'btn kill' }, 'Kill');
  }

  const actors = listPage({
    name: 'actors',
    rowKey: (a) => str(a.actor_id),
    rowExtra: (a) => killState(str(a.actor_id)),
    endpoint: 'api/v0/actors',
    key: 'actors',
    filters: ['state', 'job', 'class', 'name'],
    cols: 11,
    emptyText: 'No actors match.',
    row(a) {
      const id = str(a.actor_id);
      return h('tr', { data: { actorId: id } },
        h('td', { class: 'num mono' }, id),
        h('td', null, str(a.class)),
        h('td', null, a.name == null ? '' : str(a.name)),
        h('td', { class: 'mono' }, jobLink(a.job_id)),
        stateCell(a.state),
        h('td', { class: 'mono' }, a.node_id == null ? dash : str(a.node_id)),
        numCell(a.restarts),
        h('td', { class: 'num' }, h('a', { href: hashFor('tasks', { actor: id }), title: 'Calls of this actor' }, fmtInt(a.calls))),
        h('td', { class: 'errcell' }, a.death_cause == null ? '' : (typeof a.death_cause === 'object' ? errorBlock(a.death_cause) : str(a.death_cause))),
        h('td', null, h('a', { href: hashFor('logs', { actor: id }) }, 'logs')),
        h('td', { class: 'actions' }, a.state === 'DEAD' ? null : killButton(id)),
      );
    },
  });

  async function onKillClick(btn) {
    const tr = btn.closest('tr[data-actor-id]');
    if (!tr || btn.disabled) return;
    const id = tr.dataset.actorId;
    const confirmed = confirmClick(`actor:${id}`, btn, 'Confirm kill', () => {
      const b = $(`#actors-rows tr[data-actor-id="${CSS.escape(id)}"] button.kill`);
      if (b && !killing.has(id)) { b.textContent = 'Kill'; b.classList.remove('armed'); }
    });
    if (!confirmed) return;
    killing.add(id);
    btn.disabled = true;
    btn.textContent = 'Killing…';
    try {
      const r = await sendJSON('POST', `api/v0/actors/${encodeURIComponent(id)}/kill`);
      if (r && r.killed === false) showBanner(`Actor ${id} was already dead.`, 'info', 4000);
    } catch (e) {
      showBanner(`Kill actor ${id}: ${e.message}`, 'error');
    } finally {
      killing.delete(id);
      actors.forceRender();
      if (current && current.page === 'actors') refreshNow();
    }
  }

  // ------------------------------------------------------------ objects --

  const objects = listPage({
    name: 'objects',
    rowKey: (o) => str(o.object_id),
    endpoint: 'api/v0/objects',
    key: 'objects',
    filters: [],
    cols: 5,
    emptyText: 'The object store is empty.',
    row(o) {
      const id = str(o.object_id);
      return h('tr', { data: { objectId: id } },
        h('td', { class: 'mono', title: id }, id.length > 16 ? `${id.slice(0, 16)}…` : id),
        h('td', { class: 'num', title: isNum(o.size) ? `${nf.format(o.size)} bytes` : null }, fmtBytes(o.size)),
        numCell(o.refs),
        stateCell(o.where),
        h('td', { class: 'num mono' }, o.task_id == null ? dash : str(o.task_id)),
      );
    },
    afterRender(data) {
      if (data && isNum(data.bytes)) {
        setText('objects-count', `${fmtInt(listOf(data, 'objects').total)} objects · ${fmtBytes(data.bytes)}`);
      }
    },
  });

  // --------------------------------------------------------------- logs --

  function highlight(text, q) {
    if (!q) return text;
    const out = [];
    let i = 0;
    for (;;) {
      const j = text.indexOf(q, i);
      if (j < 0) break;
      if (j > i) out.push(text.slice(i, j));
      out.push(h('mark', null, q));
      i = j + q.length;
      if (out.length > 200) break;
    }
    if (!out.length) return text;
    if (i < text.length) out.push(text.slice(i));
    return out;
  }

  const logs = {
    st: { params: {}, text: null },
    enter(params) {
      this.st = { params, text: null, first: true };
      syncFilterForm('logs', params);
      fillDatalists();
    },
    leave() {
      byId('log-lines').replaceChildren();
      setText('logs-count', '');
      this.st = { params: {}, text: null };
    },
    async load(signal) {
      const p = this.st.params;
      const url = apiUrl('api/v0/logs', { job: p.job, task: p.task, actor: p.actor, q: p.q, limit: LOG_LIMIT });
      const { text, data } = await getJSON(url, signal);
      if (text === this.st.text) return;
      this.st.text = text;
      const { total, items } = listOf(data, 'lines');
      const box = byId('log-lines');
      const atBottom = this.st.first || box.scrollHeight - box.scrollTop - box.clientHeight < 24;
      this.st.first = false;
      const q = p.q || '';
      const rows = items.map((l) => {
        const stream = str(l.stream);
        let src = str(l.source);
        let href = null;
        if (l.task_id != null) href = hashFor('logs', { task: l.task_id });
        else if (l.actor_id != null) href = hashFor('logs', { actor: l.actor_id });
        else if (l.job_id != null) href = hashFor('logs', { job: l.job_id });
        if (!src) src = l.task_id != null ? `task=${l.task_id}` : l.actor_id != null ? `actor=${l.actor_id}` : str(l.job_id);
        return h('div', { class: `log-line${stream === 'stderr' ? ' stderr' : ''}` },
          h('span', { class: 'lt', title: isoTitle(l.time_ms) }, fmtClock(l.time_ms)),
          h('span', { class: 'ls' }, href ? h('a', { href, title: 'Only this source' }, src) : src),
          h('span', { class: 'lm' }, stream),
          h('span', { class: 'lx' }, highlight(str(l.text).replace(STRIP_ANSI, ''), q)),
        );
      });
      box.replaceChildren(frag(rows.length ? rows : [h('div', { class: 'empty' }, 'No log lines match.')]));
      setText('logs-count', total > items.length ? `last ${fmtInt(items.length)} of ${fmtInt(total)} lines` : `${fmtInt(total)} lines`);
      if (atBottom) box.scrollTop = box.scrollHeight;
    },
  };

  // ------------------------------------------------------------- config --

  function configValue(k, v) {
    if (v === null) return 'null';
    if (typeof v === 'object') return JSON.stringify(v);
    const s = String(v);
    if (isNum(v) && v >= 1024 && /bytes|memory|capacity|size|limit/i.test(k)) return `${s} (${fmtBytes(v)})`;
    return s;
  }

  const config = {
    st: { text: null },
    enter() { this.st = { text: null }; },
    leave() { byId('config-rows').replaceChildren(); this.st = { text: null }; },
    async load(signal) {
      const { text, data } = await getJSON('api/v0/config', signal);
      if (text === this.st.text) return;
      this.st.text = text;
      const entries = data && typeof data === 'object' && !Array.isArray(data) ? Object.entries(data) : [];
      const rows = entries.map(([k, v]) => h('tr', { data: { key: k } },
        h('td', { class: 'mono key' }, k),
        h('td', { class: 'mono val' }, configValue(k, v)),
      ));
      byId('config-rows').replaceChildren(frag(rows.length ? rows : [emptyRow(2, 'No configuration.')]));
    },
  };

  // ============================================================ routing ==

  const PAGES = { overview, jobs, job, tasks, actors, objects, logs, config };
  const TITLES = { overview: 'Overview', jobs: 'Jobs', job: 'Job', tasks: 'Tasks', actors: 'Actors', objects: 'Objects', logs: 'Logs', config: 'Config' };
  const NAV_OF = { job: 'jobs' };

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const query = qi < 0 ? '' : raw.slice(qi + 1);
    const params = {};
    for (const [k, v] of new URLSearchParams(query)) params[k] = v;
    let parts;
    try { parts = path.split('/').filter(Boolean).map(decodeURIComponent); } catch (_) { parts = []; }
    if (parts[0] === 'jobs' && parts[1]) return { page: 'job', params: { ...params, id: parts.slice(1).join('/') } };
    if (parts.length && PAGES[parts[0]] && parts[0] !== 'job') return { page: parts[0], params };
    return { page: 'overview', params };
  }

  let current = null; // {page, key, params}

  function route() {
    const { page, params } = parseHash();
    const key = `${page}|${JSON.stringify(params)}`;
    if (current && current.key === key) return;
    const prev = current;
    if (prev && prev.page !== page) {
      PAGES[prev.page].leave();
      const old = byId(`page-${prev.page}`);
      old.hidden = true;
      delete old.dataset.loaded;
    }
    current = { page, key, params };
    const section = byId(`page-${page}`);
    delete section.dataset.loaded;
    section.hidden = false;
    for (const a of document.querySelectorAll('#nav a[data-nav]')) {
      const on = a.dataset.nav === (NAV_OF[page] || page);
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    document.title = `${TITLES[page]}${page === 'job' ? ` ${params.id}` : ''} · wray`;
    PAGES[page].enter(params);
    restartPolling();
  }

  // Navigate to a page with query params; `replace` keeps history short for
  // filters typed into a box.
  function go(page, params, replace) {
    const hash = hashFor(page, params);
    if (location.hash === hash) return;
    if (replace) { history.replaceState(null, '', hash); route(); } else location.hash = hash;
  }

  // ============================================================ polling ==

  const poller = { gen: 0, timer: null, ctrl: null };

  function stopPolling() {
    clearTimeout(poller.timer);
    poller.timer = null;
    if (poller.ctrl) poller.ctrl.abort();
    poller.ctrl = null;
    poller.gen++;
  }

  function restartPolling() {
    stopPolling();
    if (document.hidden) { setLive('paused'); return; }
    tick(poller.gen);
  }

  function refreshNow() { restartPolling(); }

  async function tick(gen) {
    if (gen !== poller.gen || !current) return;
    const ctrl = new AbortController();
    poller.ctrl = ctrl;
    const cur = current;
    try {
      await PAGES[cur.page].load(ctrl.signal);
      if (gen !== poller.gen) return;
      const section = byId(`page-${cur.page}`);
      if (section.dataset.loaded !== 'true') section.dataset.loaded = 'true';
      clearErrorBanner();
      setLive('live');
    } catch (e) {
      if (gen !== poller.gen || (e && e.name === 'AbortError')) return;
      showBanner(e && e.message ? e.message : String(e), 'error');
      setLive(e && e.status === 401 ? 'denied' : 'error');
      if (!(e instanceof ApiError)) console.error(e); // a bug, not the node
    } finally {
      if (poller.ctrl === ctrl) poller.ctrl = null;
    }
    if (gen !== poller.gen) return;
    poller.timer = setTimeout(() => tick(gen), POLL_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) { stopPolling(); setLive('paused'); } else restartPolling();
  });

  // ============================================================= events ==

  const filterTimers = new Map();

  function applyFilters(form) {
    const name = form.dataset.filters;
    if (!current || current.page !== name) return;
    const params = {};
    for (const el of form.elements) if (el.name && el.value.trim()) params[el.name] = el.value.trim();
    go(name, params, true); // offset resets to 0
  }

  function onFilterEvent(ev) {
    const form = ev.target.closest && ev.target.closest('form[data-filters]');
    if (!form) return;
    clearTimeout(filterTimers.get(form));
    if (ev.type === 'change' || ev.target.tagName === 'SELECT') { applyFilters(form); return; }
    filterTimers.set(form, setTimeout(() => applyFilters(form), 300));
  }

  document.addEventListener('input', onFilterEvent);
  document.addEventListener('change', onFilterEvent);
  document.addEventListener('submit', (ev) => {
    const form = ev.target.closest('form[data-filters]');
    ev.preventDefault();
    if (form) { clearTimeout(filterTimers.get(form)); applyFilters(form); }
  });

  document.addEventListener('click', (ev) => {
    const t = ev.target;
    if (!(t instanceof Element)) return;

    const kill = t.closest('button.kill');
    if (kill) { ev.preventDefault(); onKillClick(kill); return; }

    const pager = t.closest('button[data-pager]');
    if (pager && current) {
      const step = pager.dataset.pager === 'next' ? PAGE_SIZE : -PAGE_SIZE;
      const offset = Math.max(0, (parseInt(current.params.offset, 10) || 0) + step);
      go(current.page, { ...current.params, offset }, false);
      return;
    }

    if (t.closest('#job-stop')) { onStopClick(byId('job-stop')); return; }
    if (t.closest('#job-delete')) { onDeleteClick(byId('job-delete')); return; }
    if (t.closest('#banner-close')) { hideBanner(); return; }

    // A job row opens its page (links and buttons inside keep their own job).
    const row = t.closest('tr[data-job-id]');
    if (row && !t.closest('a, button, input, select') && !String(window.getSelection() || '')) {
      location.hash = `#/jobs/${encodeURIComponent(row.dataset.jobId)}`;
    }
  });

  async function onStopClick(btn) {
    if (!current || current.page !== 'job' || btn.disabled) return;
    const st = job.st;
    const id = st.id;
    st.stopping = true;
    btn.disabled = true;
    btn.textContent = 'Stopping…';
    try {
      const r = await sendJSON('POST', `api/jobs/${encodeURIComponent(id)}/stop`);
      if (r && r.stopped === false) showBanner(`Job ${id} had already ended.`, 'info', 4000);
    } catch (e) {
      showBanner(`Stop job ${id}: ${e.message}`, 'error');
    } finally {
      st.stopping = false;
      st.jobText = null;
      if (current && current.page === 'job' && job.st === st) refreshNow();
    }
  }

  function resetDelete(btn) {
    armed.delete('job-delete');
    btn.hidden = true;
    btn.disabled = false;
    btn.textContent = 'Delete';
    btn.classList.remove('armed');
  }

  // Two clicks, as a kill: the first arms the button, the second deletes
  // the job's record and logs and goes back to the jobs list.
  async function onDeleteClick(btn) {
    if (!current || current.page !== 'job' || btn.disabled) return;
    const st = job.st;
    const id = st.id;
    const confirmed = confirmClick('job-delete', btn, 'Confirm delete', () => {
      if (job.st === st && !btn.disabled) { btn.textContent = 'Delete'; btn.classList.remove('armed'); }
    });
    if (!confirmed) return;
    btn.disabled = true;
    btn.textContent = 'Deleting…';
    try {
      await sendJSON('DELETE', `api/jobs/${encodeURIComponent(id)}`);
      showBanner(`Job ${id} deleted.`, 'info', 4000);
      if (current && current.page === 'job' && job.st === st) go('jobs', {});
    } catch (e) {
      showBanner(`Delete job ${id}: ${e.message}`, 'error');
      if (job.st === st) resetDelete(btn);
      if (current && current.page === 'job' && job.st === st) { st.jobText = null; refreshNow(); }
    }
  }

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawChart, 100);
  });

  window.addEventListener('hashchange', route);

  // ============================================================== start ==

  // Opened once as /?token=…: the node has set its cookie with this very
  // response; keep the token out of the address bar and history.
  if (new URLSearchParams(location.search).has('token')) {
    history.replaceState(null, '', location.pathname + location.hash);
  }
  setNodeAddress(location.host);
  route();
  if (!current || current.page !== 'overview') {
    getJSON('api/v0/status').then(({ data }) => setNodeAddress(data && data.node && data.node.address)).catch(() => {});
  }
})();
