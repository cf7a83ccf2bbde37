/**
 * Streaming evaluation of Sigma correlation rules (event_count, value_count, temporal,
 * temporal_ordered, value_sum, value_avg).
 *
 * State is kept per group (the group-by values) in a Map used as an LRU: at most
 * `maxGroups` groups per correlation, each holding only what its window needs. Entries
 * older than the timespan are dropped as events arrive and by a periodic sweep. When a
 * correlation fires, its group's state is reset so one burst yields one alert.
 */
import type { CorrelationInfo, SigmaEvent } from './types.js';
import type { ParsedCorrelation } from './parser.js';

export interface CorrelationLimits {
  /** groups kept per correlation (least recently updated are evicted first) */
  maxGroups: number;
  /** events/values kept per group */
  maxPerGroup: number;
}

export const DEFAULT_LIMITS: CorrelationLimits = { maxGroups: 10_000, maxPerGroup: 10_000 };

interface Group {
  key: string;
  values: Record<string, unknown>;
  last: number;
  /** event_count: timestamps; value_*: [ts, value] pairs */
  times: number[];
  vals: unknown[];
  /** temporal: rule index → last time seen; temporal_ordered: step → chain start time */
  seen: Map<number, number>;
  firstTs: number;
}

export class CorrelationState {
  readonly groups = new Map<string, Group>();
  private updates = 0;
  /** indices into `rules` by reference key (id or name) */
  readonly refIndex = new Map<string, number[]>();

  constructor(
    readonly def: ParsedCorrelation,
    /** the resolved rule ids of def.rules, same order */
    readonly ruleIds: string[],
    /** rule name (or id) → event field for each alias */
    private readonly aliasFields: Map<string, Record<string, string>>,
    private readonly limits: CorrelationLimits,
    private readonly getField: (ev: SigmaEvent, field: string) => unknown,
  ) {
    ruleIds.forEach((id, i) => {
      const a = this.refIndex.get(id) ?? [];
      a.push(i);
      this.refIndex.set(id, a);
    });
  }

  get size(): number {
    return this.groups.size;
  }

  private groupOf(ruleRefs: string[], ev: SigmaEvent): { key: string; values: Record<string, unknown> } {
    const values: Record<string, unknown> = {};
    const parts: string[] = [];
    for (const g of this.def.groupBy) {
      let field = g;
      const alias = this.def.aliases[g];
      if (alias) {
        for (const r of ruleRefs) {
          const f = alias[r] ?? this.aliasFields.get(r)?.[g];
          if (f) {
            field = f;
            break;
          }
        }
      }
      const v = this.getField(ev, field);
      values[g] = v ?? null;
      parts.push(typeof v === 'string' ? v : JSON.stringify(v ?? null));
    }
    return { key: parts.join('\u0000'), values };
  }

  private cond(n: number): boolean {
    const c = this.def.condition;
    if (c.gt !== undefined && !(n > c.gt)) return false;
    if (c.gte !== undefined && !(n >= c.gte)) return false;
    if (c.lt !== undefined && !(n < c.lt)) return false;
    if (c.lte !== undefined && !(n <= c.lte)) return false;
    if (c.eq !== undefined && n !== c.eq) return false;
    if (c.neq !== undefined && n === c.neq) return false;
    return true;
  }

  /**
   * Feed one match of a referenced rule. `refs` are the names/ids the matching rule is
   * known by. Returns the correlation info when the correlation fires.
   */
  feed(refs: string[], ev: SigmaEvent, ts: number): CorrelationInfo | null {
    const idxs: number[] = [];
    for (const r of refs) for (const i of this.refIndex.get(r) ?? []) if (!idxs.includes(i)) idxs.push(i);
    if (!idxs.length) return null;
    const span = this.def.timespanMs;
    const { key, values } = this.groupOf(refs, ev);
    let g = this.groups.get(key);
    if (g) {
      this.groups.delete(key); // LRU: re-insert at the end
      if (ts - g.last > span) {
        g.times.length = 0;
        g.vals.length = 0;
        g.seen.clear();
      }
    } else {
      g = { key, values, last: ts, times: [], vals: [], seen: new Map(), firstTs: ts };
      if (this.groups.size >= this.limits.maxGroups) {
        const oldest = this.groups.keys().next().value;
        if (oldest !== undefined) this.groups.delete(oldest);
      }
    }
    this.groups.set(key, g);
    g.last = ts;
    if (++this.updates % 1024 === 0) this.sweep(ts);
    const lo = ts - span;
    let count = 0;
    switch (this.def.type) {
      case 'event_count': {
        const t = g.times;
        t.push(ts);
        let drop = 0;
        while (drop < t.length && t[drop]! < lo) drop++;
        if (drop) t.splice(0, drop);
        if (t.length > this.limits.maxPerGroup) t.splice(0, t.length - this.limits.maxPerGroup);
        count = t.length;
        g.firstTs = t[0] ?? ts;
        break;
      }
      case 'value_count':
      case 'value_sum':
      case 'value_avg': {
        const field = this.def.condition.field!;
        const v = this.getField(ev, field);
        if (v === undefined || v === null) return null;
        g.times.push(ts);
        g.vals.push(v);
        let drop = 0;
        while (drop < g.times.length && g.times[drop]! < lo) drop++;
        if (drop) {
          g.times.splice(0, drop);
          g.vals.splice(0, drop);
        }
        if (g.times.length > this.limits.maxPerGroup) {
          const d = g.times.length - this.limits.maxPerGroup;
          g.times.splice(0, d);
          g.vals.splice(0, d);
        }
        g.firstTs = g.times[0] ?? ts;
        if (this.def.type === 'value_count') count = new Set(g.vals.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)))).size;
        else {
          let sum = 0;
          let k = 0;
          for (const x of g.vals) {
            const n = typeof x === 'number' ? x : Number(x);
            if (Number.isFinite(n)) {
              sum += n;
              k++;
            }
          }
          count = this.def.type === 'value_sum' ? sum : k ? sum / k : 0;
        }
        break;
      }
      case 'temporal': {
        for (const i of idxs) g.seen.set(i, ts);
        for (const [i, t] of g.seen) if (t < lo) g.seen.delete(i);
        count = g.seen.size;
        let first = ts;
        for (const t of g.seen.values()) first = Math.min(first, t);
        g.firstTs = first;
        const need = Object.keys(this.def.condition).length ? null : this.ruleIds.length;
        if (need !== null ? count >= need : this.cond(count)) return this.fire(g, count, ts);
        return null;
      }
      case 'temporal_ordered': {
        // seen: step → start time of the latest chain that completed steps 0..step in order
        const n = this.ruleIds.length;
        for (const i of [...idxs].sort((a, b) => b - a)) {
          if (i === 0) g.seen.set(0, ts);
          else {
            const prev = g.seen.get(i - 1);
            if (prev !== undefined && prev >= lo) {
              const cur = g.seen.get(i);
              if (cur === undefined || prev > cur) g.seen.set(i, prev);
            }
          }
        }
        const done = g.seen.get(n - 1);
        if (done !== undefined && done >= lo) {
          g.firstTs = done;
          return this.fire(g, n, ts);
        }
        return null;
      }
    }
    if (this.cond(count)) return this.fire(g, count, ts);
    return null;
  }

  private fire(g: Group, count: number, ts: number): CorrelationInfo {
    const info: CorrelationInfo = {
      type: this.def.type,
      group: { ...g.values },
      count,
      rules: [...this.ruleIds],
      first_timestamp: new Date(g.firstTs).toISOString(),
      last_timestamp: new Date(ts).toISOString(),
    };
    this.groups.delete(g.key);
    return info;
  }

  /** Drop groups idle for longer than the timespan. */
  sweep(now: number): void {
    const lo = now - this.def.timespanMs;
    for (const [k, g] of this.groups) {
      if (g.last >= lo) break; // LRU order: the rest are newer
      this.groups.delete(k);
    }
  }
}
