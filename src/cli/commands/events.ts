import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { EventStore, type FieldMatch, type StoreQuery, type StoredRecord } from '../../store/store.js';
import { parseFieldMatch, queryExact, recordNs } from '../../events/query.js';
import { parseTimeBound, safeText, truncate } from '../../util/text.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { DEFAULT_DB, resolveSettings } from '../../config/resolve.js';
import { SENSORS } from '../../sensors/index.js';
import { InputError, UsageError, VigilError, fromSqliteError, fromSystemError, shown } from '../errors.js';
import { opt, parseCount } from '../options.js';

interface EventsFlags {
  config?: string;
  db?: string;
  since?: bigint;
  until?: bigint;
  category?: string;
  field: FieldMatch[];
  alerts?: boolean;
  rule?: string;
  limit: number;
  json?: boolean;
  reverse?: boolean;
}

/** Every category a stored record can have: the sensors' and the exec guard's. */
export function knownCategories(): string[] {
  return [...new Set([...SENSORS.flatMap((s) => s.categories), 'exec_guard'])];
}

export function parseFieldArg(arg: string, subject = '--field'): FieldMatch {
  const m = parseFieldMatch(arg);
  if (!m) throw new UsageError(subject, `${shown(arg) || '""'}: expected FIELD=VALUE (exact) or FIELD~GLOB (case-insensitive, * and ?)`);
  return m;
}

function parseCategory(v: string, subject: string): string {
  const known = knownCategories();
  if (!known.includes(v)) throw new UsageError(subject, `${shown(v) || '""'}: not an event category (known: ${known.join(', ')})`);
  return v;
}

export { queryExact, recordNs };

export function register(program: Command): void {
  program
    .command('events')
    .description('query the SQLite event store (newest first)')
    .addOption(opt('-c, --config <file>', 'YAML config: its db is the store read (default $VIGIL_CONFIG, else /etc/vigil/vigil.yaml when it exists)', 'file'))
    .addOption(opt('--db <file>', `store to read (default: $VIGIL_DB, else the config's db, else ${DEFAULT_DB})`, 'database-in'))
    .addOption(opt('--since <time>', 'from this time: a duration ago (30s, 5m, 1h, 2d) or an RFC 3339 time', 'time', { parse: (v) => parseTimeBound(v) }))
    .addOption(opt('--until <time>', 'up to this time, inclusive (same forms as --since; exact to the nanosecond)', 'time', { parse: (v) => parseTimeBound(v) }))
    .addOption(opt('--category <name>', 'process_creation, process_termination, file_event, ... (one of the categories in docs/events.md)', 'name', { parse: parseCategory }))
    .addOption(opt('-f, --field <match>', 'FIELD=VALUE exact or FIELD~GLOB (repeatable; dotted paths like vigil.comm)', 'field-match', { parse: parseFieldArg, repeat: true, default: [] }))
    .option('--alerts', 'query alerts instead of events')
    .addOption(opt('--rule <id>', 'alerts of this rule id (implies --alerts)', 'name'))
    .addOption(opt('-n, --limit <n>', 'at most this many records', 'count', { parse: (v, s) => parseCount(s, v), default: 100 }))
    .option('--reverse', 'oldest first')
    .option('--json', 'one JSON object per line (the stored record, unchanged)')
    .addHelpText(
      'after',
      `
Times: a duration ago (30s, 5m, 1h, 2d) or an RFC 3339 time (2026-11-29T10:00:00Z,
2026-11-29T11:00:00.000001+01:00); anything else is refused. Bounds are exact to the
nanosecond against each record's own timestamp.

Examples:
  vigil events --since 10m --category process_creation
  vigil events -f Image~*/curl -f User=root --json
  vigil events -f CommandLine~*base64* --since 1d -n 20
  vigil events --alerts --since 1h --json | jq .rule_title

Without --json, strings are shown with control characters escaped (\\xNN).`,
    )
    .action((flags: EventsFlags) => {
      const { config, source } = resolveSettings({ configFlag: flags.config, flags: [{ key: 'db', value: flags.db, flag: '--db' }] }, AgentConfigSchema);
      const db = config.db;
      const from = source('db');
      const subject = from.startsWith('-') || from.startsWith('$') ? `${from} ${shown(db ?? '', 200)}` : `db ${shown(db ?? '', 200)} (${from})`;
      if (!db) throw new InputError('config.no_store', `db (${from})`, 'the store is off (db: null)', { hint: 'give --db FILE' });
      if (!existsSync(db)) throw new InputError('input.not_found', subject, 'no event store there', { hint: 'start `vigil run`, or give --db' });
      const q: StoreQuery = { kind: flags.alerts || flags.rule ? 'alert' : 'event', limit: flags.limit, order: flags.reverse ? 'asc' : 'desc' };
      if (flags.category) q.category = flags.category;
      if (flags.rule) q.ruleId = flags.rule;
      q.fields = flags.field;
      let store: EventStore | undefined;
      let rows: StoredRecord[];
      try {
        store = EventStore.open(db, { readonly: true });
        rows = queryExact(store, q, flags.since, flags.until);
      } catch (e) {
        store?.close();
        if (e instanceof VigilError) throw e;
        const err = e as NodeJS.ErrnoException;
        throw fromSqliteError(err as { code?: string; message: string }, subject) ?? fromSystemError(err, subject) ?? e;
      }
      try {
        if (flags.json) {
          for (const r of rows) process.stdout.write(r.json + '\n');
          return;
        }
        const width = process.stdout.columns ?? 160;
        for (const r of rows) {
          const v = JSON.parse(r.json) as Record<string, unknown>;
          const ev = ((q.kind === 'alert' ? v.event : v) ?? {}) as Record<string, unknown>;
          const head = q.kind === 'alert' ? `${safeText(String(v.level))} ${safeText(String(v.rule_title))} ` : '';
          const when = typeof v.timestamp === 'string' ? safeText(v.timestamp) : `${new Date(r.ts).toISOString()} (stored)`;
          const line = `${when} ${head}${safeText(String(ev.category))} pid=${safeText(String(ev.ProcessId))} ${safeText(String(ev.Image ?? ''))} ${safeText(String(ev.CommandLine ?? ''))}`;
          process.stdout.write(truncate(line, width) + '\n');
        }
        process.stderr.write(`${rows.length} ${q.kind}${rows.length === 1 ? '' : 's'}${rows.length === flags.limit ? ` (limit ${flags.limit}; use -n for more)` : ''}\n`);
      } finally {
        store.close();
      }
    });
}
