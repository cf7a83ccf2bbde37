/**
 * The fleet as one of the agent's sinks: write() hands the record to the
 * publisher's batches and returns (never waits for the disk or the network);
 * whatever cannot be taken is dropped and counted.
 */
import type { Sink, SinkRecord, SinkStats } from '../sinks/sink.js';
import { recordSubject } from './names.js';
import type { FleetPublisher } from './publisher.js';

export interface FleetSinkOptions {
  hostId: string;
  publisher: FleetPublisher;
  /** which records go out (default both) */
  kinds?: Array<SinkRecord['kind']>;
  /** on close, wait this long for the server to take what is spooled (the rest stays on disk) */
  closeGraceMs?: number;
  /** called once the publisher is drained or given up on, before the spool closes */
  onClose?: () => Promise<void>;
}

export class FleetSink implements Sink {
  readonly name = 'fleet';
  private readonly kinds: Set<string>;
  private closed = false;
  /** subjects by category / level (a handful of values; bounded anyway) */
  private readonly eventSubjects = new Map<string, string>();
  private readonly alertSubjects = new Map<string, string>();

  constructor(private readonly opts: FleetSinkOptions) {
    this.kinds = new Set(opts.kinds ?? ['event', 'alert']);
  }

  write(rec: SinkRecord): boolean {
    if (!this.kinds.has(rec.kind)) return true;
    const key = rec.kind === 'event' ? rec.value.category : rec.value.level;
    let subject = typeof key === 'string' ? (rec.kind === 'event' ? this.eventSubjects : this.alertSubjects).get(key) : undefined;
    if (subject === undefined) {
      subject = recordSubject(rec.kind, this.opts.hostId, rec.value);
      const cache = rec.kind === 'event' ? this.eventSubjects : this.alertSubjects;
      if (typeof key === 'string' && cache.size < 256) cache.set(key, subject);
    }
    return this.opts.publisher.add(rec.kind, subject, rec.json);
  }

  async flush(): Promise<void> {
    this.opts.publisher.sealAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opts.publisher.drain(this.opts.closeGraceMs ?? 3000);
    this.opts.publisher.close();
    await this.opts.onClose?.();
  }

  stats(): SinkStats {
    const p = this.opts.publisher.stats();
    return { written: p.published, dropped: p.dropped, errors: p.errors, pending: p.pending };
  }
}
