/**
 * Reading the fleet's streams back (the `vigil fleet events|alerts` commands, tests,
 * the bench): an ordered consumer from a start time, over one subject filter,
 * until it has caught up with the stream. Batches come in stream order; a batch
 * seen twice (same Nats-Msg-Id, outside the server's de-duplication window) is
 * skipped.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ALERTS_STREAM, EVENTS_STREAM, H, filterSubject, type RecordKind } from './names.js';

export interface FleetBatch {
  host: string;
  /** the agent's batch sequence (per spool) */
  seq: number;
  msgId: string;
  subject: string;
  kind: RecordKind;
  /** when the agent accepted the first record (epoch ms) */
  t0: number;
  /** when the server stored it */
  stored: Date;
  streamSeq: number;
  /** the records, one JSON text each */
  records: string[];
}

export interface ReadOptions {
  host?: string;
  /** category (events) or level (alerts) */
  sub?: string;
  sinceMs?: number;
  /** stop after this many records */
  limit?: number;
  fetchBatch?: number;
  /** skip a batch whose Nats-Msg-Id was seen already (default true) */
  dedup?: boolean;
}

export async function* readBatches(nc: NatsConnection, kind: RecordKind, o: ReadOptions = {}): AsyncGenerator<FleetBatch> {
  const stream = kind === 'event' ? EVENTS_STREAM : ALERTS_STREAM;
  const jsm = await jetstreamManager(nc);
  let last: number;
  try {
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0) return;
    last = info.state.last_seq;
  } catch (e) {
    if ((e as { code?: number }).code === 10059 || /not found/i.test(String((e as Error).message))) return;
    throw e;
  }
  const js = jetstream(nc);
  const c = await js.consumers.get(stream, {
    filter_subjects: filterSubject(kind, o.host, o.sub),
    ...(o.sinceMs !== undefined ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(o.sinceMs).toISOString() } : { deliver_policy: DeliverPolicy.All }),
  });
  const seen = new Set<string>();
  let records = 0;
  for (;;) {
    const it = await c.fetch({ max_messages: o.fetchBatch ?? 256, expires: 1500 });
    let n = 0;
    let done = false;
    for await (const m of it) {
      n++;
      const id = m.headers?.get('Nats-Msg-Id') ?? `${m.seq}`;
      if (o.dedup === false || !seen.has(id)) {
        if (o.dedup !== false) seen.add(id);
        const text = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString('utf8');
        const lines = text.split('\n').filter((l) => l.length > 0);
        yield {
          host: m.headers?.get(H.host) ?? m.subject.split('.')[2] ?? '',
          seq: Number(m.headers?.get(H.seq) ?? 0),
          msgId: id,
          subject: m.subject,
          kind,
          t0: Number(m.headers?.get(H.t0) ?? 0),
          stored: new Date(Math.floor(m.info.timestampNanos / 1_000_000)),
          streamSeq: m.seq,
          records: lines,
        };
        records += lines.length;
      }
      if (m.info.pending === 0 || m.seq >= last || (o.limit !== undefined && records >= o.limit)) {
        done = true;
        break;
      }
    }
    if (done || n === 0) break;
  }
}
