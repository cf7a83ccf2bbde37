/**
 * What an output is (src/sinks/index.ts lists them): a config section
 * `outputs.<name>` validated by zod, and a factory for its Sink. The keys every
 * output shares — enabled, route, min_level, queue, retry, shutdown_timeout —
 * come from outputSection(); each output adds its own.
 *
 * Routing: `route: events` sends every event, `route: alerts` every alert whose
 * Sigma level is at least `min_level` (informational < low < medium < high <
 * critical; an alert with an unknown level counts as informational).
 */
import { z } from 'zod';
import { parseDuration, parseSize } from '../config/config.js';
import type { DeliveryOptions } from './delivery.js';
import type { Sink, SinkRecord, SinkStats } from './sink.js';

export const LEVELS = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export type Level = (typeof LEVELS)[number];

/** 0..4 for a Sigma level, 0 for anything else */
export function levelRank(level: unknown): number {
  const i = LEVELS.indexOf(level as Level);
  return i < 0 ? 0 : i;
}

const size = z.union([z.number().int().positive(), z.string().regex(/^\d+\s*(k|m|g)i?b?$/i, 'a size like 8MiB, 512k or a number of bytes')]);
const duration = z.union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)?$/, 'a duration like 500ms, 10s, 5m (bare numbers are seconds)')]);

/** The keys every output has, with its own keys added; absent = disabled with the defaults. */
export function outputSection<S extends z.ZodRawShape>(own: S, defaults: { batch_max_records: number; linger: string }) {
  return z
    .object({
      enabled: z.boolean().default(false),
      route: z.enum(['events', 'alerts']).default('alerts').describe('what this output receives: every event, or alerts'),
      min_level: z.enum(LEVELS).default('informational').describe('with route: alerts, only alerts of this Sigma level or above'),
      queue: z
        .object({
          max_records: z.number().int().min(1).default(10_000),
          max_bytes: size.default('16MiB'),
          batch_max_records: z.number().int().min(1).max(100_000).default(defaults.batch_max_records),
          batch_max_bytes: size.default('1MiB'),
          linger: duration.default(defaults.linger),
        })
        .strict()
        .prefault({}),
      retry: z
        .object({
          initial: duration.default('500ms'),
          max: duration.default('30s'),
          max_attempts: z.number().int().min(0).default(10),
        })
        .strict()
        .prefault({}),
      shutdown_timeout: duration.default('5s'),
      ...own,
    })
    .strict()
    .prefault({} as never);
}

export type OutputCommon = z.infer<ReturnType<typeof outputSection<{}>>>;

/** The queue settings of a section, parsed. */
export function deliveryOptions(c: OutputCommon): DeliveryOptions {
  return {
    maxRecords: c.queue.max_records,
    maxBytes: parseSize(c.queue.max_bytes),
    batchMaxRecords: c.queue.batch_max_records,
    batchMaxBytes: parseSize(c.queue.batch_max_bytes),
    lingerMs: parseDuration(c.queue.linger),
    backoff: { initialMs: parseDuration(c.retry.initial), maxMs: parseDuration(c.retry.max), maxAttempts: c.retry.max_attempts },
    shutdownMs: parseDuration(c.shutdown_timeout),
  };
}

export interface OutputContext {
  /** the host name put in records (syslog HOSTNAME, webhook body) */
  hostname: string;
  /** errors worth a log line (a peer refusing, a transport failing); the sink counts them anyway */
  onError?: (output: string, err: Error) => void;
}

export interface OutputPlugin<C extends OutputCommon = OutputCommon> {
  /** config key (outputs.<name>) and the first word of the sink's name in the stats line */
  readonly name: string;
  readonly title: string;
  readonly config: z.ZodType<C, unknown>;
  /** open it (may throw: a bad address, an unreadable secret file); records reach it already routed */
  create(config: C, ctx: OutputContext): Sink;
}

/** Passes a sink only the records its route selects; the others are not counted anywhere. */
export class RoutedSink implements Sink {
  readonly name: string;
  private readonly kind: SinkRecord['kind'];
  private readonly min: number;

  constructor(
    private readonly inner: Sink,
    route: { route: 'events' | 'alerts'; min_level: Level },
  ) {
    this.name = inner.name;
    this.kind = route.route === 'events' ? 'event' : 'alert';
    this.min = levelRank(route.min_level);
  }

  write(rec: SinkRecord): boolean {
    if (rec.kind !== this.kind) return true;
    if (this.min > 0 && levelRank(rec.value.level) < this.min) return true;
    return this.inner.write(rec);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  stats(): SinkStats {
    return this.inner.stats();
  }
}

/** Opening an output failed because of one of its keys (a secret file that cannot be read): names the key. */
export class OutputOpenError extends Error {
  constructor(
    /** the key inside the output's section, e.g. "secret_file" */
    readonly key: string,
    override readonly cause: unknown,
  ) {
    super(`${key}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'OutputOpenError';
  }
}

/** Run `f`; an exception becomes an OutputOpenError naming `key`. */
export function atKey<T>(key: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new OutputOpenError(key, e);
  }
}
