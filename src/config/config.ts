/**
 * vigil's configuration: a YAML file validated with zod. Errors name the key
 * path and the file:line:col of the offending value. Command-line flags
 * override file values (see src/cli/commands/run.ts).
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';

/** The SQLite store (events, alerts, deny rules) when nothing else is said: written here only. */
export const DEFAULT_DB = '/var/lib/vigil/vigil.db';

const size = z.union([z.number().int().positive(), z.string().regex(/^\d+\s*(k|m|g)i?b?$/i, 'a size like 8MiB, 512k or a number of bytes')]);
const duration = z.union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)?$/, 'a duration like 500ms, 10s, 5m (bare numbers are seconds)')]);

/** Without knowledge of the outputs (config/ sits below sinks/): their sections as written. */
const OUTPUTS_AS_WRITTEN = z.record(z.string(), z.record(z.string(), z.unknown())).default({});

/**
 * The config schema with a given `sensors:` section. config/ sits below the
 * sensors, so the sections come from the sensor registry through
 * src/agent/config.ts (AgentConfigSchema), which every command uses.
 */
export function makeConfigSchema<S extends z.ZodType, O extends z.ZodType = typeof OUTPUTS_AS_WRITTEN>(sensors: S, outputs: O = OUTPUTS_AS_WRITTEN as unknown as O) {
  return z
  .object({
    /** per-sensor sections (sensors.<name>: enabled and the sensor's own keys) */
    sensors,
    /** network outputs (outputs.<name>: syslog, webhook; src/sinks/index.ts, docs/outputs.md) */
    outputs,
    /** JSONL audit log of every event; null/absent = none */
    events_out: z.string().min(1).nullable().default(null),
    audit_log: z
      .object({
        max_bytes: size.default('100MiB'),
        keep: z.number().int().min(0).max(1000).default(5),
        /** hash chain and forward-secure seals over the JSONL logs (docs/audit.md) */
        chain: z
          .object({
            enabled: z.boolean().default(false),
            seal_every: z.number().int().min(0).default(10_000),
            seal_interval: duration.default('10s'),
            key_dir: z.string().min(1).nullable().default(null),
            /** block: one SHA-256 per block and a seal line (format 2); line: a link on every line (format 1) */
            format: z.enum(['block', 'line']).default('block'),
            /** format block: where the block digest runs: inline (the agent's thread) or thread (a worker reading the bytes back) */
            hasher: z.enum(['inline', 'thread']).default('inline'),
          })
          .strict()
          .refine((c) => c.seal_every > 0 || parseDuration(c.seal_interval) > 0, 'seal_every and seal_interval cannot both be 0 (nothing would ever be sealed)')
          .default({ enabled: false, seal_every: 10_000, seal_interval: '10s', key_dir: null, format: 'block', hasher: 'inline' }),
      })
      .strict()
      .default({ max_bytes: '100MiB', keep: 5, chain: { enabled: false, seal_every: 10_000, seal_interval: '10s', key_dir: null, format: 'block', hasher: 'inline' } }),
    /** SQLite store; null = disabled */
    db: z.string().min(1).nullable().default(DEFAULT_DB),
    /** who may read the records vigil writes (src/store/files.ts): the owner only, or also this group (0640/0750) */
    files: z
      .object({ group: z.string().min(1).max(256).regex(/^[^\s:/]+$/, 'a group name or a numeric gid').nullable().default(null) })
      .strict()
      .default({ group: null }),
    store: z
      .object({
        max_rows: z.number().int().min(0).default(1_000_000),
        /** the trigram index of field matches (records_text): fast searches, ~4x slower writes (docs/events.md) */
        text_index: z.boolean().default(true),
      })
      .strict()
      .default({ max_rows: 1_000_000, text_index: true }),
    ring_buffer: size.default('16MiB'),
    /** how the kernel wakes the agent (docs/config.md): batch under load, bounded latency when quiet */
    ring_buffer_wakeup: z
      .object({
        bytes: z.union([z.literal(0), size]).default('1MiB'),
        max_latency: duration.default('50ms'),
      })
      .strict()
      .default({ bytes: '1MiB', max_latency: '50ms' }),
    events: z
      .object({
        ancestors: z
          .object({
            max_depth: z.number().int().min(0).max(256).default(2),
            max_command_line: z.number().int().min(0).default(32),
          })
          .strict()
          .default({ max_depth: 2, max_command_line: 32 }),
      })
      .strict()
      .default({ ancestors: { max_depth: 2, max_command_line: 32 } }),
    process_table: z
      .object({
        max_entries: z.number().int().min(64).default(32768),
        max_exited: z.number().int().min(0).default(2048),
        max_depth: z.number().int().min(1).max(256).default(16),
      })
      .strict()
      .default({ max_entries: 32768, max_exited: 2048, max_depth: 16 }),
    sinks: z
      .object({
        max_pending_bytes: size.default('64MiB'),
        sqlite_max_pending: z.number().int().min(1).default(100_000),
      })
      .strict()
      .default({ max_pending_bytes: '64MiB', sqlite_max_pending: 100_000 }),
    stats_interval: duration.default('10s'),
    /** the exec guard's backend and the fanotify backend's answering (docs/enforcement.md) */
    enforcement: z
      .object({
        backend: z.enum(['auto', 'lsm', 'fanotify', 'detect-only']).default('auto'),
        deadline: duration.default('250ms'),
        fail_mode: z.enum(['open', 'closed']).default('open'),
        loader_guard: z.boolean().default(true),
        /** executables whose reads the LSM guard checks (file_open: `sh SCRIPT`); null: the built-in list */
        interpreters: z.array(z.string().min(1).refine((p) => p.startsWith('/'), 'an absolute path')).max(64).nullable().default(null),
        fanotify_mounts: z.array(z.string().min(1)).nullable().default(null),
      })
      .strict()
      .default({ backend: 'auto', deadline: '250ms', fail_mode: 'open', loader_guard: true, interpreters: null, fanotify_mounts: null }),
    /** file provenance, "mark of the web" (docs/provenance.md) */
    provenance: z
      .object({
        mode: z.enum(['off', 'monitor', 'soak', 'enforce']).default('off'),
        loopback: z.boolean().default(false),
        max_depth: z.number().int().min(0).max(64).default(4),
        /** soak: the dimensions learned rules are made in (one rule per dimension, exact value) */
        soak_dimensions: z.array(z.enum(['path', 'landing', 'exe', 'comm', 'uid', 'exec_uid', 'remote', 'remote_host'])).min(1).default(['path']),
      })
      .strict()
      .default({ mode: 'off', loopback: false, max_depth: 4, soak_dimensions: ['path'] }),
    /** Sigma rule directories */
    rules: z.array(z.string().min(1)).default([]),
    alerts_out: z.string().min(1).nullable().default(null),
    /** the local API and web console (docs/api.md); off while listen is null */
    api: z
      .object({
        listen: z.string().min(1).nullable().default(null),
        token_file: z.string().min(1).nullable().default(null),
        allow_remote: z.boolean().default(false),
        metrics_auth: z.boolean().default(true),
      })
      .strict()
      .default({ listen: null, token_file: null, allow_remote: false, metrics_auth: true }),
    field_mapping: z.string().min(1).nullable().default(null),
    /** NATS JetStream fleet (docs/fleet.md); off while url is null */
    fleet: z
      .object({
        url: z.string().min(1).nullable().default(null),
        creds: z.string().min(1).nullable().default(null),
        host_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '_' and '-' (at most 64)").nullable().default(null),
        state_dir: z.string().min(1).default('/var/lib/vigil/fleet'),
        spool_max_bytes: size.default('1GiB'),
        spool_write_delay: duration.default('500ms'),
        heartbeat: duration.default('10s'),
        batch_max_events: z.number().int().min(1).max(100_000).default(1000),
        batch_linger: duration.default('200ms'),
        publish: z.array(z.enum(['events', 'alerts'])).default(['events', 'alerts']),
      })
      .strict()
      .default({ url: null, creds: null, host_id: null, state_dir: '/var/lib/vigil/fleet', spool_max_bytes: '1GiB', spool_write_delay: '500ms', heartbeat: '10s', batch_max_events: 1000, batch_linger: '200ms', publish: ['events', 'alerts'] }),
  })
  .strict();
}

/** Without knowledge of the sensors: their sections are kept as written. */
export const ConfigSchema = makeConfigSchema(z.record(z.string(), z.record(z.string(), z.unknown())).default({}));

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: ConfigIssue[],
    /** stable error code (docs/cli.md): config.invalid, config.not_found, config.unreadable */
    readonly code: string = 'config.invalid',
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ConfigIssue {
  path: string;
  message: string;
  line?: number;
  col?: number;
}

/** Parse and validate YAML text; `file` is only used in messages. */
export function parseConfig<T = Config>(text: string, file = '<config>', schema: z.ZodType<T, unknown> = ConfigSchema as never, onRaw?: (raw: unknown) => void): T {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const issues = doc.errors.map((e) => {
      const pos = lc.linePos(e.pos[0]);
      return { path: '', message: e.message.split('\n')[0]!, line: pos.line, col: pos.col };
    });
    throw new ConfigError(formatIssues(file, issues), issues);
  }
  const data = doc.toJS() ?? {};
  onRaw?.(data);
  const res = schema.safeParse(data);
  if (res.success) return res.data;
  const issues: ConfigIssue[] = res.error.issues.map((iss) => {
    const path = iss.path.map(String);
    // unknown keys: point at the key itself
    const keys = iss.code === 'unrecognized_keys' ? (iss as { keys: string[] }).keys : [];
    const target = keys.length ? [...path, keys[0]!] : path;
    let node = doc.getIn(target, true);
    if (keys.length) {
      const parent = path.length ? doc.getIn(path, true) : doc.contents;
      const pair = (parent as { items?: Array<{ key: unknown }> } | null)?.items?.find((p) => String((p.key as { value?: unknown })?.value) === keys[0]);
      node = pair?.key ?? node;
    }
    const range = isNode(node) ? node.range : undefined;
    const pos = range ? lc.linePos(range[0]) : undefined;
    const name = target.join('.') || '(top level)';
    const message = keys.length ? `unknown key ${keys.map((k) => `"${k}"`).join(', ')}` : iss.message;
    return { path: name, message, ...(pos ? { line: pos.line, col: pos.col } : {}) };
  });
  throw new ConfigError(formatIssues(file, issues), issues);
}

function formatIssues(file: string, issues: ConfigIssue[]): string {
  return issues
    .map((i) => `${file}${i.line ? `:${i.line}:${i.col}` : ''}: ${i.path ? `${i.path}: ` : ''}${i.message}`)
    .join('\n');
}

export function loadConfig<T = Config>(path: string | undefined, schema: z.ZodType<T, unknown> = ConfigSchema as never, onRaw?: (raw: unknown) => void): T {
  if (!path) return schema.parse({});
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a config file' : (e as Error).message;
    throw new ConfigError(`${path}: cannot read the config file: ${why}`, [], code === 'ENOENT' ? 'config.not_found' : 'config.unreadable');
  }
  return parseConfig(text, path, schema, onRaw);
}

/** "8MiB" → bytes */
export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)\s*(k|m|g)i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`bad size ${v}`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

/** "10s" → ms; bare numbers are seconds */
export function parseDuration(v: number | string): number {
  if (typeof v === 'number') return v * 1000;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new Error(`bad duration "${v}" (use 500ms, 10s, 5m; bare numbers are seconds)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}
