import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import pino from 'pino';
import { Agent, formatStatsLine, type AgentStats, type Detector } from '../../agent/agent.js';
import { parseDuration, parseSize } from '../../config/config.js';
import { AgentConfigSchema, type AgentConfig as Config } from '../../agent/config.js';
import { DEFAULT_DB, resolveSettings, type FlagValue } from '../../config/resolve.js';
import { SENSORS, sensorNames } from '../../sensors/index.js';
import { JsonlSink } from '../../sinks/jsonl.js';
import { withAuditChain } from './audit.js';
import { SqliteSink } from '../../sinks/sqlite.js';
import type { Sink } from '../../sinks/sink.js';
import { OUTPUTS, OutputOpenError, openOutputs, type OutputCommon } from '../../sinks/index.js';
import { hostname } from 'node:os';
import { BpfError } from '../../kernel/errors.js';
import { LockHeldError } from '../../kernel/lock.js';
import { lockError, openError } from '../errors.js';
import { checkGuardLock } from '../../enforcement/service.js';
import type { SinkFault } from '../../sinks/fault.js';
import { onLibbpfLog } from '../../kernel/log.js';
import { ensureMounts } from '../../kernel/mounts.js';
import { bpfVariant } from '../../kernel/variant.js';
import { createRunDetector, missingRulePaths } from '../../detection/live.js';
import { CliError, InputError, UsageError, UnavailableError, VigilError, bpfRefusal, fromSqliteError, fromSystemError, shown } from '../errors.js';
import { needsKernel, opt } from '../options.js';
import { applyRecordGroup } from '../record-files.js';
import { safeText } from '../../util/text.js';
import { AllowStore, allowedText, ProvenanceService, ProvenanceStore } from '../../provenance/index.js';
import { ExecGuard } from '../../enforcement/guard.js';
import { MARKS_MAP } from '../../events/taint.js';
import { mainWatchdog, startEnforcement, type Enforcement } from '../../enforcement/index.js';
// fleet (NATS) and the API server (fastify, prom-client) are loaded only when configured:
// every command that resolves run's settings (doctor, console-url) would otherwise load them
// (about 310 more module files per CLI start)
import type { ApiServer } from '../../api/server.js';
import { ensureToken } from '../../api/token.js';
import { parseListen, type ListenAddress } from '../../api/listen.js';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';

let libbpfQuiet = false;
/** the local API (--listen, api.listen): sees every alert and exec guard decision */
let api: ApiServer | null = null;

/**
 * Start the exec guard on the backend this host supports (enforcement.backend:
 * auto = BPF LSM when active, else fanotify, else detect-only with the reason).
 * Blocked and would-block decisions flow through the agent's sinks.
 */
async function startGuard(agent: Agent, cfg: Config, log: Logger, provenance: ProvenanceService | null): Promise<Enforcement> {
  // an expected refusal is reported once below; libbpf's own lines go to debug
  libbpfQuiet = true;
  try {
    return await startEnforcement({
      db: cfg.db ?? DEFAULT_DB,
      backend: cfg.enforcement.backend,
      deadlineMs: parseDuration(cfg.enforcement.deadline),
      failMode: cfg.enforcement.fail_mode,
      loaderGuard: cfg.enforcement.loader_guard,
      interpreters: cfg.enforcement.interpreters,
      fanotifyMounts: cfg.enforcement.fanotify_mounts,
      // the exec policy on marked files (BPF LSM), with the sensors' marks map when the guard loads now
      provenance: provenance ? provenance.mode : 'off',
      marksFd: () => agent.sharedMaps.get(MARKS_MAP)?.fd,
      onEvent: (ev) => {
        provenance?.decision(ev as unknown as Record<string, unknown>);
        agent.emit(ev as unknown as Record<string, unknown>);
        api?.decision(ev as unknown as Record<string, unknown>);
      },
      process: agent.process,
      onLog: (level, msg, fields) => log[level](fields ?? {}, msg),
      onBadRecord: (e) => log.warn({ offset: e.offset }, `bad exec guard record skipped: ${e.message}`),
      describeError: (e) => {
        if (e instanceof BpfError && e.log) log.debug({ libbpf_log: e.log }, 'exec guard load log');
        return e instanceof BpfError ? bpfRefusal(e) : String((e as Error).message ?? e);
      },
    });
  } finally {
    libbpfQuiet = false;
  }
}

/** The guard's part of the stats line: backend, and the fanotify worker's counts. */
function guardStatsText(g: Enforcement | null): string {
  if (!g) return '';
  const s = g.stats();
  const f = s.fanotify;
  return f
    ? ` | guard fanotify execs=${f.execs} opens=${f.opens} denied=${f.denied} deadline_missed=${f.deadlineMisses} errors=${f.errors} max_answer=${(f.maxAnswerUs / 1000).toFixed(1)}ms ignore_marks=${f.ignoreMarks}`
    : ` | guard ${s.backend}`;
}

/**
 * File provenance (docs/provenance.md): the sensors taint, mark and propagate
 * in the kernel; this service writes origin records. Monitor only for now.
 */
function startProvenance(cfg: Config, log: Logger): ProvenanceService | null {
  const mode = cfg.provenance.mode;
  if (mode === 'off') return null;
  const store = cfg.db ? ProvenanceStore.open(cfg.db) : null;
  const svc = new ProvenanceService({
    mode,
    store,
    allow: cfg.db ? AllowStore.open(cfg.db) : null,
    soakDimensions: cfg.provenance.soak_dimensions,
    host: hostname(),
    onError: (e, what) => log.warn(`provenance: ${what}: ${safeText((e as Error).message ?? String(e))}`),
    // an exec of a marked program that ran (monitor, soak, an allow rule, or no exec guard here)
    onMarkedExec: (x) => {
      const from = x.record?.remote ? ` from ${safeText(x.record.remote.address)}:${x.record.remote.port}${x.record.remote.host ? ` (${safeText(x.record.remote.host)})` : ''}` : '';
      log.warn({ provenance_exec: { image: x.image, pid: x.pid, dev: x.dev, ino: x.ino, depth: x.depth, origin: x.record } }, `provenance: marked file executed: ${safeText(x.image)} (pid ${x.pid}, ${x.record?.kind ?? 'marked'}${from}); ran (provenance ${mode})`);
    },
  });
  const sensors = cfg.sensors as Record<string, { enabled: boolean }>;
  const missing = ['network', 'file'].filter((n) => !sensors[n]?.enabled);
  if (missing.length) log.warn(`provenance: the ${missing.join(' and ')} sensor${missing.length > 1 ? 's are' : ' is'} off: ${missing.includes('network') ? 'no process is tainted, nothing gets marked' : 'no file gets marked'}`);
  log.info(
    { provenance: mode, loopback: cfg.provenance.loopback, max_depth: cfg.provenance.max_depth },
    `provenance: ${mode}: files written by network-touched processes are marked (${store ? 'xattr and store' : 'xattr only: --no-db'})`,
  );
  return svc;
}

/**
 * The exec policy on marked files runs in the BPF LSM exec guard: give the
 * provenance service its allow map, or say why marked files are not checked.
 */
function attachPolicy(provenance: ProvenanceService, guard: Enforcement | null, agent: Agent, log: Logger): void {
  const mode = provenance.mode;
  const allow = guard?.lsm?.map('prov_allow') ?? null;
  const allowUid = guard?.lsm?.map('prov_allow_uid') ?? null;
  const marks = guard?.lsm?.map('vigil_marks') ?? null;
  const ours = agent.sharedMaps.get(MARKS_MAP);
  if (allow && allowUid && marks && ours && marks.id === ours.id) {
    provenance.attachGuard(allow, allowUid);
    log.info({ provenance_policy: mode, allowed: provenance.counters.allowed, allowed_uid: provenance.counters.allowed_uid },
      `provenance: exec policy ${mode} in the exec guard (BPF LSM): ${mode === 'enforce' ? 'execs of marked files are refused (EPERM) unless an allow rule matches' : mode === 'soak' ? 'execs of marked files run; allow rules are learned for review (vigil allow review)' : 'execs of marked files are reported'} (${allowedText(provenance.counters)})`);
    return;
  }
  const why = !guard
    ? 'the exec guard is off (--no-enforce)'
    : guard.backend !== 'lsm'
      ? `the exec policy needs the BPF LSM exec guard; this host has ${guard.backend === 'fanotify' ? 'the fanotify backend' : 'no exec guard'}${guard.reason ? ` (${guard.reason})` : ''}`
      : 'the exec guard does not share the sensors\' marks map (an older pinned guard: `vigil disarm` and start again)';
  if (mode === 'monitor') log.info(`provenance: monitor: execs of marked programs are reported from the exec sensor; ${why}`);
  else log.warn({ provenance_policy: mode, enforce: false, reason: why }, `provenance: ${mode} cannot be applied here, marked files are not checked at exec (acting as monitor): ${why}`);
}

/**
 * Tamper protection of origin records (BPF LSM: docs/provenance.md TAMPERING):
 * while this agent runs only vigil can set or remove trusted.vigil.* and security.bpf.vigil.* attributes.
 * Where the hooks cannot load, say why (the trusted.* namespace still needs
 * CAP_SYS_ADMIN: a file's owner cannot strip the mark, root can).
 */
function protectMarks(provenance: ProvenanceService, agent: Agent, log: Logger): void {
  libbpfQuiet = true;
  try {
    provenance.protect(agent.process, (ev) => agent.emit(ev), () => agent.syncProcesses());
    log.info({ provenance_tamper: true }, 'provenance: tamper protection on (BPF LSM): while this agent runs, only vigil can set or remove trusted.vigil.* and security.bpf.vigil.* attributes (root and the file\'s owner get EPERM; attempts are reported as provenance_tamper events)');
  } catch (e) {
    if (e instanceof BpfError && e.log) log.debug({ libbpf_log: e.log }, 'tamper protection load log');
    const why = e instanceof BpfError ? bpfRefusal(e) : String((e as Error).message ?? e);
    log.info({ provenance_tamper: false, reason: why }, `provenance: no tamper protection here (${safeText(why)}): only CAP_SYS_ADMIN can change trusted.vigil.* attributes, so a file's owner cannot strip a mark, root can`);
  } finally {
    libbpfQuiet = false;
  }
}

export interface RunFlags {
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
  verbose?: boolean;
  /** false from --no-enforce */
  enforce?: boolean;
  sensors?: string[];
  fleet?: string;
  fleetCreds?: string;
  fleetHost?: string;
  listen?: string;
  listenAllowRemote?: boolean;
  provenance?: string;
  provenanceLoopback?: boolean;
}

/** --sensors exec,file → the names, each known */
function parseSensorList(v: string, subject: string): string[] {
  const want = v.split(',').map((x) => x.trim()).filter(Boolean);
  const known = sensorNames();
  const bad = want.filter((w) => !known.includes(w));
  if (bad.length || !want.length) {
    throw new UsageError(subject, `${bad.length ? `unknown sensor ${bad.map((b) => `"${shown(b, 40)}"`).join(', ')}` : 'an empty list'} (known: ${known.join(', ')})`);
  }
  return want;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export function register(program: Command): void {
  let dbGiven = false;
  let noDbGiven = false;
  const run = needsKernel(program.command('run'))
    .description('start the sensors and record events (and alerts) until SIGINT/SIGTERM')
    .addOption(opt('-c, --config <file>', 'YAML config (default $VIGIL_CONFIG, else /etc/vigil/vigil.yaml when it exists; docs/config.md); the environment and flags override it', 'file'))
    .addOption(opt('-o, --events-out <file.jsonl>', 'append every event to this JSONL audit log (rotated by size)', 'out-file'))
    .addOption(opt('--alerts-out <file.jsonl>', 'append every alert to this JSONL file', 'out-file'))
    .addOption(opt('--db <file>', `SQLite event store (default $VIGIL_DB, else ${DEFAULT_DB})`, 'database'))
    .option('--no-db', 'do not write the SQLite store')
    .addOption(opt('-r, --rules <dir...>', 'Sigma rule directories (watched and hot-reloaded; default $VIGIL_RULES, else the config\'s)', 'rules-path'))
    .addOption(opt('--stats-interval <duration>', 'period of the stats line on stderr, e.g. 10s (0 = off)', 'duration'))
    .addOption(opt('-s, --sensors <list>', `comma-separated sensors to run, the others off (${sensorNames().join(',')}); default: as the config says`, 'sensors', { parse: parseSensorList }))
    .option('--stdout', 'also print every event as JSON on stdout')
    .addOption(opt('--provenance <mode>', 'file provenance: off, monitor (mark files written by network-touched processes, report execs of them), soak (let them run, learn allow rules for vigil allow review), enforce (EPERM unless vigil allow matches; BPF LSM) (docs/provenance.md)', 'choice', { choices: ['off', 'monitor', 'soak', 'enforce'] }))
    .option('--provenance-loopback', 'provenance: loopback peers (127.0.0.0/8, ::1) count as network (tests, local proxies)')
    .option('--no-enforce', 'do not arm or adopt the exec guard (BPF LSM deny rules, see `vigil deny`)')
    .addOption(opt('--fleet <url>', 'publish events and alerts to NATS JetStream and take policy from it (nats://HOST:PORT; docs/fleet.md)', 'url'))
    .addOption(opt('--fleet-creds <file>', 'NATS credentials file (.creds, or token / user+password; mode 600)', 'file'))
    .addOption(opt('--fleet-host <id>', 'this host\'s id in the fleet (default: the host name, [A-Za-z0-9_-])', 'host-id'))
    .addOption(opt('--listen <addr:port>', 'serve the local API, /metrics and the web console here (api.listen; loopback only unless --listen-allow-remote; docs/api.md). `vigil console-url` prints the URL', 'listen'))
    .option('--listen-allow-remote', 'let --listen bind a non-loopback address (api.allow_remote): the token is then sent over plain HTTP')
    .addOption(opt('--log-level <level>', 'log level on stderr', 'choice', { choices: LOG_LEVELS, default: 'info' }))
    .addOption(opt('--cpu-profile <file.cpuprofile>', 'write a V8 CPU profile of the run to this file (started once the BPF programs are loaded: a signal-based profiler running during the load makes the verifier fail)', 'out-file'))
    .option('-v, --verbose', 'when a BPF program is refused, print libbpf\'s log (the verifier\'s) with the error');
  // --db FILE and --no-db together would depend on their order: refuse them
  const both = () => {
    if (dbGiven && noDbGiven) throw new UsageError('--db', 'given with --no-db: say one of them', { code: 'usage.conflict' });
  };
  run.on('option:db', () => {
    dbGiven = true;
    both();
  });
  run.on('option:no-db', () => {
    noDbGiven = true;
    both();
  });
  run
    .addHelpText(
      'after',
      `
Sensors (each on or off in the config, sensors.<name>.enabled, or with --sensors):
${SENSORS.map((p) => `  ${p.name.padEnd(8)} ${p.title} [${p.categories.join(', ')}]`).join('\n')}

Outputs (config file only, outputs.<name>: enabled, route events|alerts, min_level,
queue, retry; docs/outputs.md, docs/config.md OUTPUTS):
${OUTPUTS.map((o) => `  ${o.name.padEnd(8)} ${o.title}`).join('\n')}
  Each has a bounded queue with retries (exponential backoff, full jitter); nothing
  from an event is ever executed (there is no command output).

Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN). Events use Sysmon-for-Linux field
names (docs/events.md). Losses are counted at every stage and shown in the stats line:
  kernel = ring buffer full in the kernel, decode = malformed records,
  <sink> = records a slow sink refused (never an unbounded queue); a network
  output adds why: full (its queue), failed (given up after retries or refused by
  the peer), shutdown (left at stop), and its retries and queued records.

Examples:
  vigil run --events-out /var/log/vigil/events.jsonl
  vigil run --no-db --events-out ev.jsonl --stats-interval 2s
  vigil run --sensors exec,file,network --stdout
  vigil run --rules /etc/vigil/rules --alerts-out /var/log/vigil/alerts.jsonl
  vigil run -c /etc/vigil/vigil.yaml
  vigil run --fleet nats://10.0.0.5:4222 --fleet-creds /etc/vigil/fleet.creds
  vigil run --rules /etc/vigil/rules --listen 127.0.0.1:7070   (API, /metrics, console: vigil console-url; docs/api.md)`,
    )
    .action(async (flags: RunFlags) => {
      await runAgent(flags);
    });
}

/** The config file, the environment, then the flags (src/config/resolve.ts). */
export function resolveRun(flags: RunFlags, env: NodeJS.ProcessEnv = process.env) {
  const f: FlagValue[] = [];
  if (flags.sensors !== undefined) {
    for (const k of sensorNames()) f.push({ key: `sensors.${k}.enabled`, value: flags.sensors.includes(k), flag: '--sensors' });
  }
  f.push({ key: 'events_out', value: flags.eventsOut, flag: '--events-out' });
  f.push({ key: 'alerts_out', value: flags.alertsOut, flag: '--alerts-out' });
  f.push({ key: 'db', value: flags.db === false ? null : flags.db, flag: flags.db === false ? '--no-db' : '--db' });
  f.push({ key: 'rules', value: flags.rules?.length ? flags.rules : undefined, flag: '--rules' });
  f.push({ key: 'stats_interval', value: flags.statsInterval, flag: '--stats-interval' });
  f.push({ key: 'fleet.url', value: flags.fleet, flag: '--fleet' });
  f.push({ key: 'fleet.creds', value: flags.fleetCreds, flag: '--fleet-creds' });
  f.push({ key: 'fleet.host_id', value: flags.fleetHost, flag: '--fleet-host' });
  f.push({ key: 'api.listen', value: flags.listen, flag: '--listen' });
  f.push({ key: 'api.allow_remote', value: flags.listenAllowRemote, flag: '--listen-allow-remote' });
  f.push({ key: 'provenance.mode', value: flags.provenance, flag: '--provenance' });
  f.push({ key: 'provenance.loopback', value: flags.provenanceLoopback, flag: '--provenance-loopback' });
  const r = resolveSettings({ configFlag: flags.config, flags: f, env }, AgentConfigSchema);
  applyRecordGroup(r.config.files.group, r.source('files.group'));
  return r;
}

/** Config file, environment, then flags on top; flags are validated by the same schema. */
export function resolveConfig(flags: RunFlags): Config {
  return resolveRun(flags).config;
}


/** A sink that cannot write says so once per episode (its losses are counted in the stats). */
function faultLogger(log: Logger): (f: SinkFault) => void {
  return (f) => {
    if (f.state === 'failing') {
      const code = (f.error as NodeJS.ErrnoException | undefined)?.code;
      log.error({ sink: f.sink, err_code: code, reason: f.error?.message }, `${f.sink}: writes failing (${f.error?.message ?? 'unknown'}); records are kept while the bound allows, then dropped and counted, until writes succeed again`);
    } else {
      log.warn({ sink: f.sink, lost: f.lost, ms: f.ms }, `${f.sink}: writes resumed after ${f.ms} ms; ${f.lost} record(s) lost meanwhile`);
    }
  };
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

/** The token file when api.token_file is not set: next to the store (the default store's directory with --no-db). */
export function defaultTokenFile(db: string | null): string {
  return join(dirname(db ?? DEFAULT_DB), 'api.token');
}

/** api.listen checked: ADDR:PORT, and loopback unless api.allow_remote (a usage error naming where it came from). */
function listenAddress(settings: ReturnType<typeof resolveRun>): { addr: ListenAddress; subject: string } {
  const cfg = settings.config;
  const src = settings.source('api.listen');
  const subject = src.startsWith('-') || src.startsWith('$') ? src : `api.listen (${src})`;
  const addr = parseListen(cfg.api.listen!);
  if (typeof addr === 'string') throw new UsageError(subject, `${shown(cfg.api.listen!)}: ${addr}`);
  if (!addr.loopback && !cfg.api.allow_remote) {
    throw new UsageError(subject, `${shown(cfg.api.listen!)} is not a loopback address`, {
      code: 'usage.not_loopback',
      hint: 'the API serves plain HTTP: bind 127.0.0.1 and reach it through SSH or a TLS proxy, or allow it with --listen-allow-remote (api.allow_remote: true)',
    });
  }
  return { addr, subject };
}

/** What the guard enforces here, for the API: armed (on a backend), detect-only, or off (--no-enforce). */
function apiEnforcement(guard: object | null, enforce: boolean | undefined): { state: 'enforce' | 'detect-only' | 'off'; reason?: string } {
  const backend = (guard as { backend?: string } | null)?.backend;
  if (guard && backend !== 'detect-only') return backend ? { state: 'enforce', reason: `backend ${backend}` } : { state: 'enforce' };
  return enforce === false ? { state: 'off', reason: '--no-enforce' } : { state: 'detect-only', reason: 'the exec guard cannot load on this host: deny rules are stored, not enforced (see the start-up log, vigil doctor)' };
}

/**
 * The local API (docs/api.md): the listen address checked (loopback unless
 * allowed), the token file made (0600), the server started. Failing to bind
 * is an error (exit 3), not a warning: the operator asked for it.
 */
async function startApi(
  settings: ReturnType<typeof resolveRun>,
  agent: Agent,
  detector: Detector | null,
  enforcement: () => { state: 'enforce' | 'detect-only' | 'off'; reason?: string },
  onDenyChanged: () => void,
  log: Logger,
): Promise<ApiServer> {
  const cfg = settings.config;
  const { addr, subject } = listenAddress(settings);
  if (!addr.loopback) {
    log.warn({ listen: cfg.api.listen }, `api: ${safeText(cfg.api.listen!)} is not a loopback address (allowed by --listen-allow-remote / api.allow_remote): the bearer token and all data cross the network in plain HTTP; put a TLS proxy in front or use 127.0.0.1`);
  }
  const tokenFile = cfg.api.token_file ?? defaultTokenFile(cfg.db);
  let tok;
  try {
    tok = ensureToken(tokenFile);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw fromSystemError(err, `api token file ${shown(tokenFile, 200)}`) ?? new InputError('input.invalid', `api token file ${shown(tokenFile, 200)}`, err.message);
  }
  if (tok.tightened) log.warn({ token_file: tokenFile }, `api: the token file ${safeText(tokenFile)} was readable by others: made it 0600 (consider replacing the token: remove the file and restart)`);
  const { ApiServer } = await import('../../api/server.js');
  const server = new ApiServer({
    host: addr.host,
    port: addr.port,
    token: tok.token,
    metricsAuth: cfg.api.metrics_auth,
    version: '0.1.0',
    db: cfg.db,
    stats: () => agent.stats(),
    process: agent.process,
    detector,
    enforcement,
    onDenyChanged,
  });
  try {
    await server.listen();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UnavailableError('unavailable.listen', `cannot listen on ${shown(cfg.api.listen!)}: ${err.code ?? err.message}`, {
      subject,
      hint: err.code === 'EADDRINUSE' ? 'another process has that port: pick another one' : 'check the address is one of this host\'s',
    });
  }
  log.info({ api: `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`, token_file: tokenFile, token_created: tok.created, metrics_auth: cfg.api.metrics_auth },
    `api: listening on ${cfg.api.listen} (token in ${safeText(tokenFile)}${tok.created ? ', new' : ''}; \`vigil console-url\` prints the console's address)`);
  return server;
}

async function runAgent(flags: RunFlags): Promise<void> {
  const log = pino({ level: flags.logLevel ?? 'info', base: { app: 'vigil' } }, pino.destination({ dest: 2, sync: true }));
  const settings = resolveRun(flags);
  const cfg = settings.config;
  // a wrong or non-loopback api.listen is refused before anything loads
  if (cfg.api.listen) listenAddress(settings);
  const missingRules = missingRulePaths(cfg.rules);
  if (missingRules.length)
    throw new InputError('input.not_found', `${flags.rules?.length ? '--rules' : 'rules'} ${missingRules.map((m) => shown(m)).join(', ')}`, 'no such file or directory', {
      hint: 'a rule path that does not exist is an error, not an empty rule set: create it or correct the path',
    });
  ensureMounts();
  onLibbpfLog((level, line) => {
    if (level === 'warn' && !libbpfQuiet) log.warn({ libbpf: true }, line.trimEnd());
    else log.debug({ libbpf: true }, line.trimEnd());
  });

  // one enforcing agent per pinned exec guard: refused before anything opens (a backend that never uses it skips)
  if (flags.enforce !== false && (cfg.enforcement.backend === 'auto' || cfg.enforcement.backend === 'lsm')) {
    try {
      checkGuardLock();
    } catch (e) {
      if (e instanceof LockHeldError) throw lockError(e, `exec guard ${shown(e.target, 200)}`);
      throw e;
    }
  }

  const sinks: Sink[] = [];
  const maxPending = parseSize(cfg.sinks.max_pending_bytes);
  const onFault = faultLogger(log);
  // a path the sink cannot open (a directory, not a database) is one line naming where it came from
  const open = (key: string, path: string, make: () => Sink) => {
    try {
      sinks.push(make());
    } catch (e) {
      void Promise.all(sinks.map((x) => x.close()));
      const src = settings.source(key);
      throw openError(e, src.startsWith('-') || src.startsWith('$') ? src : `${key} (${src})`, path);
    }
  };
  if (cfg.events_out) {
    const path = cfg.events_out;
    open('events_out', path, () => withAuditChain(cfg.audit_log, path, log, (hook) => new JsonlSink({ path, maxBytes: parseSize(cfg.audit_log.max_bytes), keep: cfg.audit_log.keep, maxPendingBytes: maxPending, kinds: ['event'], onFault, hook })));
  }
  if (cfg.alerts_out) {
    const path = cfg.alerts_out;
    open('alerts_out', path, () => withAuditChain(cfg.audit_log, path, log, (hook) => new JsonlSink({ path, name: `alerts:${path}`, maxBytes: parseSize(cfg.audit_log.max_bytes), keep: cfg.audit_log.keep, maxPendingBytes: maxPending, kinds: ['alert'], onFault, hook })));
  }
  if (cfg.db) {
    const path = cfg.db;
    open('db', path, () => new SqliteSink({ path, maxPending: cfg.sinks.sqlite_max_pending, maxRows: cfg.store.max_rows, textIndex: cfg.store.text_index, tableMaxExited: cfg.process_table.max_exited, onFault }));
  }
  // network outputs (outputs.<name>: syslog, webhook; docs/outputs.md): a peer that fails is retried and counted, never fatal
  const outputErrors = new Map<string, number>();
  sinks.push(
    ...openOutputs(
      cfg.outputs as Record<string, OutputCommon>,
      {
        hostname: hostname(),
        // one warning per output and minute at most; every failure is counted in the sink's stats
        onError: (name, err) => {
          const now = Date.now();
          if (now - (outputErrors.get(name) ?? -Infinity) < 60_000) return;
          outputErrors.set(name, now);
          log.warn({ output: name }, `output ${name}: ${safeText(err.message)} (retried with backoff; failures and drops are counted in the stats line)`);
        },
      },
      (name, e) => {
        void Promise.all(sinks.map((x) => x.close()));
        // the key that gave the failing value (a secret file, a socket path), where it came from
        const key = e instanceof OutputOpenError ? `outputs.${name}.${e.key}` : `outputs.${name}`;
        const cause = e instanceof OutputOpenError ? e.cause : e;
        const subject = `${key} (${settings.source('outputs')})`;
        throw (cause as NodeJS.ErrnoException).code ? (fromSystemError(cause as NodeJS.ErrnoException, subject) ?? cause) : new InputError('config.invalid', subject, (cause as Error).message);
      },
    ),
  );

  let fleet;
  try {
    fleet = cfg.fleet.url ? (await import('../../fleet/index.js')).createFleetAgent(cfg.fleet, { rulesDb: cfg.db ?? DEFAULT_DB, log }) : null;
  } catch (e) {
    const msg = (e as Error).message;
    // a credentials file that is wrong is an input error (4), like in `vigil fleet`
    throw /credentials file/.test(msg) ? new CliError(`--fleet-creds: ${msg}`, 4) : new CliError(`--fleet: ${msg}`, 2);
  }
  if (fleet) sinks.push(fleet.sink);
  const ruleDirs = fleet ? [...cfg.rules, fleet.sigmaDir] : cfg.rules;

  let detector: Detector | null = null;
  if (ruleDirs.length) {
    detector = await createRunDetector({ ruleDirs, fieldMapping: cfg.field_mapping, log });
  }

  const provenance = startProvenance(cfg, log);
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
    ...(provenance ? { provenance: { loopback: cfg.provenance.loopback, maxDepth: cfg.provenance.max_depth } } : {}),
    ...(flags.stdout || provenance
      ? {
          onEvent: (ev: Record<string, unknown>) => {
            provenance?.handle(ev);
            if (flags.stdout) process.stdout.write(JSON.stringify(ev) + '\n');
          },
        }
      : {}),
    onAlert: (a) => {
      api?.alert(a);
      if (interactive || flags.stdout) {
        process.stdout.write(
          interactive && !flags.stdout
            ? `ALERT [${safeText(String(a.level))}] ${safeText(String(a.rule_title))} (${safeText(String(a.rule_id))}): ${safeText(String((a.event as Record<string, unknown>)?.CommandLine ?? ''))}\n`
            : JSON.stringify({ alert: a }) + '\n',
        );
      }
    },
  });

  // the marks of an armed exec guard (pinned: they outlive agents): the sensors reuse that map, so the guard sees what they mark
  const guardMarks = provenance && flags.enforce !== false ? ExecGuard.pinnedMarks() : null;
  if (guardMarks) agent.sharedMaps.offer(guardMarks);
  // Before the sensors start: from its first origin record on, this agent is in the
  // shared exemption map, so another agent's tamper hooks (or this one's) never refuse it.
  if (provenance) protectMarks(provenance, agent, log);
  try {
    agent.start();
  } catch (e) {
    provenance?.unprotect();
    await Promise.all(sinks.map((s) => s.close()));
    if (e instanceof BpfError) {
      throw new UnavailableError('unavailable.bpf', `cannot start the sensors: ${e.message}`, { cause: e });
    }
    throw e;
  }
  provenance?.rearm(agent.sharedMaps.get(MARKS_MAP));
  let guard: Enforcement | null;
  try {
    guard = flags.enforce === false ? null : await startGuard(agent, cfg, log, provenance);
  } catch (e) {
    // another agent took the exec guard since the check at start: refuse, never share its decisions
    provenance?.unprotect();
    await agent.stop();
    if (e instanceof LockHeldError) throw lockError(e, `exec guard ${shown(e.target, 200)}`);
    throw e;
  }
  if (provenance) attachPolicy(provenance, guard, agent, log);
  // systemd's watchdog: the fanotify listener pings from its own thread, else the event loop does
  const stopWatchdog = guard?.backend === 'fanotify' ? () => undefined : mainWatchdog();
  await fleet?.start({
    counters: () => {
      const s = agent.stats();
      return { events: s.events, alerts: s.alerts, drops: s.drops };
    },
    enforcement: () => (guard && guard.backend !== 'detect-only' ? 'enforce' : flags.enforce === false ? 'off' : 'detect-only'),
    onDenyChanged: () => guard?.revalidate(),
  });
  // a stop asked for from here on is a clean stop, also one that comes while the API below starts
  const stopped = new Promise<void>((resolve) => {
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
  const build = bpfVariant();
  log.info(
    { sensors: agent.sensorNames(), events_out: cfg.events_out, db: cfg.db, rules: cfg.rules, sinks: sinks.map((s) => s.name), seeded: agent.table.stats().seeded, bpf_build: build.variant, bpf_build_reason: build.reason },
    `vigil running: sensors ${agent.sensorNames().join(', ')} attached${build.variant === 'compat' ? ` (compat BPF build: ${build.reason})` : ''}`,
  );

  if (cfg.api.listen) {
    api = await startApi(settings, agent, detector, () => apiEnforcement(guard, flags.enforce), () => guard?.revalidate(), log);
  }
  const profiler = flags.cpuProfile ? await startProfile() : null;
  const intervalMs = parseDuration(cfg.stats_interval);
  let prev: AgentStats | null = null;
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          const s = agent.stats();
          log.info({ stats: s, ...(guard ? { enforcement: guard.stats() } : {}) }, `${formatStatsLine(s, prev)}${guardStatsText(guard)}`);
          prev = s;
        }, intervalMs)
      : null;

  await stopped;
  if (timer) clearInterval(timer);
  stopWatchdog();
  await guard?.stop(); // lsm: enforcement stays pinned in the kernel (`vigil disarm` removes it); fanotify: ends with the agent
  await api?.close();
  api = null;
  provenance?.unprotect(); // its last refusals still reach the sinks
  await agent.stop();
  if (provenance) {
    const c = provenance.counters;
    log.info({ provenance: c }, `provenance: ${c.marks} marks, ${c.xattr_written} origin records written, ${c.xattr_failed} xattr failures, ${c.moved} moved before written, ${c.rearmed} re-armed at start, ${c.tamper_refused} tamper attempts refused`);
    provenance.close();
  }
  guardMarks?.close();
  await fleet?.stop();
  if (profiler && flags.cpuProfile) {
    writeFileSync(flags.cpuProfile, JSON.stringify(await profiler.stop()));
    log.info({ cpu_profile: flags.cpuProfile }, `CPU profile written to ${flags.cpuProfile}`);
  }
  const final = agent.stats();
  log.info({ stats: final, ...(guard ? { enforcement: guard.stats() } : {}) }, `final: ${formatStatsLine(final, null)}${guardStatsText(guard)}`);
  log.flush();
}
