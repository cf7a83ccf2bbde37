/**
 * The webhook output against a local HTTP server that fails (500), stalls (no
 * answer until the client's timeout), refuses (400), throttles (429) and
 * recovers. What fit in the queue arrives exactly once (deduplicated by the
 * Idempotency-Key the retries keep); what did not fit is counted.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOutputs, outputsConfigSchema } from '../../src/sinks/index.js';
import type { Sink, SinkRecord } from '../../src/sinks/sink.js';
import { backoffDelay } from '../../src/sinks/delivery.js';
import { retryAfterMs } from '../../src/sinks/webhook/index.js';
import { waitFor } from './rsyslog.js';

type Mode = 'ok' | 'fail' | 'stall' | 'refuse' | 'throttle';

interface Body {
  host: string;
  batch: string;
  attempt: number;
  records: Array<{ kind: string; record: { rule_id: string; level: string; event: { seq: number } } }>;
}

class Receiver {
  mode: Mode = 'ok';
  /** every request, whatever the answer */
  requests: Array<{ headers: IncomingMessage['headers']; body: Body; answered: number | null }> = [];
  /** batches answered 200, by Idempotency-Key (a duplicate key is kept once and counted) */
  accepted = new Map<string, Body>();
  duplicates = 0;
  private stalled: ServerResponse[] = [];
  server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let data = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (data += d));
      req.on('end', () => {
        const entry = { headers: req.headers, body: JSON.parse(data) as Body, answered: null as number | null };
        this.requests.push(entry);
        const answer = (code: number, headers: Record<string, string> = {}) => {
          entry.answered = code;
          res.writeHead(code, headers).end();
        };
        switch (this.mode) {
          case 'fail':
            return answer(500);
          case 'refuse':
            return answer(400);
          case 'throttle':
            this.mode = 'ok'; // once
            return answer(429, { 'retry-after': '0' });
          case 'stall':
            this.stalled.push(res);
            return;
          case 'ok': {
            const key = String(req.headers['idempotency-key']);
            if (this.accepted.has(key)) this.duplicates++;
            else this.accepted.set(key, entry.body);
            return answer(200);
          }
        }
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  seqs(): number[] {
    return [...this.accepted.values()].flatMap((b) => b.records.map((r) => r.record.event.seq)).sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    for (const r of this.stalled) r.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

function alert(seq: number, level = 'high'): SinkRecord {
  const value = { rule_id: `r-${seq}`, rule_title: 't', level, event: { seq, CommandLine: 'x\n<img src=x onerror=alert(1)>' } };
  return { kind: 'alert', value, json: JSON.stringify(value) };
}

describe('webhook output', () => {
  let rx: Receiver;
  let dir: string;
  let secretFile: string;
  const sinks: Sink[] = [];
  beforeEach(async () => {
    rx = new Receiver();
    await rx.start();
    dir = mkdtempSync(join(tmpdir(), 'vigil-webhook-'));
    secretFile = join(dir, 'secret');
    writeFileSync(secretFile, 's3cret-token\n', { mode: 0o600 });
  });
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close()));
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (section: Record<string, unknown>): Sink => {
    const cfg = outputsConfigSchema().parse({ webhook: { enabled: true, url: rx.url, secret_file: secretFile, ...section } });
    const [sink] = openOutputs(cfg as never, { hostname: 'vigil-test' }, (_n, e) => {
      throw e;
    });
    sinks.push(sink!);
    return sink!;
  };

  it('fails, stalls, recovers: what fit arrives exactly once, the overflow is counted', async () => {
    const sink = open({
      timeout: '1s', // long enough that an answered request is never timed out on a loaded machine (a duplicate would show below)
      queue: { max_records: 50, batch_max_records: 10, linger: '0ms' },
      retry: { initial: '20ms', max: '100ms', max_attempts: 0 },
    });
    rx.mode = 'fail';
    for (let i = 0; i < 30; i++) expect(sink.write(alert(i))).toBe(true);
    await waitFor(() => rx.requests.filter((r) => r.answered === 500).length >= 3, 5000, 'three 500 answers');
    rx.mode = 'stall';
    await waitFor(() => rx.requests.some((r) => r.answered === null), 5000, 'a stalled request');
    // 20 more fit (50 in all), 20 do not
    let refused = 0;
    for (let i = 30; i < 70; i++) if (!sink.write(alert(i))) refused++;
    expect(refused).toBe(20);
    await waitFor(() => (sink.stats().errors ?? 0) >= 4, 5000, 'the stalled request timing out');
    rx.mode = 'ok';
    await sink.flush();

    expect(rx.seqs()).toEqual([...Array(50).keys()]);
    expect(rx.duplicates).toBe(0);
    const st = sink.stats();
    expect(st).toMatchObject({ written: 50, dropped: 20, pending: 0 });
    expect(st.delivery).toMatchObject({ queued: 50, sent: 50, queueDepth: 0, drops: { full: 20, failed: 0, shutdown: 0 } });
    expect(st.delivery!.retries).toBeGreaterThanOrEqual(4);
    // every request: the secret header, JSON, the batch id in header and body; a retry keeps the key and counts attempts
    for (const r of rx.requests) {
      expect(r.headers['x-vigil-token']).toBe('s3cret-token');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['idempotency-key']).toBe(r.body.batch);
      expect(r.body.host).toBe('vigil-test');
    }
    const first = rx.requests[0]!;
    const tries = rx.requests.filter((r) => r.body.batch === first.body.batch);
    expect(tries.map((r) => r.body.attempt)).toEqual(tries.map((_, i) => i + 1));
    expect(tries.at(-1)!.answered).toBe(200);
    // the attacker's text is data in JSON, byte for byte
    expect(rx.accepted.get(first.body.batch)!.records[0]!.record.event).toMatchObject({ CommandLine: 'x\n<img src=x onerror=alert(1)>' });
  });

  it('a 4xx refusal is not retried (dropped, counted as failed); 429 is retried', async () => {
    const sink = open({ queue: { linger: '0ms', batch_max_records: 100 }, retry: { initial: '10ms', max: '50ms', max_attempts: 0 } });
    rx.mode = 'refuse';
    sink.write(alert(1));
    sink.write(alert(2));
    await sink.flush();
    expect(rx.requests).toHaveLength(1);
    expect(sink.stats().delivery).toMatchObject({ sent: 0, retries: 0, drops: { failed: 2 } });
    rx.mode = 'throttle';
    sink.write(alert(3));
    await sink.flush();
    expect(rx.requests.map((r) => r.answered)).toEqual([400, 429, 200]);
    expect(rx.seqs()).toEqual([3]);
    expect(sink.stats()).toMatchObject({ written: 1, dropped: 2 });
  });

  it('route alerts with min_level: lower levels and events are not sent (and not drops)', async () => {
    const sink = open({ min_level: 'high', queue: { linger: '0ms' } });
    sink.write(alert(1, 'medium'));
    sink.write(alert(2, 'critical'));
    sink.write(alert(3, 'high'));
    sink.write({ kind: 'event', value: { seq: 4 }, json: '{"seq":4}' });
    await sink.flush();
    expect(rx.seqs()).toEqual([2, 3]);
    expect(sink.stats()).toMatchObject({ written: 2, dropped: 0 });
  });

  it('batches are bounded by records and lingered: 25 records in batches of at most 10', async () => {
    const sink = open({ queue: { batch_max_records: 10, linger: '50ms' } });
    for (let i = 0; i < 25; i++) sink.write(alert(i));
    await sink.flush();
    expect(rx.seqs()).toEqual([...Array(25).keys()]);
    expect(Math.max(...[...rx.accepted.values()].map((b) => b.records.length))).toBe(10);
  });

  it('shutdown with the peer down: what is left is counted as shutdown drops', async () => {
    const sink = open({ shutdown_timeout: '100ms', retry: { initial: '10ms', max: '20ms', max_attempts: 0 }, queue: { linger: '0ms' } });
    rx.mode = 'fail';
    for (let i = 0; i < 5; i++) sink.write(alert(i));
    await waitFor(() => rx.requests.length >= 2, 5000, 'failing requests');
    sinks.splice(sinks.indexOf(sink), 1);
    await sink.close();
    expect(sink.stats().delivery).toMatchObject({ sent: 0, queueDepth: 0, drops: { shutdown: 5 } });
    expect(sink.write(alert(9))).toBe(false);
    expect(sink.stats().dropped).toBe(6);
  });

  it('a secret file readable by others is refused; secret and secret_file together are refused', () => {
    chmodSync(secretFile, 0o644);
    expect(() => open({})).toThrow(/readable by others/);
    expect(() => outputsConfigSchema().parse({ webhook: { enabled: true, url: rx.url, secret: 'a', secret_file: '/x' } })).toThrow(/not both/);
    expect(() => outputsConfigSchema().parse({ webhook: { enabled: true } })).toThrow(/needs a url/);
  });
});

describe('webhook over HTTPS', () => {
  it('verifies the certificate: an unknown CA fails (retried, counted), ca_file makes it deliver', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-webhook-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=vigil test CA');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'san.ext');
    const got: string[] = [];
    const server = createHttpsServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) }, (req, res) => {
      let d = '';
      req.on('data', (c) => (d += c));
      req.on('end', () => {
        got.push(d);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/tls`;
    const open = (extra: Record<string, unknown>) => {
      const cfg = outputsConfigSchema().parse({ webhook: { enabled: true, url, queue: { linger: '0ms' }, retry: { initial: '5ms', max: '10ms', max_attempts: 2 }, ...extra } });
      return openOutputs(cfg as never, { hostname: 'h' }, (_n, e) => {
        throw e;
      })[0]!;
    };
    try {
      const untrusted = open({});
      untrusted.write(alert(1));
      await untrusted.flush();
      expect(got).toHaveLength(0);
      expect(untrusted.stats()).toMatchObject({ written: 0, dropped: 1, errors: 2 });
      await untrusted.close();
      const trusted = open({ ca_file: join(dir, 'ca.pem') });
      trusted.write(alert(2));
      await trusted.flush();
      expect(got).toHaveLength(1);
      expect(JSON.parse(got[0]!).records[0].record.rule_id).toBe('r-2');
      expect(trusted.stats()).toMatchObject({ written: 1, dropped: 0, errors: 0 });
      await trusted.close();
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('backoff', () => {
  it('full jitter under a doubling cap, at most max, at least Retry-After', () => {
    const b = { initialMs: 100, maxMs: 1000, maxAttempts: 0 };
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelay(b, n, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(b, 3, () => 0)).toBe(0);
    expect(backoffDelay(b, 1, () => 0, 500)).toBe(500);
    expect(backoffDelay(b, 1, () => 0, 5000)).toBe(1000);
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThan(8000);
    expect(retryAfterMs('soon')).toBe(0);
  });
});
