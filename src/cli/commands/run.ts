import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import pino from 'pino';
import { Agent, formatStatsLine, type AgentStats, type Detector } from '../../agent/agent.js';
import { parseDuration, parseSize } from '../../config/config.js';
import { AgentConfigSchema, loadAgentConfig, type AgentConfig as Config } from '../../agent/config.js';
import { SENSORS, sensorNames } from '../../sensors/index.js';
import { JsonlSink } from '../../sinks/jsonl.js';
import { SqliteSink } from '../../sinks/sqlite.js';
import type { Sink } from '../../sinks/sink.js';
import { BpfError } from '../../kernel/errors.js';
import { onLibbpfLog } from '../../kernel/log.js';
import { ensureMounts } from '../../kernel/mounts.js';
import { createRunDetector } from '../../detection/live.js';
import { CliError } from '../errors.js';
import { ExecGuardService } from '../../enforcement/index.js';
import { createFleetAgent } from '../../fleet/index.js';
import { BootClock } from '../../kernel/clock.js';
import type { Logger } from 'pino';

const DEFAULT_DB = '/var/lib/vigil/vigil.db';
let libbpfQuiet = false;

/**
 * Arm or adopt the exec guard; where BPF LSM is unavailable say so and go on
 * detect-only. Blocked and would-block decisions flow through the agent's sinks.
 */
function startGuard(agent: Agent, cfg: Config, log: Logger): ExecGuardService | null {
  const clock = new BootClock();
  const svc = new ExecGuardService({
    db: cfg.db ?? DEFAULT_DB,
    onEvent: (ev) => agent.emit(ev as unknown as Record<string, unknown>),
    ancestors: (pid) => agent.table.ancestors(pid).map((a) => ({ pid: a.ProcessId, comm: '', image: a.Image, commandLine: a.CommandLine })),
    toEpochMs: (ns) => Number(clock.wallNs(ns) / 1_000_000n),
    process: agent.process,
    onError: (e) => log.error({ err: e }, 'exec guard error'),
    onBadRecord: (e) => log.warn({ offset: e.offset }, `bad exec guard record skipped: ${e.message}`),
  });
  try {
    // an expected refusal is reported once below; libbpf's own lines go to debug
    libbpfQuiet = true;
    const r = svc.start();
    log.info({ enforcement: 'enforce', adopted: r.adopted, hash_rules: r.hashProgram }, `enforcement: exec guard ${r.adopted ? 'adopted from bpffs' : 'armed'} (BPF LSM)`);
    return svc;
  } catch (e) {
    const reason = e instanceof BpfError ? `${e.message}` : String((e as Error).message ?? e);
    log.warn({ enforcement: 'detect-only', reason }, `enforcement: DETECT-ONLY — the exec guard cannot load here (${reason}); events and alerts only, nothing is blocked (see vigil doctor)`);
    try {
      svc.stop();
    } catch {
      /* nothing to stop */
    }
    return null;
  } finally {
    libbpfQuiet = false;
  }
}

interface RunFlags {
  config?: string;
  eventsOut?: string;
  alertsOut?: string;
  /** string path, or false from --no-db */
  db?: string | boolean;
  rules?: string[];
  statsInterval?: string;
  cpuProfile?: string;
  stdout?: boolean;
  logLevel?: string;
  /** false from --no-enforce */
  enforce?: boolean;
  sensors?: string;
  fleet?: string;
  fleetCreds?: string;
  fleetHost?: string;
}

export function register(program: Command): void {
  program
    .command('run')
    .description('start the sensors and record events (and alerts) until SIGINT/SIGTERM')
    .option('-c, --config <file>', 'YAML config (see docs/config.md); flags override it')
    .option('-o, --events-out <file.jsonl>', 'append every event to this JSONL audit log (rotated by size)')
    .option('--alerts-out <file.jsonl>', 'append every alert to this JSONL file')
    .option('--db <file>', 'SQLite event store (default /var/lib/vigil/vigil.db)')
    .option('--no-db', 'do not write the SQLite store')
    .option('-r, --rules <dir...>', 'Sigma rule directories (watched and hot-reloaded)')
    .option('--stats-interval <duration>', 'period of the stats line on stderr, e.g. 10s (0 = off)')
    .option('-s, --sensors <list>', `comma-separated sensors to run, the others off (${sensorNames().join(',')}); default: as the config says`)
    .option('--stdout', 'also print every event as JSON on stdout')
    .option('--no-enforce', 'do not arm or adopt the exec guard (BPF LSM deny rules, see `vigil deny`)')
    .option('--fleet <url>', 'publish events and alerts to NATS JetStream and take policy from it (nats://HOST:PORT; docs/fleet.md)')
    .option('--fleet-creds <file>', 'NATS credentials file (.creds, or token / user+password; mode 600)')
    .option('--fleet-host <id>', 'this host\'s id in the fleet (default: the host name, [A-Za-z0-9_-])')
    .option('--log-level <level>', 'fatal|error|warn|info|debug', 'info')
    .option('--cpu-profile <file.cpuprofile>', 'write a V8 CPU profile of the run to this file (started once the BPF programs are loaded: a signal-based profiler running during the load makes the verifier fail)')
    .addHelpText(
      'after',
      `
Sensors (each on or off in the config, sensors.<name>.enabled, or with --sensors):
${SENSORS.map((p) => `  ${p.name.padEnd(8)} ${p.title} [${p.categories.join(', ')}]`).join('\n')}

Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN). Events use Sysmon-for-Linux field
names (docs/events.md). Losses are counted at every stage and shown in the stats line:
  kernel = ring buffer full in the kernel, decode = malformed records,
  <sink> = records a slow sink refused (never an unbounded queue).

Examples:
  vigil run --events-out /var/log/vigil/events.jsonl
  vigil run --no-db --events-out ev.jsonl --stats-interval 2s
  vigil run --sensors exec,file,network --stdout
  vigil run --rules /etc/vigil/rules --alerts-out /var/log/vigil/alerts.jsonl
  vigil run -c /etc/vigil/vigil.yaml
  vigil run --fleet nats://10.0.0.5:4222 --fleet-creds /etc/vigil/fleet.creds`,
    )
    .action(async (flags: RunFlags) => {
      await runAgent(flags);
    });
}

/** Config file, then flags on top; flags are validated by the same schema. */
export function resolveConfig(flags: RunFlags): Config {
  const cfg = loadAgentConfig(flags.config);
  const over: Record<string, unknown> = {};
  if (flags.sensors !== undefined) {
    const want = flags.sensors.split(',').map((x) => x.trim()).filter(Boolean);
    const known = sensorNames();
    const bad = want.filter((w) => !known.includes(w));
    if (bad.length || !want.length) {
      throw new CliError(`--sensors: ${bad.length ? `unknown sensor ${bad.map((b) => `"${b}"`).join(', ')}` : 'empty list'} (known: ${known.join(', ')})`, 2);
    }
    const sections = { ...(cfg.sensors as Record<string, Record<string, unknown>>) };
    for (const k of known) sections[k] = { ...sections[k], enabled: want.includes(k) };
    over.sensors = sections;
  }
  if (flags.eventsOut) over.events_out = flags.eventsOut;
  if (flags.alertsOut) over.alerts_out = flags.alertsOut;
  if (flags.db === false) over.db = null;
  else if (typeof flags.db === 'string') over.db = flags.db;
  if (flags.rules?.length) over.rules = flags.rules;
  if (flags.statsInterval) over.stats_interval = flags.statsInterval;
  if (flags.fleet || flags.fleetCreds || flags.fleetHost) {
    over.fleet = { ...cfg.fleet, ...(flags.fleet ? { url: flags.fleet } : {}), ...(flags.fleetCreds ? { creds: flags.fleetCreds } : {}), ...(flags.fleetHost ? { host_id: flags.fleetHost } : {}) };
  }
  const res = AgentConfigSchema.safeParse({ ...cfg, ...over });
  if (!res.success) {
    const flag = (k: string) => `--${k.replace(/_/g, '-')}`;
    throw new CliError(res.error.issues.map((i) => `${flag(String(i.path[0]))}: ${i.message}`).join('\n'), 2);
  }
  return res.data;
}

/** A V8 CPU profile of this process from now on (node:inspector, no signals before the BPF load). */
async function startProfile(): Promise<{ stop(): Promise<unknown> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}

async function runAgent(flags: RunFlags): Promise<void> {
  const log = pino({ level: flags.logLevel ?? 'info', base: { app: 'vigil' } }, pino.destination({ dest: 2, sync: true }));
  const cfg = resolveConfig(flags);
  ensureMounts();
  onLibbpfLog((level, line) => {
    if (level === 'warn' && !libbpfQuiet) log.warn({ libbpf: true }, line.trimEnd());
    else log.debug({ libbpf: true }, line.trimEnd());
  });

  const sinks: Sink[] = [];
  const maxPending = parseSize(cfg.sinks.max_pending_bytes);
  if (cfg.events_out) {
    sinks.push(new JsonlSink({ path: cfg.events_out, maxBytes: parseSize(cfg.audit_log.max_bytes), keep: cfg.audit_log.keep, maxPendingBytes: maxPending, kinds: ['event'] }));
  }
  if (cfg.alerts_out) {
    sinks.push(new JsonlSink({ path: cfg.alerts_out, name: `alerts:${cfg.alerts_out}`, maxBytes: parseSize(cfg.audit_log.max_bytes), keep: cfg.audit_log.keep, maxPendingBytes: maxPending, kinds: ['alert'] }));
  }
  if (cfg.db) sinks.push(new SqliteSink({ path: cfg.db, maxPending: cfg.sinks.sqlite_max_pending, maxRows: cfg.store.max_rows }));

  let fleet;
  try {
    fleet = createFleetAgent(cfg.fleet, { rulesDb: cfg.db ?? DEFAULT_DB, log });
  } catch (e) {
    throw new CliError(`--fleet: ${(e as Error).message}`, 2);
  }
  if (fleet) sinks.push(fleet.sink);
  const ruleDirs = fleet ? [...cfg.rules, fleet.sigmaDir] : cfg.rules;

  let detector: Detector | null = null;
  if (ruleDirs.length) {
    detector = await createRunDetector({ ruleDirs, fieldMapping: cfg.field_mapping, log });
  }

  const interactive = process.stdout.isTTY;
  const agent = new Agent({
    sinks,
    detector,
    ringBufferBytes: parseSize(cfg.ring_buffer),
    sensors: cfg.sensors as Record<string, { enabled: boolean }>,
    processTable: { maxEntries: cfg.process_table.max_entries, maxExited: cfg.process_table.max_exited, maxDepth: cfg.process_table.max_depth },
    ancestors: { maxDepth: cfg.events.ancestors.max_depth, maxCommandLine: cfg.events.ancestors.max_command_line },
    wakeup: { bytes: parseSize(cfg.ring_buffer_wakeup.bytes), intervalMs: parseDuration(cfg.ring_buffer_wakeup.max_latency) },
    onBadRecord: (e) => log.warn({ offset: e.offset }, `bad record skipped: ${e.message}`),
    onHandlerError: (e) => log.error({ err: e }, 'record handling failed (skipped, counted as decode drop)'),
    ...(flags.stdout ? { onEvent: (ev: Record<string, unknown>) => process.stdout.write(JSON.stringify(ev) + '\n') } : {}),
    onAlert: (a) => {
      if (interactive || flags.stdout) {
        process.stdout.write(
          interactive && !flags.stdout
            ? `ALERT [${String(a.level)}] ${String(a.rule_title)} (${String(a.rule_id)}): ${String((a.event as Record<string, unknown>)?.CommandLine ?? '')}\n`
            : JSON.stringify({ alert: a }) + '\n',
        );
      }
    },
  });

  try {
    agent.start();
  } catch (e) {
    await Promise.all(sinks.map((s) => s.close()));
    if (e instanceof BpfError) {
      throw new CliError(`cannot start the sensors: ${e.message}${e.log ? `\n--- libbpf log ---\n${e.log}` : ''}`, 3);
    }
    throw e;
  }
  const guard = flags.enforce === false ? null : startGuard(agent, cfg, log);
  await fleet?.start({
    counters: () => {
      const s = agent.stats();
      return { events: s.events, alerts: s.alerts, drops: s.drops };
    },
    enforcement: () => (guard ? 'enforce' : flags.enforce === false ? 'off' : 'detect-only'),
    onDenyChanged: () => guard?.revalidate(),
  });
  log.info(
    { sensors: agent.sensorNames(), events_out: cfg.events_out, db: cfg.db, rules: cfg.rules, sinks: sinks.map((s) => s.name), seeded: agent.table.stats().seeded },
    `vigil running: sensors ${agent.sensorNames().join(', ')} attached`,
  );

  const profiler = flags.cpuProfile ? await startProfile() : null;
  const intervalMs = parseDuration(cfg.stats_interval);
  let prev: AgentStats | null = null;
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          const s = agent.stats();
          log.info({ stats: s }, formatStatsLine(s, prev));
          prev = s;
        }, intervalMs)
      : null;

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stopping: draining the ring buffer and flushing sinks');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  if (timer) clearInterval(timer);
  guard?.stop(); // enforcement stays pinned in the kernel: `vigil disarm` removes it
  await agent.stop();
  if (profiler && flags.cpuProfile) {
    writeFileSync(flags.cpuProfile, JSON.stringify(await profiler.stop()));
    log.info({ cpu_profile: flags.cpuProfile }, `CPU profile written to ${flags.cpuProfile}`);
  }
  await fleet?.stop();
  const final = agent.stats();
  log.info({ stats: final }, `final: ${formatStatsLine(final, null)}`);
  log.flush();
}
