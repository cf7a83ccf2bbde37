/**
 * The local API in this process against a real store (SQLite in a temporary
 * directory), a real process table and the real deny rule store: the token on
 * every route, the same-origin check, the event filters of `vigil events`, the
 * deny rule routes, /metrics in the text format, the console's headers, and
 * the committed OpenAPI document (stale = fail: npm run build && npm run gen:openapi).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer, ensureToken, openApiDocument, parseListen, bearerMatches } from '../../src/api/index.js';
import { EventStore, toRow } from '../../src/store/store.js';
import { ProcessContext } from '../../src/process/context.js';
import { RulesStore } from '../../src/enforcement/index.js';
import type { AgentStats } from '../../src/agent/agent.js';
import { parsePrometheusText, sampleValue } from './promtext.js';

const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

describe('OpenAPI document', () => {
  it('docs/openapi.json is the one the code makes (else: npm run build && npm run gen:openapi)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
    expect(JSON.parse(JSON.stringify(openApiDocument(VERSION)))).toEqual(committed);
  });
});

describe('listen addresses and tokens', () => {
  it('parses ADDR:PORT and knows loopback', () => {
    expect(parseListen('127.0.0.1:7070')).toEqual({ host: '127.0.0.1', port: 7070, loopback: true });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80, loopback: true });
    expect(parseListen('0.0.0.0:7070')).toMatchObject({ loopback: false });
    expect(parseListen('10.1.2.3:7070')).toMatchObject({ loopback: false });
    for (const bad of ['127.0.0.1', 'example.com:80', '127.0.0.1:0', '127.0.0.1:65536', '[x]:1', '']) expect(typeof parseListen(bad)).toBe('string');
  });

  it('makes a 0600 token file once, keeps it, tightens a loose one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-token-'));
    try {
      const f = join(dir, 'sub', 'api.token');
      const a = ensureToken(f);
      expect(a.created).toBe(true);
      expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
      const b = ensureToken(f);
      expect(b).toEqual({ token: a.token, created: false, tightened: false });
      const g = join(dir, 'loose.token');
      writeFileSync(g, `${'A'.repeat(40)}\n`, { mode: 0o644 });
      expect(ensureToken(g).tightened).toBe(true);
      expect(statSync(g).mode & 0o777).toBe(0o600);
      writeFileSync(g, 'short');
      expect(() => ensureToken(g)).toThrow(/does not hold a token/);
      expect(bearerMatches(`Bearer ${a.token}`, a.token)).toBe(true);
      expect(bearerMatches(`Bearer ${a.token}x`, a.token)).toBe(false);
      expect(bearerMatches(a.token, a.token)).toBe(false);
      expect(bearerMatches(undefined, a.token)).toBe(false);
      expect(bearerMatches('Bearer ', a.token)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('local API', () => {
  let dir: string;
  let server: ApiServer;
  let base: string;
  const token = 'T'.repeat(43);
  const auth = { Authorization: `Bearer ${token}` };
  const stats: AgentStats = {
    uptimeMs: 1234,
    events: 3,
    byCategory: { process_creation: 2, file_event: 1 },
    alerts: 1,
    sensors: { exec: { records: 5, badRecords: 1, kernelDrops: 2, kernel: { rb_full: 2, exec: 5 }, ringWakeups: 1, busyWaits: 3, busyTimeouts: 1, events: 3, ring: { size: 4096, pending: 128 } } },
    processTable: { live: 10, exited: 2, evicted: 0, seeded: 8 },
    sinks: {
      'sqlite:x': { written: 3, dropped: 4, errors: 1, pending: 0 },
      'webhook:hook': { written: 5, dropped: 3, errors: 2, pending: 2, delivery: { queued: 10, sent: 5, retries: 7, queueDepth: 2, queueBytes: 300, drops: { full: 1, failed: 2, shutdown: 0 } } },
    },
    drops: { kernel: 2, decode: 1, sinks: 7 },
  };
  const payload = '<img src=x onerror=alert(1)></script>';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-api-'));
    const db = join(dir, 'vigil.db');
    const store = EventStore.open(db);
    const ev = (pid: number, image: string, cmd: string, ts: string) => ({ category: 'process_creation', timestamp: ts, ProcessId: pid, Image: image, CommandLine: cmd, User: 'root' });
    const evs = [ev(10, '/usr/bin/curl', 'curl http://x', '2026-11-29T10:00:00.000001Z'), ev(11, '/bin/sh', `sh -c ${payload}`, '2026-11-29T10:00:01Z'), { ...ev(12, '/bin/ls', 'ls', '2026-11-29T10:00:02Z'), category: 'process_termination' }];
    const alert = { rule_id: 'r-1', rule_title: 'curl', level: 'high', timestamp: '2026-11-29T10:00:00.5Z', event: evs[0] };
    store.insertBatch([...evs.map((e) => toRow('event', e, JSON.stringify(e))), toRow('alert', alert, JSON.stringify(alert))]);
    store.close();
    const process = new ProcessContext({ host: 'h', bootId: 'b' });
    process.table.exec({ pid: 100, ppid: 1, startNs: 1n, image: '/sbin/init', commandLine: 'init', cwd: '/', uid: 0 });
    process.table.exec({ pid: 200, ppid: 100, startNs: 2n, image: '/bin/bash', commandLine: 'bash -l', cwd: '/root', uid: 0 });
    process.table.exec({ pid: 300, ppid: 200, startNs: 3n, image: '/usr/bin/curl', commandLine: `curl ${payload}`, cwd: '/root', uid: 0 });
    let changed = 0;
    server = new ApiServer({
      host: '127.0.0.1',
      port: 0,
      token,
      version: VERSION,
      db,
      stats: () => stats,
      process,
      detector: null,
      enforcement: () => ({ state: 'detect-only', reason: 'test' }),
      onDenyChanged: () => changed++,
    });
    base = await server.listen();
    server.alert({ rule_id: 'r-1', level: 'high' });
    server.alert({ rule_id: 'r-1', level: 'high' });
    server.decision({ category: 'exec_guard', vigil: { action: 'exec_blocked' } });
    void changed;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (p: string, h: Record<string, string> = auth) => fetch(base + p, { headers: h });

  it('answers 401 on every route of the OpenAPI document (and unknown ones) without the token, or with a wrong one', async () => {
    const doc = openApiDocument(VERSION) as { paths: Record<string, Record<string, unknown>> };
    const tried: string[] = [];
    for (const [p, methods] of Object.entries(doc.paths)) {
      for (const m of Object.keys(methods)) {
        const url = base + p.replace('{pid}', '1').replace('{id}', '1');
        for (const h of [{}, { Authorization: 'Bearer wrong' }, { Authorization: token }, { Authorization: `Basic ${token}` }]) {
          const r = await fetch(url, { method: m.toUpperCase(), headers: { ...h, ...(m === 'get' ? {} : { 'Content-Type': 'application/json' }) }, ...(m === 'get' || m === 'delete' ? {} : { body: '{"mode":"monitor"}' }) });
          expect(r.status, `${m} ${p}`).toBe(401);
          expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
          await r.body?.cancel();
        }
        tried.push(`${m} ${p}`);
      }
    }
    expect(tried.length).toBeGreaterThanOrEqual(12);
    expect((await get('/api/nope', {})).status).toBe(401);
    expect((await get('/api/nope')).status).toBe(404);
  });

  it('serves the console without the token, with a strict CSP and no inline script', async () => {
    const r = await get('/', {});
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const html = await r.text();
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/); // only <script src=...></script>
    expect(html).not.toMatch(/ on[a-z]+=/i);
    const js = await (await get('/console/app.js', {})).text();
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });

  it('searches events with the filters of vigil events', async () => {
    const all = await (await get('/api/events')).json();
    expect(all.records.map((r: { record: { ProcessId: number } }) => r.record.ProcessId)).toEqual([12, 11, 10]);
    const f = await (await get(`/api/events?field=${encodeURIComponent('Image~*/CURL')}&category=process_creation`)).json();
    expect(f.records.map((r: { record: { ProcessId: number } }) => r.record.ProcessId)).toEqual([10]);
    const two = await (await get(`/api/events?field=User=root&field=${encodeURIComponent('CommandLine~*onerror*')}`)).json();
    expect(two.records).toHaveLength(1);
    expect(two.records[0].record.CommandLine).toBe(`sh -c ${payload}`);
    const t = await (await get(`/api/events?since=2026-11-29T10:00:00.000002Z&until=2026-11-29T10:00:01Z&reverse=true`)).json();
    expect(t.records.map((r: { record: { ProcessId: number } }) => r.record.ProcessId)).toEqual([11]);
    const a = await (await get('/api/alerts?rule=r-1')).json();
    expect(a.records).toHaveLength(1);
    expect(a.records[0].record.rule_title).toBe('curl');
    for (const bad of ['category=nope', 'limit=0', 'field=Image', 'since=yesterday', 'bogus=1']) {
      const r = await get(`/api/events?${bad}`);
      expect(r.status, bad).toBe(400);
      expect((await r.json()).message.length).toBeGreaterThan(5);
    }
  });

  it('gives the process tree around a pid from the process table', async () => {
    const t = await (await get('/api/processes/200/tree')).json();
    expect(t.found).toBe(true);
    expect(t.process.CommandLine).toBe('bash -l');
    expect(t.ancestors.map((p: { pid: number }) => p.pid)).toEqual([100]);
    expect(t.children.map((p: { CommandLine: string }) => p.CommandLine)).toEqual([`curl ${payload}`]);
    expect((await (await get('/api/processes/4242/tree')).json()).found).toBe(false);
    expect((await get('/api/processes/abc/tree')).status).toBe(400);
  });

  it('adds, lists and removes deny rules in the store vigil deny reads, refusing other origins', async () => {
    const post = (body: unknown, h: Record<string, string> = {}) => fetch(`${base}/api/deny`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json', ...h }, body: JSON.stringify(body) });
    const cross = await post({ path: '/usr/bin/evil-x' }, { Origin: 'http://evil.example' });
    expect(cross.status).toBe(403);
    expect((await post({ path: '/usr/bin/evil-x' }, { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    const r = await post({ path: '/usr/bin/evil-x', comment: 'test' }, { Origin: base, 'Sec-Fetch-Site': 'same-origin' });
    expect(r.status).toBe(200);
    const added = await r.json();
    expect(added).toMatchObject({ created: true, rule: { kind: 'path', path: '/usr/bin/evil-x', mode: 'enforce', comment: 'test' } });
    const st = RulesStore.open(join(dir, 'vigil.db'), { readonly: true });
    expect(st.list().map((x) => x.path)).toEqual(['/usr/bin/evil-x']);
    st.close();
    const list = await (await get('/api/deny')).json();
    expect(list).toMatchObject({ mode: 'enforce', enforcement: { state: 'detect-only' }, rules: [{ id: added.rule.id }] });
    expect((await post({ path: 'relative' })).status).toBe(400);
    expect((await post({})).status).toBe(400);
    expect((await fetch(`${base}/api/deny/mode`, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{"mode":"monitor"}' })).status).toBe(200);
    expect((await (await get('/api/deny')).json()).mode).toBe('monitor');
    expect((await fetch(`${base}/api/deny/${added.rule.id}`, { method: 'DELETE', headers: { ...auth, Origin: 'http://evil.example' } })).status).toBe(403);
    expect((await fetch(`${base}/api/deny/${added.rule.id}`, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await fetch(`${base}/api/deny/${added.rule.id}`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await (await get('/api/deny')).json()).rules).toEqual([]);
  });

  it('serves /metrics in the Prometheus text format, from the agent stats and the counts of alerts and decisions', async () => {
    const r = await get('/metrics');
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const fams = parsePrometheusText(await r.text());
    expect(sampleValue(fams, 'vigil_events_total', { category: 'process_creation' })).toBe(2);
    expect(sampleValue(fams, 'vigil_drops_total', { stage: 'kernel', source: 'exec' })).toBe(2);
    expect(sampleValue(fams, 'vigil_drops_total', { stage: 'decode', source: 'exec' })).toBe(1);
    expect(sampleValue(fams, 'vigil_drops_total', { stage: 'sink', source: 'sqlite:x' })).toBe(4);
    expect(sampleValue(fams, 'vigil_alerts_total', { rule_id: 'r-1', level: 'high' })).toBe(2);
    expect(sampleValue(fams, 'vigil_exec_guard_decisions_total', { action: 'exec_blocked' })).toBe(1);
    expect(sampleValue(fams, 'vigil_ring_buffer_unread_bytes', { sensor: 'exec' })).toBe(128);
    expect(sampleValue(fams, 'vigil_ring_busy_waits_total', { sensor: 'exec', outcome: 'read' })).toBe(2);
    expect(sampleValue(fams, 'vigil_ring_busy_waits_total', { sensor: 'exec', outcome: 'gave_up' })).toBe(1);
    expect(sampleValue(fams, 'vigil_process_table_entries', { state: 'live' })).toBe(10);
    expect(sampleValue(fams, 'vigil_sink_errors_total', { sink: 'sqlite:x' })).toBe(1);
    // a network output's delivery queue: depth, bytes, resends, drops by cause
    expect(sampleValue(fams, 'vigil_sink_pending', { sink: 'webhook:hook' })).toBe(2);
    expect(sampleValue(fams, 'vigil_sink_queue_bytes', { sink: 'webhook:hook' })).toBe(300);
    expect(sampleValue(fams, 'vigil_sink_retries_total', { sink: 'webhook:hook' })).toBe(7);
    expect(sampleValue(fams, 'vigil_sink_dropped_by_cause_total', { sink: 'webhook:hook', cause: 'failed' })).toBe(2);
    expect(sampleValue(fams, 'vigil_sink_queue_bytes', { sink: 'sqlite:x' })).toBeUndefined();
    expect(fams.get('vigil_events_total')!.type).toBe('counter');
    expect(sampleValue(fams, 'vigil_api_stream_dropped_total')).toBe(0);
    expect(() => parsePrometheusText('vigil_x 1\n')).toThrow(/without a # TYPE/);
    expect(() => parsePrometheusText('# TYPE a counter\na{b="c} 1\n')).toThrow();
  });
});

describe('vigil console-url', () => {
  it('prints the console URL with the token in the fragment, from the token file next to the store', async () => {
    const { vigil } = await import('../cli/harness.js');
    const dir = mkdtempSync(join(tmpdir(), 'vigil-curl-'));
    try {
      const db = join(dir, 'vigil.db');
      const missing = await vigil(['console-url', '--db', db, '--listen', '127.0.0.1:7070']);
      expect(missing.code).toBe(4);
      expect(missing.err).toMatch(/token file .*api\.token.*no token file there/);
      const { token } = ensureToken(join(dir, 'api.token'));
      const r = await vigil(['console-url', '--db', db, '--listen', '127.0.0.1:7070']);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe(`http://127.0.0.1:7070/#token=${token}\n`);
      const j = await vigil(['console-url', '--db', db, '--listen', '[::1]:8080', '--json']);
      expect(JSON.parse(j.out)).toEqual({ url: `http://[::1]:8080/#token=${token}`, api: 'http://[::1]:8080', token_file: join(dir, 'api.token') });
      const off = await vigil(['console-url', '--db', db], { VIGIL_CONFIG: undefined });
      expect(off.code).toBe(2);
      expect(off.err).toMatch(/the API is off/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
