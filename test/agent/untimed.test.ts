/**
 * An event without a timestamp (issue 9): it used to reach the store with a
 * silent "now" (recordTime). The agent gives it its own clock, says so in
 * vigil.time_source and counts it in the stats (and the stats line).
 */
import { describe, expect, it } from 'vitest';
import { Agent, formatStatsLine } from '../../src/agent/agent.js';
import { sensorNames } from '../../src/sensors/index.js';
import type { Sink, SinkRecord, SinkStats } from '../../src/sinks/sink.js';
import { recordTime } from '../../src/store/store.js';

class Capture implements Sink {
  readonly name = 'capture';
  readonly got: SinkRecord[] = [];
  write(r: SinkRecord): boolean {
    this.got.push(r);
    return true;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  stats(): SinkStats {
    return { written: this.got.length, dropped: 0, errors: 0, pending: 0 };
  }
}

describe('events without a timestamp', () => {
  it('get the agent clock, flagged vigil.time_source "agent", counted in the stats; timed events are untouched', () => {
    const sink = new Capture();
    const agent = new Agent({ sinks: [sink], sensors: Object.fromEntries(sensorNames().map((n) => [n, { enabled: false }])) });
    const before = Date.now();
    agent.emit({ category: 'process_creation', ProcessId: 1, vigil: { comm: 'x' } });
    const timed = { category: 'process_creation', timestamp: '2026-11-29T10:00:00.123456Z', ProcessId: 2 };
    agent.emit({ ...timed });

    const [u, t] = sink.got;
    const uv = JSON.parse(u!.json) as { timestamp: string; vigil: Record<string, unknown> };
    expect(uv.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(uv.vigil).toEqual({ comm: 'x', time_source: 'agent' });
    // the store's time is the one the record says, not a second "now"
    const ts = recordTime('event', u!.value);
    expect(ts).toBe(Date.parse(uv.timestamp));
    expect(ts).toBeGreaterThanOrEqual(before - 1);
    expect(t!.json).toBe(JSON.stringify(timed));

    const st = agent.stats();
    expect(st.untimed).toBe(1);
    expect(formatStatsLine(st, null)).toContain('untimed=1');
  });
});
