/**
 * `vigil fleet`: the operator's side of many hosts on NATS JetStream (docs/fleet.md).
 *
 * Exit codes (docs/cli.md): 0 ok; 1 failed (not found, exists, a rule set with errors);
 * 2 usage errors; 3 the server cannot be reached; 4 a credentials file that is wrong.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { relative } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV, KvEntry } from '@nats-io/kv';
import { listRuleFiles } from '../../detection/index.js';
import { sha256File } from '../../enforcement/index.js';
import type { DenyValue, FleetLimits, HostStatus, RecordKind } from '../../fleet/index.js';
// the fleet module (NATS clients) is loaded when a fleet command runs, not at every CLI start
let F: typeof import('../../fleet/index.js');
import { parseDuration, parseSize } from '../../config/config.js';
import { parseTimeArg, safeText, truncate } from '../../util/text.js';
import { CliError } from '../errors.js';
import { arg, opt } from '../options.js';

const DEFAULT_URL = 'nats://127.0.0.1:4222';

interface ConnFlags {
  server: string;
  creds?: string;
  json?: boolean;
}

function out(s: string): void {
  process.stdout.write(`${s}\n`);
}
function note(s: string): void {
  process.stderr.write(`${s}\n`);
}

function conn(cmd: Command): Command {
  return cmd
    .addOption(opt('-s, --server <url>', 'NATS server(s), comma-separated (default $VIGIL_FLEET_URL or nats://127.0.0.1:4222)', 'url', { default: process.env.VIGIL_FLEET_URL ?? DEFAULT_URL }))
    .addOption(opt('--creds <file>', 'credentials file (default $VIGIL_FLEET_CREDS): a NATS .creds file, or YAML with token or user/password; mode 600', 'file', { default: process.env.VIGIL_FLEET_CREDS }));
}

async function withConn<T>(f: ConnFlags, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  let nc: NatsConnection;
  try {
    nc = await F.connectFleet({ url: f.server, creds: f.creds ?? null, name: 'vigil-cli', reconnect: false, timeoutMs: 5000 });
  } catch (e) {
    const msg = String((e as Error)?.message ?? e);
    if (/credentials file/.test(msg)) throw new CliError(msg, 4);
    if (/scheme|not a URL|no host|in a file/.test(msg)) throw new CliError(msg, 2);
    throw new CliError(`cannot connect to ${f.server}: ${msg}`, 3);
  }
  try {
    return await fn(nc);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

async function entries(kv: KV, filter?: string): Promise<KvEntry[]> {
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  const list = await Promise.all(keys.map((k) => kv.get(k)));
  return list.filter((e): e is KvEntry => !!e && e.operation === 'PUT').sort((a, b) => a.key.localeCompare(b.key));
}

async function bucketRevision(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}

/** Host statuses as the agents wrote them: data from the network, read defensively. */
interface HostRow {
  host: string;
  state: 'running' | 'stopped' | 'stale';
  last_seen: string;
  seen_ago_ms: number;
  status: Partial<HostStatus>;
}

async function hostRows(nc: NatsConnection): Promise<HostRow[]> {
  const kv = await F.hostsBucket(nc);
  const now = Date.now();
  return (await entries(kv)).map((e) => {
    let status: Partial<HostStatus> = {};
    try {
      const v = JSON.parse(e.string());
      if (v && typeof v === 'object' && !Array.isArray(v)) status = v;
    } catch {
      /* unreadable status: shown as such */
    }
    const ago = now - e.created.getTime();
    const hb = typeof status.heartbeat_ms === 'number' && status.heartbeat_ms > 0 ? status.heartbeat_ms : 10_000;
    const state = status.state === 'stopped' ? 'stopped' : ago > 3 * hb ? 'stale' : 'running';
    return { host: e.key, state, last_seen: e.created.toISOString(), seen_ago_ms: ago, status };
  });
}

function ago(ms: number): string {
  if (ms < 1000) return 'now';
  if (ms < 60_000) return `${Math.round(ms / 1000)}s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m ago`;
  if (ms < 86_400_000) return `${Math.round(ms / 3_600_000)}h ago`;
  return `${Math.round(ms / 86_400_000)}d ago`;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => safeText(typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return String(n);
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)}GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)}MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)}KiB`;
  return `${n}B`;
}

/** A deny rule is in force on a host once the host runs a policy revision at or past it and did not refuse it. */
function appliedOn(h: HostRow, key: string, rev: number): boolean {
  const p = h.status.policy;
  if (!p || num(p.revision) < rev) return false;
  return !(Array.isArray(p.rejected) && p.rejected.some((r) => r && r.key === key && num(r.revision) >= rev));
}

function describeDeny(id: string, v: DenyValue | null, rev: number, err?: string): string {
  if (!v) return `${id.padEnd(12)}  ${'-'.padEnd(7)}  INVALID (agents refuse it): ${safeText(err ?? '')}  rev ${rev}`;
  const what = v.sha256 ? `sha256:${v.sha256}${v.path ? ` (${safeText(v.path)})` : ''}` : safeText(v.path ?? '');
  return `${id.padEnd(12)}  ${v.mode.padEnd(7)}  ${what}  rev ${rev}${v.comment ? `  # ${safeText(v.comment)}` : ''}`;
}

function parseSince(v: string): number {
  try {
    return parseTimeArg(v);
  } catch (e) {
    throw new CliError(`--since: ${(e as Error).message}`, 2);
  }
}

function parseLimit(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new CliError(`--limit "${v}": a positive integer`, 2);
  return n;
}

function checkHost(h: string | undefined): void {
  if (h !== undefined && !F.isHostId(h)) throw new CliError(`--host "${h}": a host id (letters, digits, '_' and '-')`, 2);
}

async function readRecords(f: ConnFlags & { host?: string; since: string; limit: string }, kind: RecordKind, sub: string | undefined, print: (host: string, v: Record<string, unknown>) => void): Promise<{ records: number; bad: number }> {
  checkHost(f.host);
  if (sub !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(sub)) throw new CliError(`"${sub}": letters, digits, '_' and '-' only`, 2);
  const sinceMs = parseSince(f.since);
  const limit = parseLimit(f.limit);
  let records = 0;
  let bad = 0;
  await withConn(f, async (nc) => {
    for await (const b of F.readBatches(nc, kind, { ...(f.host ? { host: f.host } : {}), ...(sub ? { sub } : {}), sinceMs, limit })) {
      for (const line of b.records) {
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          bad++;
          continue;
        }
        if (!v || typeof v !== 'object' || Array.isArray(v)) {
          bad++;
          continue;
        }
        print(b.host, v as Record<string, unknown>);
        if (++records >= limit) return;
      }
    }
  });
  return { records, bad };
}

function limitsFrom(f: Record<string, string | undefined>): FleetLimits {
  const l: FleetLimits = { ...F.DEFAULT_LIMITS };
  const dur = (k: string, v: string | undefined, set: (ms: number) => void) => {
    if (v === undefined) return;
    const m = /^(\d+)d$/.exec(v.trim());
    try {
      set(m ? Number(m[1]) * 86_400_000 : parseDuration(v));
    } catch (e) {
      throw new CliError(`--${k}: ${(e as Error).message} (or Nd for days)`, 2);
    }
  };
  const size = (k: string, v: string | undefined, set: (n: number) => void) => {
    if (v === undefined) return;
    if (v === 'unlimited' || v === '-1') return set(-1);
    try {
      set(/^\d+$/.test(v) ? Number(v) : parseSize(v));
    } catch (e) {
      throw new CliError(`--${k}: ${(e as Error).message}`, 2);
    }
  };
  dur('events-max-age', f.eventsMaxAge, (v) => (l.eventsMaxAgeMs = v));
  dur('alerts-max-age', f.alertsMaxAge, (v) => (l.alertsMaxAgeMs = v));
  dur('duplicate-window', f.duplicateWindow, (v) => (l.duplicateWindowMs = v));
  size('events-max-bytes', f.eventsMaxBytes, (v) => (l.eventsMaxBytes = v));
  size('alerts-max-bytes', f.alertsMaxBytes, (v) => (l.alertsMaxBytes = v));
  size('max-msg-size', f.maxMsgSize, (v) => (l.maxMsgBytes = v));
  if (f.replicas !== undefined) {
    const r = Number(f.replicas);
    if (![1, 3, 5].includes(r)) throw new CliError('--replicas: 1, 3 or 5', 2);
    l.replicas = r;
  }
  return l;
}

export function register(program: Command): void {
  const fleet = program
    .command('fleet')
    .hook('preAction', async () => {
      F = await import('../../fleet/index.js');
    })
    .description('many hosts on NATS JetStream: hosts, alerts and events from all of them, deny rules and Sigma rules pushed to all of them')
    .addHelpText(
      'after',
      `
Agents join with \`vigil run --fleet nats://HOST:PORT --fleet-creds FILE\`; they publish
events and alerts (spooled on disk while the server is away) and apply the policy in
the vigil-policy bucket within seconds, keeping the last good policy for offline starts.

Connection: --server URL (or $VIGIL_FLEET_URL), --creds FILE (or $VIGIL_FLEET_CREDS).
Credentials are read from a file only (mode 600), never from the command line.

Examples:
  vigil fleet init --events-max-age 7d --alerts-max-age 90d   create or resize the streams
  vigil fleet hosts                              last seen, policy revision, enforcement, drops
  vigil fleet alerts --since 1h --host web-01
  vigil fleet events --since 10m --category process_creation --json
  vigil fleet deny add /usr/bin/nc --comment "no netcat"    every host, within seconds
  vigil fleet deny list                          with how many hosts have each rule in force
  vigil fleet deny rm 3f9a0c1e
  vigil fleet rules push ./rules                 lint, then replace the fleet's Sigma rule set

See docs/fleet.md (subjects, streams, sizing for 10,000 hosts).`,
    );

  conn(fleet.command('init').description('create the streams and buckets, or change their limits'))
    .addOption(opt('--events-max-age <age>', 'keep events this long (e.g. 7d, 12h)', 'age', { default: '7d' }))
    .addOption(opt('--events-max-bytes <size>', 'and at most this much (e.g. 500GiB; unlimited)', 'size', { default: 'unlimited' }))
    .addOption(opt('--alerts-max-age <age>', 'keep alerts this long', 'age', { default: '90d' }))
    .addOption(opt('--alerts-max-bytes <size>', 'and at most this much', 'size', { default: 'unlimited' }))
    .addOption(opt('--duplicate-window <duration>', 'a repeated message id within this window is dropped (e.g. 2m)', 'age', { default: '2m' }))
    .addOption(opt('--max-msg-size <size>', 'largest batch message accepted', 'size', { default: '1MiB' }))
    .addOption(opt('--replicas <n>', 'copies in a JetStream cluster: 1, 3 or 5', 'choice', { choices: ['1', '3', '5'], default: '1' }))
    .option('--json', 'print the stream configurations as JSON')
    .addHelpText('after', `\nExisting streams are updated to these limits (shrinking a limit discards the oldest data).\n`)
    .action(async (f: ConnFlags & Record<string, string | undefined>) => {
      const limits = limitsFrom(f);
      await withConn(f, async (nc) => {
        const r = await F.ensureStreams(nc, { limits, update: true });
        await F.policyBucket(nc, limits);
        await F.hostsBucket(nc, limits);
        if (f.json) {
          out(JSON.stringify({ created: r.created, updated: r.updated, streams: F.streamConfigs(limits) }));
          return;
        }
        for (const c of F.streamConfigs(limits)) {
          const age = Math.round(Number(c.max_age) / 86_400e9);
          out(`${c.name.padEnd(13)} ${String(c.subjects?.[0]).padEnd(16)} max age ${age}d, max bytes ${Number(c.max_bytes) < 0 ? 'unlimited' : bytes(Number(c.max_bytes))}, replicas ${c.num_replicas} (${r.created.includes(c.name) ? 'created' : 'updated'})`);
        }
        out('buckets vigil-policy, vigil-hosts ready');
      });
    });

  conn(fleet.command('hosts').description('every host: state, last seen, policy revision, enforcement level, counters and drops'))
    .option('--json', 'one JSON array: each host with the status it last wrote')
    .addHelpText(
      'after',
      `
Columns:
  STATE        running, stopped (said goodbye), stale (no heartbeat for 3 periods)
  POLICY       the vigil-policy revision the host runs; "current" when it has the latest,
               "N rejected" when it refused values (see --json for why)
  ENFORCE      enforce, detect-only (no BPF LSM here) or off
  DROPS        kernel / decode / sinks (records lost by each stage, since the agent started)
  SPOOL        batches waiting on the host's disk for the server`,
    )
    .action(async (f: ConnFlags) => {
      await withConn(f, async (nc) => {
        const rows = await hostRows(nc);
        const polRev = await bucketRevision(await F.policyBucket(nc));
        if (f.json) {
          out(JSON.stringify(rows.map((r) => ({ ...r, policy_current: num(r.status.policy?.revision) >= polRev }))));
          return;
        }
        if (!rows.length) {
          out('no hosts yet (agents appear here after their first heartbeat)');
          return;
        }
        out(`${'HOST'.padEnd(20)} ${'STATE'.padEnd(8)} ${'LAST SEEN'.padEnd(10)} ${'POLICY'.padEnd(22)} ${'ENFORCE'.padEnd(11)} ${'EVENTS'.padStart(8)} ${'ALERTS'.padStart(7)} ${'DROPS k/d/s'.padEnd(12)} SPOOL`);
        for (const r of rows) {
          const s = r.status;
          const p = s.policy;
          const rev = num(p?.revision);
          const rej = Array.isArray(p?.rejected) ? p!.rejected.length : 0;
          const pol = `rev ${rev} ${rev >= polRev ? 'current' : `behind`}${rej ? `, ${rej} rejected` : ''}`;
          const c = (s.counters ?? {}) as Record<string, unknown>;
          const d = (c.drops ?? {}) as Record<string, unknown>;
          const fl = s.fleet;
          out(
            `${truncate(safeText(r.host), 20).padEnd(20)} ${r.state.padEnd(8)} ${ago(r.seen_ago_ms).padEnd(10)} ${pol.padEnd(22)} ${truncate(str(s.enforcement), 11).padEnd(11)} ${human(num(c.events)).padStart(8)} ${human(num(c.alerts)).padStart(7)} ${`${num(d.kernel)}/${num(d.decode)}/${num(d.sinks)}`.padEnd(12)} ${fl ? `${num(fl.spool_backlog)} (${bytes(num(fl.spool_bytes))})${num(fl.spool_dropped) ? `, ${num(fl.spool_dropped)} dropped` : ''}` : '-'}`,
          );
        }
        note(`${rows.length} host(s); policy bucket at revision ${polRev}`);
      });
    });

  conn(fleet.command('alerts').description('alerts from every host (or one), oldest first'))
    .addOption(opt('--since <time>', 'from this time: 10m, 2h, 1d ago, or an RFC 3339 time', 'time', { default: '1h' }))
    .addOption(opt('--host <id>', 'only this host', 'host-id'))
    .addOption(opt('--level <level>', 'only this level', 'choice', { choices: ['informational', 'low', 'medium', 'high', 'critical'] }))
    .addOption(opt('-n, --limit <n>', 'stop after this many', 'count', { default: '1000' }))
    .option('--json', 'one JSON object per line: {"host", "alert"} with the alert as the agent wrote it')
    .addHelpText('after', `\nWithout --json, strings from the hosts are shown with control characters escaped (\\xNN).\n`)
    .action(async (f: ConnFlags & { since: string; host?: string; level?: string; limit: string }) => {
      const r = await readRecords(f, 'alert', f.level, (host, a) => {
        if (f.json) return out(JSON.stringify({ host, alert: a }));
        const ev = (a.event ?? {}) as Record<string, unknown>;
        out(`${str(a.timestamp ?? ev.UtcTime)}  ${safeText(host)}  [${str(a.level)}] ${truncate(str(a.rule_title), 60)} (${str(a.rule_id)})  ${truncate(str(ev.Image), 40)}  ${truncate(str(ev.CommandLine), 120)}`);
      });
      if (!f.json) note(`${r.records} alert(s)${r.bad ? `, ${r.bad} unreadable record(s) skipped` : ''}`);
    });

  conn(fleet.command('events').description('events from every host (or one), oldest first'))
    .addOption(opt('--since <time>', 'from this time: 10m, 2h, 1d ago, or an RFC 3339 time', 'time', { default: '10m' }))
    .addOption(opt('--host <id>', 'only this host', 'host-id'))
    .addOption(opt('--category <name>', 'only this category (process_creation, file_event, network_connection, ...)', 'id'))
    .addOption(opt('-n, --limit <n>', 'stop after this many', 'count', { default: '1000' }))
    .option('--json', 'one JSON object per line: {"host", "event"} with the event as the agent wrote it')
    .addHelpText('after', `\nWithout --json, strings from the hosts are shown with control characters escaped (\\xNN).\n`)
    .action(async (f: ConnFlags & { since: string; host?: string; category?: string; limit: string }) => {
      const r = await readRecords(f, 'event', f.category, (host, e) => {
        if (f.json) return out(JSON.stringify({ host, event: e }));
        out(`${str(e.UtcTime)}  ${safeText(host)}  ${str(e.category)}  pid=${str(e.ProcessId)}  ${truncate(str(e.Image), 40)}  ${truncate(str(e.CommandLine ?? e.TargetFilename ?? e.DestinationIp), 120)}`);
      });
      if (!f.json) note(`${r.records} event(s)${r.bad ? `, ${r.bad} unreadable record(s) skipped` : ''}`);
    });

  const deny = fleet
    .command('deny')
    .description('deny rules for every host (stored in the vigil-policy bucket, applied by each agent)')
    .addHelpText(
      'after',
      `
Each agent puts the fleet's rules into its own rule store (they show in \`vigil deny list\`
with the comment "[fleet ID]") and its exec guard enforces them; where BPF LSM is not
available the host reports detect-only (\`vigil fleet hosts\`). A rule a host cannot
apply (e.g. its path is a directory there) is reported as rejected by that host.

Examples:
  vigil fleet deny add /usr/bin/nc --comment "no netcat"
  vigil fleet deny add --sha256 3f5a...e1 --mode monitor
  vigil fleet deny add --hash-file ./miner      deny this content on every host (by sha256)
  vigil fleet deny list --json
  vigil fleet deny rm nc-ban`,
    );

  conn(deny.command('add').description('add a deny rule for every host'))
    .addArgument(arg('[path]', 'absolute path of the executable on the hosts', 'host-path'))
    .addOption(opt('--sha256 <hex>', 'deny by content: this digest', 'sha256'))
    .addOption(opt('--hash-file <file>', 'deny by content: the sha256 of this local file', 'file'))
    .addOption(opt('--mode <mode>', 'enforce (EPERM) or monitor (allow, report would_block)', 'choice', { choices: ['enforce', 'monitor'], default: 'enforce' }))
    .addOption(opt('--comment <text>', 'why', 'text'))
    .addOption(opt('--id <id>', 'rule id (letters, digits, _ and -); default: random', 'id'))
    .option('--replace', 'overwrite an existing rule with this id')
    .option('--json', 'print {"id", "revision", "rule"}')
    .action(async (path: string | undefined, f: ConnFlags & { sha256?: string; hashFile?: string; mode: string; comment?: string; id?: string; replace?: boolean }) => {
      if (f.sha256 && f.hashFile) throw new CliError('give --sha256 HEX or --hash-file FILE, not both', 2);
      let sha256 = f.sha256;
      if (f.hashFile) {
        try {
          sha256 = await sha256File(f.hashFile);
        } catch (e) {
          throw new CliError(`--hash-file: ${(e as Error).message}`, 2);
        }
      }
      if (!path && !sha256) throw new CliError('give a PATH (absolute, as on the hosts) or --sha256 HEX or --hash-file FILE', 2);
      if (path && !path.startsWith('/')) throw new CliError(`"${path}": an absolute path (it names the file on the hosts, not here)`, 2);
      const id = f.id ?? Math.random().toString(16).slice(2, 10).padEnd(8, '0');
      if (!F.isRuleId(id)) throw new CliError(`--id "${id}": letters, digits, '_' and '-' (at most 64)`, 2);
      const parsed = F.DenyValueSchema.safeParse({
        ...(path ? { path } : {}),
        ...(sha256 ? { sha256 } : {}),
        mode: f.mode,
        ...(f.comment ? { comment: f.comment } : {}),
        added_by: `${userInfo().username}@${hostname()}`,
        added_at: new Date().toISOString(),
      });
      if (!parsed.success) throw new CliError(parsed.error.issues.map((i) => `${i.path.length ? `--${String(i.path[0])}: ` : ''}${i.message}`).join('\n'), 2);
      await withConn(f, async (nc) => {
        const kv = await F.policyBucket(nc);
        const key = `${F.DENY_PREFIX}${id}`;
        let rev: number;
        try {
          rev = f.replace ? await kv.put(key, F.encodeDenyValue(parsed.data)) : await kv.create(key, F.encodeDenyValue(parsed.data));
        } catch (e) {
          if (/wrong last sequence|exists/i.test(String((e as Error).message))) throw new CliError(`rule ${id} exists (--replace to overwrite it)`, 1);
          throw e;
        }
        if (f.json) out(JSON.stringify({ id, revision: rev, rule: parsed.data }));
        else out(`added fleet deny rule ${id} (policy revision ${rev})\n${describeDeny(id, parsed.data, rev)}`);
        note('agents apply it within seconds: `vigil fleet deny list` shows on how many hosts it is in force');
      });
    });

  conn(deny.command('rm').description('remove a deny rule from every host'))
    .addArgument(arg('<id>', 'rule id (vigil fleet deny list)', 'id'))
    .action(async (id: string, f: ConnFlags) => {
      if (!F.isRuleId(id)) throw new CliError(`rule id "${id}": letters, digits, '_' and '-'`, 2);
      await withConn(f, async (nc) => {
        const kv = await F.policyBucket(nc);
        const key = `${F.DENY_PREFIX}${id}`;
        const e = await kv.get(key);
        if (!e || e.operation !== 'PUT') throw new CliError(`no fleet deny rule ${id}`, 1);
        await kv.delete(key);
        out(`removed fleet deny rule ${id} (policy revision ${await bucketRevision(kv)})`);
      });
    });

  conn(deny.command('list').description('the fleet deny rules, and on how many hosts each is in force'))
    .option('--json', '{"revision", "hosts", "rules": [{id, revision, rule | error, applied_on}]}')
    .action(async (f: ConnFlags) => {
      await withConn(f, async (nc) => {
        const kv = await F.policyBucket(nc);
        const list = await entries(kv, `${F.DENY_PREFIX}>`);
        const hosts = (await hostRows(nc)).filter((h) => h.state !== 'stopped');
        const rows = list.map((e) => {
          const id = e.key.slice(F.DENY_PREFIX.length);
          let rule: DenyValue | null = null;
          let error: string | undefined;
          try {
            rule = F.parseDenyValue(e.value);
          } catch (err) {
            error = (err as Error).message;
          }
          const applied = hosts.filter((h) => appliedOn(h, e.key, e.revision)).map((h) => h.host);
          return { id, revision: e.revision, rule, ...(error ? { error } : {}), applied_on: applied } as { id: string; revision: number; rule: DenyValue | null; error?: string; applied_on: string[] };
        });
        if (f.json) {
          out(JSON.stringify({ revision: await bucketRevision(kv), hosts: hosts.length, rules: rows }));
          return;
        }
        if (!rows.length) {
          out('no fleet deny rules');
          return;
        }
        out(`${'ID'.padEnd(12)}  ${'MODE'.padEnd(7)}  TARGET  REV  (IN FORCE ON)`);
        for (const r of rows) out(`${describeDeny(r.id, r.rule, r.revision, r.error)}  (${r.applied_on.length}/${hosts.length} hosts)`);
      });
    });

  const rules = fleet
    .command('rules')
    .description('the fleet\'s Sigma rule set (one set, replaced whole; agents hot-reload it)')
    .addHelpText(
      'after',
      `
Examples:
  vigil fleet rules push ./rules            lint, then replace the set on every host
  vigil fleet rules push ./rules --dry-run  lint and show what would be pushed
  vigil fleet rules list
  vigil fleet rules clear                   remove the fleet set (local --rules stay)`,
    );

  conn(rules.command('push').description('lint a directory of Sigma rules and make it the fleet\'s rule set; a set with errors is refused'))
    .addArgument(arg('<dir>', 'rule directory (searched recursively for *.yml / *.yaml)', 'dir'))
    .option('--dry-run', 'lint and report, push nothing')
    .option('--json', 'print {"revision", "files", "rules", "active", "bytes"} (or the errors)')
    .action(async (dir: string, f: ConnFlags & { dryRun?: boolean }) => {
      let paths: string[];
      try {
        paths = listRuleFiles(dir);
      } catch (e) {
        throw new CliError(`${dir}: ${(e as Error).message}`, 2);
      }
      if (!paths.length) throw new CliError(`${dir}: no *.yml / *.yaml files`, 1);
      const files: Record<string, string> = {};
      for (const p of paths) files[relative(dir, p) || p] = readFileSync(p, 'utf8');
      const shape = F.SigmaSetSchema.safeParse({ format: 1, files });
      if (!shape.success) throw new CliError(`refused: ${shape.error.issues.slice(0, 5).map((i) => `${i.path.slice(1).map(String).join('/')}: ${i.message}`).join('; ')}`, 1);
      const lint = F.lintSigmaSet(files);
      for (const e of [...lint.errors, ...lint.warnings]) note(`${e.path}${e.line ? `:${e.line}:${e.col}` : ''}: ${e.severity}: ${e.message}`);
      if (lint.errors.length) {
        if (f.json) out(JSON.stringify({ pushed: false, errors: lint.errors }));
        throw new CliError(`refused: ${lint.errors.length} error(s) in the rule set; nothing pushed (vigil rules lint ${dir})`, 1);
      }
      const payload = F.encodeSigmaSet({ format: 1, files, pushed_by: `${userInfo().username}@${hostname()}`, pushed_at: new Date().toISOString() });
      const summary = { files: paths.length, rules: lint.rules, active: lint.active, bytes: payload.length };
      if (f.dryRun) {
        if (f.json) out(JSON.stringify({ pushed: false, dry_run: true, ...summary }));
        else out(`would push ${summary.files} file(s), ${summary.rules} rule(s) (${summary.active} active), ${bytes(summary.bytes)} compressed`);
        return;
      }
      await withConn(f, async (nc) => {
        const max = nc.info?.max_payload ?? 1024 * 1024;
        if (payload.length > max) throw new CliError(`the compressed set is ${bytes(payload.length)}, more than the server's max_payload (${bytes(max)}): raise max_payload or push fewer rules`, 1);
        const kv = await F.policyBucket(nc);
        const rev = await kv.put(F.SIGMA_KEY, payload);
        if (f.json) out(JSON.stringify({ pushed: true, revision: rev, ...summary }));
        else out(`pushed ${summary.files} file(s), ${summary.rules} rule(s) (${summary.active} active) as policy revision ${rev}`);
      });
    });

  conn(rules.command('list').description('the fleet\'s current Sigma rule set'))
    .option('--json', '{"revision", "pushed_by", "pushed_at", "files": [...]}')
    .action(async (f: ConnFlags) => {
      await withConn(f, async (nc) => {
        const kv = await F.policyBucket(nc);
        const e = await kv.get(F.SIGMA_KEY);
        if (!e || e.operation !== 'PUT') {
          if (f.json) out(JSON.stringify(null));
          else out('no fleet Sigma rule set');
          return;
        }
        let set;
        try {
          set = F.decodeSigmaSet(e.value);
        } catch (err) {
          throw new CliError(`the set at revision ${e.revision} is invalid (agents refuse it): ${(err as Error).message}`, 1);
        }
        const names = Object.keys(set.files).sort();
        if (f.json) {
          out(JSON.stringify({ revision: e.revision, pushed_by: set.pushed_by ?? null, pushed_at: set.pushed_at ?? null, files: names }));
          return;
        }
        out(`revision ${e.revision}, pushed ${str(set.pushed_at)} by ${str(set.pushed_by)}: ${names.length} file(s)`);
        for (const n of names) out(`  ${safeText(n)}`);
      });
    });

  conn(rules.command('clear').description('remove the fleet\'s Sigma rule set from every host'))
    .action(async (f: ConnFlags) => {
      await withConn(f, async (nc) => {
        const kv = await F.policyBucket(nc);
        await kv.delete(F.SIGMA_KEY);
        out(`fleet Sigma rule set removed (policy revision ${await bucketRevision(kv)})`);
      });
    });
}
