/**
 * A sink receives serialized events (and alerts) from the pipeline. write()
 * must never block or grow without bound: when the sink cannot keep up it
 * refuses the record and counts it as a drop.
 */
import type { ProcessRef, StoreSplit } from '../store/store.js';
export interface SinkStats {
  written: number;
  dropped: number;
  errors: number;
  /** records accepted but not yet durable */
  pending: number;
  /**
   * Network outputs (src/sinks/delivery.ts): records accepted into the queue,
   * delivered, resend attempts, records waiting now, and `dropped` by cause
   * (queue full, given up after retries or refused by the peer, left at shutdown).
   * Absent for local sinks.
   */
  delivery?: DeliveryStats;
}

export interface DeliveryStats {
  queued: number;
  sent: number;
  retries: number;
  queueDepth: number;
  queueBytes: number;
  drops: { full: number; failed: number; shutdown: number };
}

/** A process table entry whose ProcessGuid is known. */
export type SinkProcess = ProcessRef & { readonly guid: string };

export interface SinkRecord {
  /** 'event' or 'alert' */
  kind: 'event' | 'alert';
  /** the object, for sinks that index fields */
  value: Record<string, unknown>;
  /** JSON text of value, serialized once for every sink */
  json: string;
  /** the process the event is about, when the pipeline knows it (sinks that keep processes apart: SQLite) */
  process?: SinkProcess | undefined;
  /** the entry of a process's parent (for its lineage), when the pipeline knows it */
  parentOf?: ((p: ProcessRef) => SinkProcess | undefined) | undefined;
  /**
   * the store row of the event, made by its builder with the JSON (src/store:
   * StoreSplit); parent bits in its mask assume the parent row is the entry
   * `process.parentKey`
   */
  stored?: StoreSplit | undefined;
}

export interface Sink {
  readonly name: string;
  /** false = dropped (counted in stats) */
  write(rec: SinkRecord): boolean;
  /** resolve when everything accepted so far is written */
  flush(): Promise<void>;
  close(): Promise<void>;
  stats(): SinkStats;
}
