/**
 * /metrics: Prometheus text format through prom-client. Every value is read
 * when Prometheus scrapes (collect-on-scrape) from what the agent already
 * counts (Agent.stats(), the detector's sampled evaluation times); nothing is
 * incremented per event here. Alerts and exec guard decisions are counted as
 * they pass (they are rare), by rule and level, and by action.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentStats } from '../agent/agent.js';
import type { EvalTimes } from '../events/detector.js';

type Labels = Record<string, string>;
interface Sample {
  labels?: Labels;
  value: number;
  metricName?: string;
}

export interface MetricSources {
  stats(): AgentStats;
  evalTimes?: (() => EvalTimes | undefined) | undefined;
  /** live-stream messages a slow client did not take (the API's own loss) */
  streamDrops?: () => number;
}

/** A metric whose samples are computed at scrape time, formatted by prom-client's registry. */
function collected(reg: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', samples: () => Sample[]): void {
  reg.registerMetric({
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: samples() }),
  } as never);
}

/** Counts kept by the API as alerts and decisions pass (src/api/server.ts feeds them). */
export class PassCounts {
  readonly alerts = new Map<string, { rule_id: string; level: string; n: number }>();
  readonly decisions = new Map<string, number>();

  alert(a: Record<string, unknown>): void {
    const rule_id = String(a.rule_id ?? '');
    const level = String(a.level ?? '');
    const k = `${rule_id}\0${level}`;
    const e = this.alerts.get(k);
    if (e) e.n++;
    else this.alerts.set(k, { rule_id, level, n: 1 });
  }

  decision(ev: Record<string, unknown>): void {
    const action = String((ev.vigil as { action?: unknown } | undefined)?.action ?? 'unknown');
    this.decisions.set(action, (this.decisions.get(action) ?? 0) + 1);
  }
}

interface DeliveryLike {
  queueDepth?: number;
  queueBytes?: number;
  retries?: number;
  drops?: Record<string, number>;
}

export function createMetrics(src: MetricSources, counts: PassCounts): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix: 'vigil_node_' });
  // one stats() per scrape, shared by every metric below
  let cached: { at: number; s: AgentStats } | null = null;
  const stats = (): AgentStats => {
    const now = Date.now();
    if (!cached || now - cached.at > 50) cached = { at: now, s: src.stats() };
    return cached.s;
  };
  const sensors = () => Object.entries(stats().sensors);
  const sinks = () => Object.entries(stats().sinks);

  collected(reg, 'vigil_events_total', 'Events emitted, by category', 'counter', () => Object.entries(stats().byCategory).map(([category, value]) => ({ labels: { category }, value })));
  collected(reg, 'vigil_sensor_events_total', 'Events emitted, by sensor', 'counter', () => sensors().map(([sensor, s]) => ({ labels: { sensor }, value: s.events })));
  collected(reg, 'vigil_sensor_records_total', 'Records read from the ring buffer, by sensor', 'counter', () => sensors().map(([sensor, s]) => ({ labels: { sensor }, value: s.records })));
  collected(reg, 'vigil_drops_total', 'Records lost, by stage: kernel (ring buffer full), decode (malformed or failed record), sink (refused by a full or failing sink)', 'counter', () => [
    ...sensors().flatMap(([sensor, s]) => [
      { labels: { stage: 'kernel', source: sensor }, value: s.kernelDrops },
      { labels: { stage: 'decode', source: sensor }, value: s.badRecords },
    ]),
    ...sinks().map(([sink, s]) => ({ labels: { stage: 'sink', source: sink }, value: s.dropped })),
  ]);
  collected(reg, 'vigil_kernel_counter_total', "The BPF programs' own counters (vigil_stats), by sensor and name", 'counter', () =>
    sensors().flatMap(([sensor, s]) => Object.entries(s.kernel).map(([name, value]) => ({ labels: { sensor, name }, value }))),
  );
  collected(reg, 'vigil_ring_buffer_size_bytes', 'Ring buffer size, by sensor', 'gauge', () => sensors().flatMap(([sensor, s]) => (s.ring ? [{ labels: { sensor }, value: s.ring.size }] : [])));
  collected(reg, 'vigil_ring_buffer_unread_bytes', 'Bytes in the ring buffer not read yet (its fill), by sensor', 'gauge', () => sensors().flatMap(([sensor, s]) => (s.ring ? [{ labels: { sensor }, value: s.ring.pending }] : [])));
  collected(reg, 'vigil_ring_busy_waits_total', 'Drains of the process ring that met a record still being written and waited for it, by outcome (read, gave_up: read later, and an event of another ring may have named its process by the image it forked from)', 'counter', () =>
    sensors().flatMap(([sensor, s]) =>
      s.busyWaits === undefined ? [] : [
        { labels: { sensor, outcome: 'read' }, value: s.busyWaits - (s.busyTimeouts ?? 0) },
        { labels: { sensor, outcome: 'gave_up' }, value: s.busyTimeouts ?? 0 },
      ],
    ),
  );
  collected(reg, 'vigil_alerts_total', 'Alerts raised, by rule id and level', 'counter', () => [...counts.alerts.values()].map((a) => ({ labels: { rule_id: a.rule_id, level: a.level }, value: a.n })));
  collected(reg, 'vigil_exec_guard_decisions_total', 'Exec guard decisions, by action (exec_blocked, would_block)', 'counter', () => [...counts.decisions].map(([action, value]) => ({ labels: { action }, value })));
  collected(reg, 'vigil_process_table_entries', 'Process table entries, by state', 'gauge', () => {
    const p = stats().processTable;
    return [
      { labels: { state: 'live' }, value: p.live },
      { labels: { state: 'exited' }, value: p.exited },
    ];
  });
  collected(reg, 'vigil_process_table_evicted_total', 'Live process table entries evicted (table full)', 'counter', () => [{ value: stats().processTable.evicted }]);
  collected(reg, 'vigil_sink_written_total', 'Records a sink wrote (delivered), by sink', 'counter', () => sinks().map(([sink, s]) => ({ labels: { sink }, value: s.written })));
  collected(reg, 'vigil_sink_errors_total', 'Write or delivery errors, by sink', 'counter', () => sinks().map(([sink, s]) => ({ labels: { sink }, value: s.errors })));
  collected(reg, 'vigil_sink_pending', 'Records accepted and not yet durable or delivered (queue depth), by sink', 'gauge', () => sinks().map(([sink, s]) => ({ labels: { sink }, value: s.pending })));
  // network outputs (syslog, webhook) say more: their queue in bytes, resends, and drops by cause
  const delivery = () => sinks().flatMap(([sink, s]) => {
    const d = (s as { delivery?: DeliveryLike }).delivery;
    return d ? [[sink, d] as const] : [];
  });
  collected(reg, 'vigil_sink_queue_bytes', 'Bytes waiting in a network output queue, by sink', 'gauge', () => delivery().map(([sink, d]) => ({ labels: { sink }, value: d.queueBytes ?? 0 })));
  collected(reg, 'vigil_sink_retries_total', 'Delivery attempts repeated after a failure, by sink', 'counter', () => delivery().map(([sink, d]) => ({ labels: { sink }, value: d.retries ?? 0 })));
  collected(reg, 'vigil_sink_dropped_by_cause_total', 'Records a network output lost, by sink and cause (full, failed, shutdown)', 'counter', () =>
    delivery().flatMap(([sink, d]) => Object.entries(d.drops ?? {}).map(([cause, value]) => ({ labels: { sink, cause }, value }))),
  );
  collected(reg, 'vigil_rule_eval_seconds', 'Time to evaluate one event against the Sigma rules (sampled: one event in vigil_rule_eval_sample_every)', 'histogram', () => {
    const t = src.evalTimes?.();
    if (!t) return [];
    const out: Sample[] = [];
    let cum = 0;
    t.buckets.forEach((le, i) => {
      cum += t.counts[i] ?? 0;
      out.push({ metricName: 'vigil_rule_eval_seconds_bucket', labels: { le: String(le) }, value: cum });
    });
    cum += t.counts[t.buckets.length] ?? 0;
    out.push({ metricName: 'vigil_rule_eval_seconds_bucket', labels: { le: '+Inf' }, value: cum });
    out.push({ metricName: 'vigil_rule_eval_seconds_sum', value: t.sum });
    out.push({ metricName: 'vigil_rule_eval_seconds_count', value: t.count });
    return out;
  });
  collected(reg, 'vigil_rule_eval_sample_every', 'One rule evaluation in this many is timed for vigil_rule_eval_seconds', 'gauge', () => {
    const t = src.evalTimes?.();
    return t ? [{ value: t.sampleEvery }] : [];
  });
  collected(reg, 'vigil_api_stream_dropped_total', 'Live alert stream messages not sent to a client that did not read them (over 1 MiB unsent)', 'counter', () => [{ value: src.streamDrops?.() ?? 0 }]);
  collected(reg, 'vigil_uptime_seconds', 'Seconds since the sensors started', 'gauge', () => [{ value: stats().uptimeMs / 1000 }]);
  return reg;
}
