/**
 * The agent's publisher against a real nats-server on loopback (JetStream, temp
 * store): two hosts publish; the server is killed, 1,000 events happen, it comes
 * back: every event arrives, in order, exactly once per host as the stream holds
 * them (read without client-side de-duplication). Also: an agent restarted while
 * the server is away replays its spool from disk; a full spool drops and counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { connectFleet, ensureStreams, FleetAgent, FleetPublisher, FleetSink, readBatches, Spool } from '../../src/fleet/index.js';
import { freePort, startNats, type NatsServer } from './nats.js';

let srv: NatsServer;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  srv = await startNats();
  const nc = await connectFleet({ url: srv.url });
  await ensureStreams(nc);
  await nc.close();
});
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await srv?.stop();
});

async function connect(): Promise<NatsConnection> {
  const nc = await connectFleet({ url: srv.url, reconnectTimeWaitMs: 100 });
  conns.push(nc);
  return nc;
}

function agent(host: string, o: { spoolDir?: string; maxBytes?: number; writeDelayMs?: number } = {}) {
  const spool = Spool.open({ dir: o.spoolDir ?? join(mkdtempSync(join(tmpdir(), 'vigil-pub-')), 'spool'), idPrefix: host, maxBytes: o.maxBytes ?? 64 << 20, ...(o.writeDelayMs !== undefined ? { writeDelayMs: o.writeDelayMs } : {}) });
  const publisher = new FleetPublisher({ hostId: host, spool, lingerMs: 20, batchMaxRecords: 100 });
  const sink = new FleetSink({ hostId: host, publisher, onClose: () => spool.close() });
  return { spool, publisher, sink };
}

const PAD = 'x'.repeat(400);
function emit(sink: FleetSink, run: string, i: number): boolean {
  const value = { category: 'process_creation', run, i, CommandLine: `/bin/true ${run} ${i}`, pad: PAD };
  return sink.write({ kind: 'event', value, json: JSON.stringify(value) });
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every event of `run` from `host` as the stream holds it: [i...] in stream order, duplicates included. */
async function received(host: string, run: string): Promise<number[]> {
  const nc = await connectFleet({ url: srv.url, reconnect: false });
  const out: number[] = [];
  try {
    for await (const b of readBatches(nc, 'event', { host, dedup: false })) {
      for (const l of b.records) {
        const e = JSON.parse(l);
        if (e.run === run) out.push(e.i);
      }
    }
  } finally {
    await nc.close();
  }
  return out;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

describe('fleet publisher on a real nats-server', () => {
  it('two hosts: kill the server, 1,000 events, restart: all arrive, in order, exactly once per host', async () => {
    const hosts = [agent('host-a'), agent('host-b')];
    const ncs = await Promise.all(hosts.map(() => connect()));
    hosts.forEach((h, k) => h.publisher.attach(ncs[k]!));
    for (const h of hosts) for (let i = 0; i < 100; i++) expect(emit(h.sink, 'before', i)).toBe(true);
    await until(() => hosts.every((h) => h.publisher.stats().pending === 0), 10_000, 'first events acknowledged');

    await srv.kill();
    await until(() => hosts.every((h) => !h.publisher.stats().connected), 5000, 'agents notice the outage');
    for (const h of hosts) for (let i = 0; i < 1000; i++) expect(emit(h.sink, 'outage', i)).toBe(true);
    await until(() => hosts.every((h) => h.spool.stats().backlog >= 10), 5000, 'outage batches spooled');
    for (const h of hosts) expect(h.publisher.stats().published).toBe(100);

    await srv.restart();
    await until(() => hosts.every((h) => h.publisher.stats().pending === 0 && h.spool.stats().backlog === 0), 20_000, 'spool drained after the restart');
    for (const h of ['host-a', 'host-b']) {
      expect(await received(h, 'before')).toEqual(range(0, 100));
      expect(await received(h, 'outage')).toEqual(range(0, 1000));
    }
    for (const h of hosts) {
      const st = h.publisher.stats();
      expect(st.published).toBe(1100);
      expect(st.dropped).toBe(0);
      expect(h.sink.stats()).toMatchObject({ written: 1100, dropped: 0, pending: 0 });
      await h.sink.close();
    }
  }, 60_000);

  it('an agent restarted while the server is away replays its spool from disk, in order', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'vigil-pub-')), 'spool');
    const first = agent('host-c', { spoolDir: dir });
    first.publisher.attach(await connect());
    for (let i = 0; i < 200; i++) emit(first.sink, 'restart', i);
    await until(() => first.publisher.stats().pending === 0, 10_000, 'first 200 acknowledged');
    await srv.kill();
    await until(() => !first.publisher.stats().connected, 5000, 'outage noticed');
    for (let i = 200; i < 700; i++) emit(first.sink, 'restart', i);
    await first.sink.close(); // the agent stops with 500 events on disk only
    expect(first.spool.stats().backlog).toBeGreaterThan(0);

    const second = agent('host-c', { spoolDir: dir });
    expect(second.spool.stats().backlog).toBe(first.spool.stats().backlog);
    for (let i = 700; i < 1000; i++) emit(second.sink, 'restart', i);
    await srv.restart();
    second.publisher.attach(await connect());
    await until(() => second.spool.stats().backlog === 0 && second.publisher.stats().pending === 0, 20_000, 'replayed');
    expect(await received('host-c', 'restart')).toEqual(range(0, 1000));
    await second.sink.close();
  }, 60_000);

  it('a crash before the ack cursor reached the disk resends stored batches: the server keeps each once (Nats-Msg-Id)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'vigil-pub-')), 'spool');
    // every batch on disk at once (write-ahead), so the crash leaves acknowledged batches there
    const first = agent('host-e', { spoolDir: dir, writeDelayMs: 0 });
    const staleMeta = readFileSync(join(dir, 'meta.json')); // acked: 0
    first.publisher.attach(await connect());
    for (let i = 0; i < 300; i++) emit(first.sink, 'crash', i);
    first.publisher.sealAll();
    await until(() => first.publisher.stats().published === 300, 10_000, 'all acknowledged');
    const batches = first.publisher.stats().batchesPublished;
    first.publisher.close();
    await first.spool.close();
    writeFileSync(join(dir, 'meta.json'), staleMeta); // the crash: the cursor on disk is behind

    const second = agent('host-e', { spoolDir: dir });
    expect(second.spool.stats().backlog).toBe(batches);
    second.publisher.attach(await connect());
    await until(() => second.spool.stats().backlog === 0, 10_000, 'resent');
    expect(second.publisher.stats().duplicates).toBe(batches);
    expect(await received('host-e', 'crash')).toEqual(range(0, 300));
    await second.sink.close();
  }, 60_000);

  it('a full spool drops the newest batches and counts every dropped event', async () => {
    const h = agent('host-d', { maxBytes: 256 * 1024 });
    h.publisher.attach(await connect());
    await srv.kill();
    await until(() => !h.publisher.stats().connected, 5000, 'outage noticed');
    for (let i = 0; i < 2000; i++) {
      emit(h.sink, 'full', i);
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 30)); // batches seal as time passes
    }
    h.publisher.sealAll();
    const dropped = h.publisher.stats().dropped;
    expect(dropped).toBeGreaterThan(0);
    expect(h.sink.stats().dropped).toBe(dropped);
    expect(h.spool.stats().droppedRecords).toBe(dropped);
    await srv.restart();
    await until(() => h.spool.stats().backlog === 0, 20_000, 'drained');
    const got = await received('host-d', 'full');
    expect(got).toEqual(range(0, 2000 - dropped));
    await h.sink.close();
  }, 60_000);

  it('an agent started before its server exists spools, and sends everything once the server appears', async () => {
    const port = await freePort();
    const state = mkdtempSync(join(tmpdir(), 'vigil-pub-late-'));
    const logs: string[] = [];
    const f = new FleetAgent({ url: `nats://127.0.0.1:${port}`, hostId: 'host-late', stateDir: state, rulesDb: join(state, 'vigil.db'), log: pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s).msg) }), lingerMs: 20, reconnectTimeWaitMs: 100 });
    await f.start({});
    for (let i = 0; i < 500; i++) emit(f.sink, 'late', i);
    await until(() => f.spool.stats().backlog > 0, 5000, 'spooled');
    expect(logs.some((l) => l.includes(`cannot connect to nats://127.0.0.1:${port}`))).toBe(true);
    // an agent that never reaches its server still stops at once (its spool stays for the next start)
    const other = mkdtempSync(join(tmpdir(), 'vigil-pub-never-'));
    const never = new FleetAgent({ url: `nats://127.0.0.1:${await freePort()}`, hostId: 'host-never', stateDir: other, rulesDb: join(other, 'vigil.db'), log: pino({ level: 'silent' }), lingerMs: 20, reconnectTimeWaitMs: 3000 });
    await never.start({});
    emit(never.sink, 'never', 0);
    await new Promise((r) => setTimeout(r, 300)); // in its first 3 s wait between attempts
    const t0 = Date.now();
    await never.sink.close();
    await never.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(Spool.open({ dir: join(other, 'spool'), idPrefix: 'host-never', maxBytes: 1 << 20 }).stats().backlog).toBe(1);
    const late = await startNats({ port });
    try {
      await until(() => f.publisher.stats().published === 500, 20_000, 'sent after the server appeared');
      const nc = await connectFleet({ url: late.url });
      const got: number[] = [];
      for await (const b of readBatches(nc, 'event', { host: 'host-late', dedup: false })) for (const l of b.records) got.push(JSON.parse(l).i);
      await nc.close();
      expect(got).toEqual(range(0, 500));
      await f.stop();
    } finally {
      await late.stop();
    }
  }, 60_000);
});

describe('fleet publisher: batches', () => {
  it('hold every record once, in order, each followed by a newline, whatever its size and characters; a batch is sealed at batchMaxBytes and passes it by less than its last record', () => {
    const spool = Spool.open({ dir: join(mkdtempSync(join(tmpdir(), 'vigil-pack-')), 'spool'), idPrefix: 'h', maxBytes: 64 << 20, writeDelayMs: 60_000 });
    const maxBytes = 64 * 1024;
    const p = new FleetPublisher({ hostId: 'h', spool, lingerMs: 60_000, batchMaxRecords: 500, batchMaxBytes: maxBytes });
    const first = spool.lastSeq + 1;
    const sent = new Map<string, string[]>();
    for (let i = 0; i < 3000; i++) {
      // ASCII, 2-, 3- and 4-byte characters, a record larger than PACK_CHARS, an empty value
      const v = i % 7 === 0 ? `ünï ✓ 𝄞 ${i}` : i % 997 === 0 ? 'x'.repeat(70_000) : i % 11 === 0 ? '' : `plain ${i}`;
      // a record built from pieces, as the agent's are
      const json = `{"i":${i}` + `,"v":${JSON.stringify(v)}}`;
      const subject = i % 3 ? 'vigil.events.h.a' : 'vigil.events.h.b';
      if (!sent.has(subject)) sent.set(subject, []);
      sent.get(subject)!.push(json);
      expect(p.add('event', subject, json)).toBe(true);
    }
    p.sealAll();
    const got = new Map<string, string[]>();
    const batches = new Map<string, Array<{ bytes: number; count: number; last: number }>>();
    for (let seq = first; seq <= spool.lastSeq; seq++) {
      const r = spool.get(seq)!;
      const lines = r.body.toString('utf8').split('\n');
      expect(lines.pop()).toBe('');
      expect(lines).toHaveLength(r.count);
      if (!got.has(r.subject)) got.set(r.subject, []);
      got.get(r.subject)!.push(...lines);
      if (!batches.has(r.subject)) batches.set(r.subject, []);
      batches.get(r.subject)!.push({ bytes: r.body.length, count: r.count, last: Buffer.byteLength(lines.at(-1)!) + 1 });
    }
    expect(got).toEqual(sent);
    for (const list of batches.values()) {
      list.forEach((b, k) => {
        expect(b.bytes - b.last).toBeLessThan(maxBytes);
        // every batch but a subject's last was full
        if (k < list.length - 1) expect(b.count === 500 || b.bytes >= maxBytes).toBe(true);
      });
    }
    expect(p.stats()).toMatchObject({ accepted: 3000, dropped: 0 });
    p.close();
    spool.close();
  });
});
