import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { EventStore, type FieldMatch, type StoreQuery } from '../../store/store.js';
import { parseTimeArg, safeText, truncate } from '../../util/text.js';
import { CliError } from '../errors.js';

const DEFAULT_DB = '/var/lib/vigil/vigil.db';

interface EventsFlags {
  db: string;
  since?: string;
  until?: string;
  category?: string;
  field: string[];
  alerts?: boolean;
  rule?: string;
  limit: string;
  json?: boolean;
  reverse?: boolean;
}

export function parseFieldArg(arg: string): FieldMatch {
  const m = /^([A-Za-z_][\w.]*)(=|~)(.*)$/s.exec(arg);
  if (!m) throw new CliError(`--field "${arg}": expected FIELD=VALUE (exact) or FIELD~GLOB (case-insensitive, * and ?)`, 2);
  return { field: m[1]!, op: m[2] as '=' | '~', value: m[3]! };
}

export function register(program: Command): void {
  program
    .command('events')
    .description('query the SQLite event store (newest first)')
    .option('--db <file>', 'store to read', DEFAULT_DB)
    .option('--since <time>', 'from this time: 10m, 2h, 1d ago, or an ISO-8601 date')
    .option('--until <time>', 'up to this time (same forms as --since)')
    .option('--category <name>', 'process_creation, process_termination, ...')
    .option('-f, --field <match>', 'FIELD=VALUE exact or FIELD~GLOB (repeatable; dotted paths like vigil.comm)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--alerts', 'query alerts instead of events')
    .option('--rule <id>', 'alerts of this rule id (implies --alerts)')
    .option('-n, --limit <n>', 'at most this many records', '100')
    .option('--reverse', 'oldest first')
    .option('--json', 'one JSON object per line (the stored record, unchanged)')
    .addHelpText(
      'after',
      `
Examples:
  vigil events --since 10m --category process_creation
  vigil events -f Image~*/curl -f User=root --json
  vigil events -f CommandLine~*base64* --since 1d -n 20
  vigil events --alerts --since 1h --json | jq .rule_title

Without --json, strings are shown with control characters escaped (\\xNN).`,
    )
    .action((flags: EventsFlags) => {
      if (!existsSync(flags.db)) throw new CliError(`no event store at ${flags.db} (start \`vigil run\`, or pass --db)`, 1);
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit <= 0) throw new CliError(`--limit "${flags.limit}": a positive integer`, 2);
      const q: StoreQuery = { kind: flags.alerts || flags.rule ? 'alert' : 'event', limit, order: flags.reverse ? 'asc' : 'desc' };
      try {
        if (flags.since) q.since = parseTimeArg(flags.since);
        if (flags.until) q.until = parseTimeArg(flags.until);
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      if (flags.category) q.category = flags.category;
      if (flags.rule) q.ruleId = flags.rule;
      q.fields = flags.field.map(parseFieldArg);
      const store = EventStore.open(flags.db, { readonly: true });
      try {
        const rows = store.query(q);
        if (flags.json) {
          for (const r of rows) process.stdout.write(r.json + '\n');
          return;
        }
        const width = process.stdout.columns ?? 160;
        for (const r of rows) {
          const v = JSON.parse(r.json) as Record<string, unknown>;
          const ev = (q.kind === 'alert' ? v.event : v) as Record<string, unknown>;
          const head = q.kind === 'alert' ? `${String(v.level)} ${safeText(String(v.rule_title))} ` : '';
          const line = `${new Date(r.ts).toISOString()} ${head}${String(ev.category)} pid=${String(ev.ProcessId)} ${safeText(String(ev.Image ?? ''))} ${safeText(String(ev.CommandLine ?? ''))}`;
          process.stdout.write(truncate(line, width) + '\n');
        }
        process.stderr.write(`${rows.length} ${q.kind}${rows.length === 1 ? '' : 's'}${rows.length === limit ? ` (limit ${limit}; use -n for more)` : ''}\n`);
      } finally {
        store.close();
      }
    });
}
