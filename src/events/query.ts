/**
 * Reading the event store the way `vigil events` and the local API do: field
 * matches parsed from FIELD=VALUE / FIELD~GLOB, time bounds exact to the
 * nanosecond against each record's own timestamp. One copy for both.
 */
import type { EventStore, FieldMatch, StoreQuery, StoredRecord } from '../store/store.js';
import { timestampNs } from '../util/text.js';

/** FIELD=VALUE (exact) or FIELD~GLOB (case-insensitive, * and ?); null when it is neither. */
export function parseFieldMatch(arg: string): FieldMatch | null {
  const m = /^([A-Za-z_][\w.]*)(=|~)(.*)$/s.exec(arg);
  return m ? { field: m[1]!, op: m[2] as '=' | '~', value: m[3]! } : null;
}

const NS_PER_MS = 1_000_000n;

function floorMs(ns: bigint): number {
  const q = ns / NS_PER_MS;
  return Number(ns < 0n && q * NS_PER_MS !== ns ? q - 1n : q);
}

/** The exact time of a stored record in ns: its own timestamp (µs or finer), else the store's ms. */
export function recordNs(r: StoredRecord): bigint {
  try {
    const v = JSON.parse(r.json) as Record<string, unknown>;
    const ns = timestampNs(v.timestamp);
    if (ns !== undefined) return ns;
  } catch {
    /* the store's time then */
  }
  return BigInt(r.ts) * NS_PER_MS;
}

/**
 * A store query with nanosecond-exact time bounds. The store keeps each
 * record's time in ms (its timestamp rounded down), so records in the first
 * and last millisecond of the range are read and checked against their own
 * timestamps; the rest are inside by construction.
 */
export function queryExact(store: EventStore, q: StoreQuery, sinceNs?: bigint, untilNs?: bigint): StoredRecord[] {
  if (sinceNs === undefined && untilNs === undefined) return store.query(q);
  const limit = q.limit ?? 100;
  const sinceMs = sinceNs !== undefined ? floorMs(sinceNs) : undefined;
  const untilMs = untilNs !== undefined ? floorMs(untilNs) : undefined;
  const inside = (r: StoredRecord) => {
    const ns = recordNs(r);
    return (sinceNs === undefined || ns >= sinceNs) && (untilNs === undefined || ns <= untilNs);
  };
  const edges: StoredRecord[] = [];
  const EDGE_MAX = 1_000_000;
  if (sinceMs !== undefined) edges.push(...store.query({ ...q, since: sinceMs, until: sinceMs, limit: EDGE_MAX }).filter(inside));
  if (untilMs !== undefined && untilMs !== sinceMs) edges.push(...store.query({ ...q, since: untilMs, until: untilMs, limit: EDGE_MAX }).filter(inside));
  const middle: StoreQuery = { ...q, limit };
  delete middle.since;
  delete middle.until;
  if (sinceMs !== undefined) middle.since = sinceMs + 1;
  if (untilMs !== undefined) middle.until = untilMs - 1;
  const mid = middle.since !== undefined && middle.until !== undefined && middle.since > middle.until ? [] : store.query(middle);
  const dir = q.order === 'asc' ? 1 : -1;
  return [...edges, ...mid].sort((a, b) => dir * (a.id - b.id)).slice(0, limit);
}
