/**
 * A sink receives serialized events (and alerts) from the pipeline. write()
 * must never block or grow without bound: when the sink cannot keep up it
 * refuses the record and counts it as a drop.
 */
export interface SinkStats {
  written: number;
  dropped: number;
  errors: number;
  /** records accepted but not yet durable */
  pending: number;
}

export interface SinkRecord {
  /** 'event' or 'alert' */
  kind: 'event' | 'alert';
  /** the object, for sinks that index fields */
  value: Record<string, unknown>;
  /** JSON text of value, serialized once for every sink */
  json: string;
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
