/**
 * `vigil watch -- CMD`: load the tree scope and the sensors limited to it,
 * start CMD so that it is in the scope before it runs a single instruction of
 * its own, stream the tree's events, summarize at exit.
 *
 * The race: a child must be in vigil_scope_tgids before it execs CMD, or its
 * first events (and children) escape. CMD is started through a tiny wrapper
 * (`/bin/sh -c 'read _ <&3; exec "$@"'`) that blocks on a pipe: vigil adds the
 * wrapper's pid to the map, then writes the go byte; the wrapper execs CMD in
 * the same process. Every fork after that is added by the kernel.
 */
import { lookup } from 'node:dns/promises';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Agent, type Detector } from '../agent/agent.js';
import type { Sink } from '../sinks/sink.js';
import { createRunDetector } from '../detection/live.js';
import { TreeScope, findSensor } from '../sensors/index.js';
import { ScopeMode } from '../sensors/scope.js';
import type { WatchPolicy } from './policy.js';
import { WatchSession, formatSummary, type WatchSummary } from './session.js';
import { Signals, parseAllowEntry } from './signals.js';
import { FILE_GUARD_MAX, SHELL_PATHS, WatchGuard, filesForPatterns, type NetAllow } from './shell-guard.js';
import { DEFAULT_SENSITIVE } from './signals.js';
import { BpfError } from '../kernel/index.js';

export interface RunAs {
  uid: number;
  gid: number;
  name: string;
  home: string;
}

/** A user from /etc/passwd by name or uid (null when unknown). */
export function lookupUser(nameOrUid: string): RunAs | null {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const p = line.split(':');
    if (p.length < 7) continue;
    if (p[0] === nameOrUid || p[2] === nameOrUid) return { name: p[0]!, uid: Number(p[2]), gid: Number(p[3]), home: p[5]! };
  }
  return null;
}

export interface WatchOptions {
  command: string[];
  policy: WatchPolicy;
  json: boolean;
  /** run CMD as this user (sudo's invoking user by default); null: as vigil's own user */
  runAs: RunAs | null;
  /** where the view goes (default: stderr) */
  write: (line: string) => void;
  /** Sigma rule files or directories evaluated on the tree's events */
  rules?: string[];
  /** sensors' libbpf log lines */
  onWarning?: (msg: string) => void;
  /** where the tree's events and Sigma alerts are also written (vigil watch --db: the store); closed at the end */
  sinks?: Sink[];
}

export interface WatchResult {
  summary: WatchSummary;
  /** CMD's exit code (128 + signal number when a signal ended it) */
  exitCode: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** A sensor's config section with these keys over its defaults (enabled unless said). */
function cfg(name: string, keys: Record<string, unknown>): { enabled: boolean } {
  const plugin = findSensor(name);
  if (!plugin) throw new Error(`no sensor ${name}`);
  return plugin.config.parse({ enabled: true, ...keys }) as { enabled: boolean };
}

/**
 * The network guard's allow list: network.allow's addresses and CIDRs, its host
 * names resolved now (every address they have), and loopback (127.0.0.0/8, ::1),
 * which stays allowed. A name that does not resolve is said and left out.
 */
export async function networkAllow(entries: string[], warn: (m: string) => void): Promise<NetAllow> {
  const out: NetAllow = { v4: [{ addr: '127.0.0.0', bits: 8 }], v6: [{ addr: '::1', bits: 128 }] };
  for (const a of entries) {
    const e = parseAllowEntry(a);
    if (e.kind === 'ip') (e.family === 'ipv4' ? out.v4 : out.v6).push({ addr: e.addr, bits: e.bits });
    else {
      try {
        const found = await lookup(a, { all: true });
        for (const r of found) (r.family === 4 ? out.v4 : out.v6).push({ addr: r.address, bits: r.family === 4 ? 32 : 128 });
      } catch (e) {
        warn(`network.allow: ${a} did not resolve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): connections to it are refused`);
      }
    }
  }
  return out;
}

export async function runWatch(o: WatchOptions): Promise<WatchResult> {
  const homes = [...new Set([o.runAs?.home, process.env.HOME, '/root'].filter((h): h is string => !!h))];
  const signals = new Signals(o.policy, homes);
  const session = new WatchSession({ json: o.json, write: o.write, signals, command: o.command });

  const scope = TreeScope.open();
  let agent: Agent | null = null;
  const guards: WatchGuard[] = [];
  try {
    const lsm = (what: string, load: () => WatchGuard): WatchGuard => {
      try {
        return load();
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        throw new BpfError({
          op: `${what} (BPF LSM): ${e.op}`,
          errno: e.errno,
          hint: `BPF LSM is not active here (bpf missing from /sys/kernel/security/lsm, or trampolines refused): use alert instead of deny on this host`,
          ...(e.log ? { log: e.log } : {}),
        });
      }
    };
    if (o.policy.shells.action === 'deny') guards.push(lsm('shells.action: deny', () => WatchGuard.files('shell', scope.maps(), SHELL_PATHS, (d) => session.denied(d))));
    const s = o.policy.sensitive;
    const fileDeny = [
      ...(s.action === 'deny' ? [{ what: 'sensitive.action: deny', patterns: [...(s.defaults ? DEFAULT_SENSITIVE : []), ...s.paths], skip: signals.ignore }] : []),
      ...(o.policy.files.action === 'deny' ? [{ what: 'files.action: deny', patterns: o.policy.files.block, skip: () => false }] : []),
    ];
    if (fileDeny.length) {
      // one file guard holds the files both lists name when the watch starts
      const files: string[] = [];
      for (const d of fileDeny) {
        const r = filesForPatterns(d.patterns, homes, FILE_GUARD_MAX - files.length);
        files.push(...r.files.filter((f) => !d.skip(f)));
        if (r.truncated) o.onWarning?.(`${d.what}: more than ${FILE_GUARD_MAX} files under its directories; the rest are alerts only`);
      }
      guards.push(lsm(fileDeny.map((d) => d.what).join(', '), () => WatchGuard.files('file', scope.maps(), files, (d) => session.denied(d))));
    }
    if (o.policy.network.action === 'deny') {
      const allow = await networkAllow(o.policy.network.allow ?? [], (m) => o.onWarning?.(m));
      guards.push(lsm('network.action: deny', () => WatchGuard.network(scope.maps(), allow, (d) => session.denied(d))));
    }
    // the tree is empty: from here on the sensors report nothing but it
    scope.setMode(ScopeMode.TREE);
    let detector: Detector | null = null;
    if (o.rules?.length) {
      const say = (_o: unknown, m: string) => o.onWarning?.(m);
      const log = { info: say, warn: say, error: say, debug: () => {} } as unknown as Logger;
      detector = await createRunDetector({ ruleDirs: o.rules, fieldMapping: null, log });
    }
    agent = new Agent({
      sinks: o.sinks ?? [],
      detector,
      onAlert: (a) => session.sigma(a),
      scope: scope.maps(),
      sensors: {
        exec: cfg('exec', {}),
        file: cfg('file', { read: ['/'] }),
        network: cfg('network', { loopback: o.policy.network.loopback }),
        tls: cfg('tls', { enabled: o.policy.tls.enabled, targets: o.policy.tls.targets, capture_bytes: o.policy.tls.capture_bytes }),
      },
      onEvent: (ev) => session.event(ev),
      onBadRecord: (e) => o.onWarning?.(`bad record skipped: ${e.message}`),
      onHandlerError: (e) => o.onWarning?.(`event handler failed: ${(e as Error).message}`),
    });
    agent.start();
    const tls = agent.sensors.find((s) => s.name === 'tls') as { attachBinary?: (p: string) => string[] } | undefined;
    if (tls?.attachBinary) {
      const seen = new Set<string>();
      session.onImage = (image) => {
        if (seen.has(image) || !image.startsWith('/')) return;
        seen.add(image);
        const fns = tls.attachBinary!(image);
        if (fns.length) o.onWarning?.(`tls: hooked ${fns.join(', ')} in ${image} (calls before this point are not captured)`);
      };
    }

    const env = { ...process.env };
    if (o.runAs) {
      env.HOME = o.runAs.home;
      env.USER = o.runAs.name;
      env.LOGNAME = o.runAs.name;
    }
    for (const k of ['SUDO_COMMAND', 'SUDO_USER', 'SUDO_UID', 'SUDO_GID']) if (o.runAs) delete env[k];
    const child = spawn('/bin/sh', ['-c', 'read _ <&3; exec 3<&-; exec "$@"', o.command[0]!, ...o.command], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
      env,
      ...(o.runAs ? { uid: o.runAs.uid, gid: o.runAs.gid } : {}),
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    if (child.pid === undefined) {
      await exited; // throws the spawn error
      throw new Error('the command did not start');
    }
    scope.add(child.pid);
    session.addRoot(child.pid);
    const go = child.stdio[3] as NodeJS.WritableStream;
    go.end('g\n');

    // SIGINT from a terminal reaches the whole foreground group (CMD too); pass TERM and HUP on
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const onTerm = forward('SIGTERM');
    const onHup = forward('SIGHUP');
    const onInt = () => {
      /* CMD got it from the terminal: wait for it to end */
    };
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    process.on('SIGINT', onInt);
    let r: { code: number | null; signal: NodeJS.Signals | null };
    try {
      r = await exited;
    } finally {
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onHup);
      process.off('SIGINT', onInt);
    }
    // records of the tree's last moments are in the rings already: drain them
    for (const g of guards) g.drain();
    await agent.stop();
    const st = agent.stats();
    const sc = scope.stats();
    const losses = { kernel_ring_full: st.drops.kernel, bad_records: st.drops.decode, scope_full: sc.full, ...(o.sinks?.length ? { sinks: st.drops.sinks } : {}) };
    const exitCode = r.signal ? 128 + (SIGNALS[r.signal] ?? 0) : (r.code ?? 1);
    const summary = session.summary({ code: exitCode, signal: r.signal }, losses);
    o.write(o.json ? JSON.stringify(summary) : formatSummary(summary));
    return { summary, exitCode };
  } finally {
    if (agent) {
      try {
        await agent.stop();
      } catch {
        /* already stopped */
      }
    }
    for (const g of guards) g.close();
    scope.close();
  }
}
