// vigil web console: plain DOM, no framework, no network access but this origin.
// Everything shown from events (command lines, paths, rule titles) is attacker-
// controlled text: it goes into the page as text nodes (textContent), never markup.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
    return e;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function setText(id, text) {
    $(id).textContent = text;
  }

  // ---- token: from the URL fragment once, then sessionStorage; sent as a bearer header
  const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('vigil.token', m[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }
  const token = () => sessionStorage.getItem('vigil.token') || '';

  async function api(path, opts) {
    const o = Object.assign({ method: 'GET' }, opts || {});
    const headers = { Authorization: 'Bearer ' + token() };
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method: o.method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), credentials: 'omit', cache: 'no-store' });
    if (res.status === 401) {
      showLogin();
      throw new Error('unauthorized: the token is missing or wrong');
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.message || res.statusText);
    return data;
  }

  function showLogin() {
    $('login').hidden = false;
    conn('no token', 'down');
  }
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('vigil.token', $('login-token').value.trim());
    $('login-token').value = '';
    $('login').hidden = true;
    start();
  });

  function conn(text, cls) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'conn ' + (cls || '');
  }

  // ---- tabs
  const loaders = {};
  for (const b of document.querySelectorAll('nav button')) {
    b.addEventListener('click', () => {
      for (const x of document.querySelectorAll('nav button')) x.classList.toggle('active', x === b);
      for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== 'tab-' + b.dataset.tab;
      const f = loaders[b.dataset.tab];
      if (f) f().catch(showError);
    });
  }
  function showError(e) {
    conn(String(e && e.message ? e.message : e), 'down');
  }

  const ev = (rec) => (rec && rec.event) || rec || {};
  const when = (r) => (typeof r.timestamp === 'string' ? r.timestamp.replace('T', ' ').replace(/\.(\d{3})\d*Z$/, '.$1Z') : '');

  // ---- live alerts (server-sent events over fetch: EventSource cannot send the bearer header)
  let alertCount = 0;
  function addAlert(a) {
    const e = ev(a);
    alertCount++;
    setText('alerts-count', '(' + alertCount + ')');
    const tr = el(
      'tr',
      { class: 'alert', onclick: () => showTree(a, tr) },
      el('td', {}, when(a)),
      el('td', { class: 'level-' + String(a.level) }, a.level),
      el('td', { title: String(a.rule_id) }, a.rule_title),
      el('td', {}, e.ProcessId),
      el('td', {}, e.Image),
      el('td', { class: 'cmd' }, e.CommandLine),
    );
    const body = $('alerts-body');
    body.insertBefore(tr, body.firstChild);
    while (body.childNodes.length > 500) body.removeChild(body.lastChild);
  }
  let decisions = [];
  async function stream() {
    for (;;) {
      try {
        const res = await fetch('/api/alerts/stream', { headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' });
        if (res.status === 401) return showLogin();
        if (!res.ok || !res.body) throw new Error('stream: ' + res.status);
        conn('live', 'live');
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (!data) continue;
            const v = JSON.parse(data);
            if (type === 'alert') addAlert(v);
            else if (type === 'decision') {
              decisions.unshift(v);
              decisions = decisions.slice(0, 200);
              renderDecisions(decisions);
            }
          }
        }
      } catch (e) {
        showError(e);
      }
      conn('reconnecting', 'down');
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  // ---- an alert's process tree: the agent's table around its pid, else the alert's own Ancestors
  async function showTree(a, tr) {
    for (const x of document.querySelectorAll('#alerts-body tr.sel')) x.classList.remove('sel');
    tr.classList.add('sel');
    const e = ev(a);
    $('tree').hidden = false;
    setText('tree-title', 'pid ' + e.ProcessId + ' — ' + (a.rule_title || ''));
    const list = $('tree-list');
    clear(list);
    const line = (p, cls) => el('li', { class: cls || '' }, p.pid + '  ' + (p.Image || '') + '  ' + (p.CommandLine || '') + (p.exited ? '  (exited)' : ''));
    let t = null;
    try {
      t = await api('/api/processes/' + encodeURIComponent(e.ProcessId) + '/tree');
    } catch (err) {
      showError(err);
    }
    const anc = t && t.found && t.process && t.process.ProcessGuid === e.ProcessGuid ? t.ancestors : (e.Ancestors || []).map((x) => ({ pid: x.ProcessId, Image: x.Image, CommandLine: x.CommandLine }));
    for (const p of anc.slice().reverse()) list.append(line(p, 'anc'));
    list.append(line({ pid: e.ProcessId, Image: e.Image, CommandLine: e.CommandLine }, 'self'));
    if (t && t.found && t.process && t.process.ProcessGuid === e.ProcessGuid) for (const c of t.children) list.append(line(c, 'child'));
  }

  // ---- event search
  async function loadCategories() {
    const doc = await api('/api/openapi.json');
    const p = (doc.paths['/api/events'].get.parameters || []).find((x) => x.name === 'category');
    const sel = $('q-category');
    for (const c of (p && p.schema && p.schema.enum) || []) sel.append(el('option', { value: c }, c));
  }
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    search().catch((err) => setText('search-status', String(err.message)));
  });
  async function search() {
    const q = new URLSearchParams();
    for (const [k, id] of [['since', 'q-since'], ['until', 'q-until'], ['category', 'q-category'], ['limit', 'q-limit']]) {
      const v = $(id).value.trim();
      if (v) q.append(k, v);
    }
    for (const f of $('q-field').value.split(';').map((s) => s.trim()).filter(Boolean)) q.append('field', f);
    const alerts = $('q-alerts').checked;
    const t0 = performance.now();
    const r = await api((alerts ? '/api/alerts?' : '/api/events?') + q.toString());
    setText('search-status', r.records.length + ' ' + (alerts ? 'alert' : 'event') + (r.records.length === 1 ? '' : 's') + ' in ' + Math.round(performance.now() - t0) + ' ms' + (r.records.length === r.limit ? ' (limit reached)' : ''));
    const body = $('events-body');
    clear(body);
    for (const rec of r.records) {
      const v = rec.record;
      const e = ev(v);
      body.append(el('tr', {}, el('td', {}, when(v)), el('td', {}, (alerts ? '[' + v.level + '] ' + v.rule_title + ' · ' : '') + (e.category || '')), el('td', {}, e.ProcessId), el('td', {}, e.Image), el('td', { class: 'cmd' }, e.CommandLine), el('td', {}, e.User)));
    }
  }

  // ---- exec guard: rules (add and remove, with confirmation) and decisions
  function renderDecisions(list) {
    const body = $('decisions-body');
    clear(body);
    for (const d of list) {
      const v = d.vigil || {};
      const rule = v.rule || {};
      body.append(el('tr', {}, el('td', {}, when(d)), el('td', {}, v.action), el('td', {}, rule.id), el('td', {}, d.ProcessId), el('td', {}, d.Image), el('td', {}, d.TargetFilename)));
    }
  }
  async function loadGuard() {
    const r = await api('/api/deny');
    setText('guard-status', 'enforcement: ' + r.enforcement.state + (r.enforcement.reason ? ' — ' + r.enforcement.reason : ''));
    setText('guard-mode', '(global mode ' + r.mode + ')');
    const body = $('deny-body');
    clear(body);
    for (const rule of r.rules) {
      const target = rule.kind === 'sha256' ? 'sha256:' + rule.sha256 + (rule.path ? ' (' + rule.path + ')' : '') : rule.path;
      body.append(
        el('tr', { 'data-rule': rule.id }, el('td', {}, rule.id), el('td', {}, rule.mode), el('td', {}, rule.kind), el('td', {}, target), el('td', {}, rule.comment || ''),
          el('td', {}, el('button', { type: 'button', class: 'rm', onclick: () => removeRule(rule, target) }, 'Remove'))),
      );
    }
    const d = await api('/api/events?category=exec_guard&limit=100');
    const live = decisions.slice();
    const seen = new Set(live.map((x) => x.timestamp + x.ProcessGuid));
    for (const rec of d.records) if (!seen.has(rec.record.timestamp + rec.record.ProcessGuid)) live.push(rec.record);
    renderDecisions(live);
  }
  async function removeRule(rule, target) {
    if (!confirm('Remove deny rule ' + rule.id + ' (' + target + ')? It is lifted at once.')) return;
    let msg;
    try {
      await api('/api/deny/' + rule.id, { method: 'DELETE' });
      msg = 'removed rule ' + rule.id;
    } catch (e) {
      msg = 'not removed: ' + e.message;
    }
    // the table first: the message never stands beside the row it says is gone
    try {
      await loadGuard();
    } finally {
      setText('deny-msg', msg);
    }
  }
  $('deny-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const path = $('deny-path').value.trim();
    const sha = $('deny-sha').value.trim();
    const body = { mode: $('deny-mode').value };
    if (path) body.path = path;
    if (sha) body.sha256 = sha;
    const comment = $('deny-comment').value.trim();
    if (comment) body.comment = comment;
    if (!path && !sha) return setText('deny-msg', 'give a path or a sha256');
    if (!confirm('Add a deny rule (' + body.mode + ') for ' + (path || 'sha256:' + sha) + '? Executing it will ' + (body.mode === 'enforce' ? 'fail with EPERM' : 'be reported') + ' where the guard is armed.')) return;
    let msg;
    try {
      const r = await api('/api/deny', { method: 'POST', body });
      msg = (r.created ? 'added rule ' : 'kept rule ') + r.rule.id;
      $('deny-path').value = '';
      $('deny-sha').value = '';
    } catch (err) {
      msg = 'not added: ' + err.message;
    }
    try {
      await loadGuard();
    } finally {
      setText('deny-msg', msg);
    }
  });

  // ---- health: sensors, drops by stage, outputs, Sigma rule store
  async function loadHealth() {
    const s = await api('/api/status');
    const body = $('sensors-body');
    clear(body);
    for (const [name, x] of Object.entries(s.sensors)) {
      body.append(el('tr', {}, el('td', {}, name), el('td', {}, x.records), el('td', {}, x.events), el('td', {}, x.kernel_drops), el('td', {}, x.decode_drops), el('td', {}, x.ring_size ? x.ring_unread + ' / ' + x.ring_size : '')));
    }
    setText('drops', 'drops: kernel ' + s.drops.kernel + ', decode ' + s.drops.decode + ', sinks ' + s.drops.sinks + ' · events ' + s.events + ', alerts ' + s.alerts + ' · enforcement ' + s.enforcement.state + ' · processes live ' + s.process_table.live);
    const sb = $('sinks-body');
    clear(sb);
    for (const [name, x] of Object.entries(s.sinks)) sb.append(el('tr', {}, el('td', {}, name), el('td', {}, x.written), el('td', {}, x.dropped), el('td', {}, x.errors), el('td', {}, x.pending)));
    const r = await api('/api/rules');
    setText('rules-summary', r.enabled ? r.active + ' active rules, ' + r.inactive.length + ' without a vigil event source, ' + r.files_with_errors.length + ' file(s) with errors or warnings' : 'no Sigma rules loaded (vigil run --rules DIR)');
    const eb = $('rule-errors-body');
    clear(eb);
    for (const f of r.files_with_errors) for (const x of f.errors) eb.append(el('tr', {}, el('td', {}, f.path), el('td', {}, x.line + ':' + x.col), el('td', {}, x.severity), el('td', {}, x.message)));
  }

  loaders.guard = loadGuard;
  loaders.health = loadHealth;

  function start() {
    if (!token()) return showLogin();
    conn('connecting');
    loadCategories().catch(showError);
    stream();
  }
  start();
})();
