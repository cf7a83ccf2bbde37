/**
 * The exec guard's fanotify backend, the agent's side: starts the answering
 * worker (fanotify-worker.ts), compiles the stored deny rules into the shared
 * decision table and the posted path and sha256 sets, turns the worker's
 * decisions into the same exec_guard events as the LSM backend (backend
 * "fanotify"), and counts what the worker counted (shared control block).
 *
 * Enforcement lasts as long as the agent runs: when its process ends (or is
 * SIGKILLed) the kernel closes the fanotify group and allows pending events.
 */
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ProcessContext } from '../process/context.js';
import { FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, closeFd, fanotifyInit, fanotifyMark, errnoText } from '../kernel/fanotify.js';
import { decisionEvent, type DecisionRecord, type ExecGuardEvent } from './decision.js';
import { CTL_SLOTS, Ctl, buildTable, verdictValue, type FailMode, type FanotifyWorkerData, type WorkerDecision, type WorkerMessage } from './fanotify-shared.js';
import { procStartTicks } from './guard.js';
import { RulesStore, type DenyRule } from './rules-store.js';

// Always the compiled worker (also when tests run the TypeScript sources), as the SQLite sink does.
const WORKER = fileURLToPath(new URL('../../dist/enforcement/fanotify-worker.js', import.meta.url));

export interface FanotifyOptions {
  db: string;
  onEvent: (ev: ExecGuardEvent) => void;
  process?: ProcessContext;
  /** a decision not ready in this time gets the fail mode (default 250 ms) */
  deadlineMs?: number;
  failMode?: FailMode;
  /** FAN_OPEN_PERM marks too (loader route, LD_PRELOAD, sh script); default true */
  loaderGuard?: boolean;
  /** mark only the filesystems holding these paths (default: every filesystem but pseudo ones) */
  mounts?: string[] | null;
  /** cache allow verdicts in the kernel as inode ignore marks (default true; false: every exec asks the worker, for benchmarks) */
  ignoreCache?: boolean;
  /** re-read the rules every N ms (default 2000; SIGUSR2 from `vigil deny` reloads at once) */
  revalidateMs?: number;
  onLog?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface FanotifyStats {
  backend: 'fanotify';
  execs: number;
  opens: number;
  allowed: number;
  denied: number;
  self: number;
  deadlineMisses: number;
  errors: number;
  marks: number;
  hashes: number;
  maxAnswerUs: number;
  /** µs spent from reading each event to answering it, summed (wraps at 2^32) */
  sumAnswerUs: number;
  /** the listener thread's CPU time on events, µs (wraps at 2^32) */
  cpuUs: number;
  overflow: number;
  /** inode ignore marks placed (allowed files whose next execs and opens stay in the kernel) */
  ignoreMarks: number;
  /** times every ignore mark was removed (rule changes) */
  ignoreFlushes: number;
  /** marks in force (there are rules) */
  active: boolean;
  decisions: number;
  failMode: FailMode;
  deadlineMs: number;
}

/**
 * The exec route the fanotify backend cannot see, in words for `vigil doctor` and
 * `vigil deny list`: fexecve of a memfd (the kernel refuses fanotify marks on the
 * memfd mount, EINVAL), and whether vm.memfd_noexec (Linux 6.3+) closes it here.
 * vigil never sets the sysctl itself: runc and some JIT loaders execute memfds.
 */
export function memfdLimit(): string {
  let v: string | null = null;
  try {
    v = readFileSync('/proc/sys/vm/memfd_noexec', 'utf8').trim();
  } catch {
    v = null;
  }
  const base = 'fexecve of a memfd is not checked (the kernel refuses fanotify marks on the memfd mount: EINVAL)';
  if (v === null) return `${base}; this kernel has no vm.memfd_noexec (Linux 6.3+) to refuse executable memfds`;
  if (v === '2') return `${base}, but vm.memfd_noexec=2 refuses executable memfds on this host`;
  return `${base}; vm.memfd_noexec is ${v}: \`sysctl vm.memfd_noexec=2\` closes the route host-wide (it also refuses the memfds runc and some JIT loaders execute, so vigil does not set it)`;
}

/** Can this host run the fanotify backend? null when yes, else why not (in words). */
export function fanotifyUnavailable(): string | null {
  let fd = -1;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-fan-probe-'));
  try {
    fd = fanotifyInit();
    // an inode mark on a file of our own: nothing else waits on it while we probe
    const f = join(dir, 'probe');
    writeFileSync(f, '');
    const e = fanotifyMark(fd, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, f);
    if (e) return `fanotify_mark(FAN_OPEN_EXEC_PERM): ${errnoText(e)} (needs Linux 5.0+ with CONFIG_FANOTIFY_ACCESS_PERMISSIONS)`;
    return null;
  } catch (err) {
    return `${(err as Error).message} (needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS)`;
  } finally {
    if (fd >= 0) closeFd(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

const CLK_TCK = 100;

export class FanotifyGuardService {
  private worker: Worker | null = null;
  private readonly ctlBuf = new SharedArrayBuffer(CTL_SLOTS * 4);
  private readonly ctl = new Int32Array(this.ctlBuf);
  private wakeFd = -1;
  private gen = 0;
  private timer: NodeJS.Timeout | null = null;
  private rules = new Map<number, DenyRule>();
  private rulesKey = '';
  private readonly onSignal = () => this.revalidateSafe();
  decisions = 0;
  readonly marks: Array<{ kind: string; path: string; fstype: string }> = [];

  constructor(private readonly opts: FanotifyOptions) {}

  get deadlineMs(): number {
    return this.opts.deadlineMs ?? 250;
  }

  get failMode(): FailMode {
    return this.opts.failMode ?? 'open';
  }

  /** Start the worker; resolves once every filesystem is marked and the rules are in force. */
  async start(): Promise<{ marks: number }> {
    const data: FanotifyWorkerData = {
      ctl: this.ctlBuf,
      selfPid: process.pid,
      deadlineMs: this.deadlineMs,
      failMode: this.failMode,
      loader: this.opts.loaderGuard ?? true,
      exemptChildren: true,
      mounts: this.opts.mounts ?? null,
      ignoreCache: this.opts.ignoreCache ?? true,
    };
    const w = new Worker(WORKER, { workerData: data });
    this.worker = w;
    // the rules go first: the worker takes them before it answers anything
    this.revalidate(true);
    const ready = await new Promise<{ marks: number }>((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      w.once('error', onErr);
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          this.wakeFd = m.wakeFd;
          w.off('error', onErr);
          resolve({ marks: m.marks });
        } else if (m.type === 'fatal') reject(new Error(m.error));
        else this.onMessage(m);
      });
      w.once('exit', (code) => reject(new Error(`the fanotify worker exited (${code}) before it was ready`)));
    });
    w.on('error', (e) => this.opts.onLog?.('error', `fanotify worker failed: ${e.message}`));
    // the listener is gone (a bug): its fd table closed with it, so the kernel allows what was
    // pending and nothing is enforced from now on; said once, loudly, and counted
    w.once('exit', (code) => {
      if (this.worker !== w) return; // stopped on purpose
      this.worker = null;
      this.wakeFd = -1;
      Atomics.add(this.ctl, Ctl.ERRORS, 1);
      Atomics.store(this.ctl, Ctl.ACTIVE, 0);
      this.opts.onLog?.('error', `fanotify: the listener thread exited (${code}): deny rules are NOT enforced until the agent restarts`);
    });
    process.on('SIGUSR2', this.onSignal);
    const every = this.opts.revalidateMs ?? 2000;
    if (every > 0) {
      this.timer = setInterval(() => this.revalidateSafe(), every);
      this.timer.unref();
    }
    return ready;
  }

  /** Reload; a store busy with another process's write (SQLITE_BUSY, I/O error mid-checkpoint) is retried a few times. */
  private revalidateSafe(attempt = 0): void {
    try {
      this.revalidate();
    } catch (e) {
      if (attempt < 5 && this.worker) {
        const t = setTimeout(() => this.revalidateSafe(attempt + 1), 50 * (attempt + 1));
        t.unref();
        return;
      }
      this.opts.onLog?.('error', `fanotify guard: reloading the rules failed: ${(e as Error).message} (${(e as { code?: string }).code ?? 'no code'})`);
    }
  }

  private onMessage(m: WorkerMessage): void {
    switch (m.type) {
      case 'decision':
        this.decisions++;
        this.opts.onEvent(this.event(m));
        break;
      case 'mark':
        this.marks.push(m);
        if (this.worker && this.wakeFd >= 0) this.opts.onLog?.('info', `fanotify: marked ${m.kind} ${m.path} (${m.fstype})`, { ...m });
        break;
      case 'mark-failed':
        // the reason is said once: in the record's error field, not again in the message
        this.opts.onLog?.('warn', `fanotify: cannot mark ${m.path} (${m.fstype}); execs there are not checked (the reason and the remedy: error)`, { ...m });
        break;
      case 'deadline':
        this.opts.onLog?.('warn', `fanotify: no decision within ${m.deadlineMs} ms for pid ${m.pid} (the file: path): answered fail-${m.failMode} (${m.failMode === 'open' ? 'allowed' : 'denied'})`, { ...m });
        break;
      case 'error':
      case 'fatal':
        this.opts.onLog?.('error', `fanotify: ${m.error}`);
        break;
      default:
        break;
    }
  }

  private event(m: WorkerDecision): ExecGuardEvent {
    const pc = this.opts.process;
    // the process table's start time when it is that process (ticks are 10 ms)
    let startNs = BigInt(m.task.startTicks) * (1_000_000_000n / BigInt(CLK_TCK));
    const known = pc?.table.get(m.task.tgid);
    if (known && known.startNs / 10_000_000n === startNs / 10_000_000n) startNs = known.startNs;
    const d: DecisionRecord = {
      type: 'exec_decision',
      ktimeNs: BigInt(m.ktimeNs),
      task: { ...m.task, startNs, parentStartNs: 0n, cgroupId: 0n },
      ruleId: m.ruleId,
      fileIno: BigInt(m.ino),
      fileDev: m.dev,
      match: m.match,
      action: m.action,
      mode: m.mode,
      flags: m.flags,
      hook: 0, // (lsm only: not shown for fanotify)
      ancestors: [],
      path: Buffer.from(m.path),
    };
    const ev = decisionEvent(d, { rules: this.rules, backend: 'fanotify', ...(pc ? { process: pc } : {}) });
    if (m.perm === 'open') ev.vigil.perm = 'open';
    return ev;
  }

  /** Reload the rules from the store; a change makes a new decision table (new generation). */
  revalidate(force = false): number {
    // read-only: no journal pragma, no write lock while `vigil deny` writes (the rules' writers are the CLI)
    const store = existsSync(this.opts.db) ? RulesStore.open(this.opts.db, { readonly: true }) : RulesStore.open(this.opts.db);
    let list: DenyRule[];
    let monitor: boolean;
    try {
      list = store.list();
      monitor = store.globalMode() === 'monitor';
    } finally {
      store.close();
    }
    const inodes: Array<[number, number, number]> = [];
    const paths: Array<[string, number]> = [];
    const hashes: Array<[string, number]> = [];
    for (const r of list) {
      const v = verdictValue(r.id, r.mode === 'enforce');
      if (r.kind === 'sha256' && r.sha256) hashes.push([r.sha256, v]);
      if (!r.path) continue;
      let real: string | null = null;
      try {
        real = realpathSync(r.path);
        const st = statSync(real);
        if (st.isFile()) inodes.push([st.dev, st.ino, v]);
      } catch {
        /* not there now: matched by path when it appears */
      }
      if (r.kind === 'path') {
        paths.push([real ?? r.resolvedPath ?? r.path, v]);
        if (r.path !== real) paths.push([r.path, v]);
      }
    }
    const self = statSync(process.execPath);
    const exempt = [`${self.dev}:${self.ino}`];
    const key = JSON.stringify([inodes, paths, hashes, monitor]);
    this.rules = new Map(list.map((r) => [r.id, r]));
    if (!force && key === this.rulesKey) return this.gen;
    this.rulesKey = key;
    const { table, cap } = buildTable(inodes);
    this.gen++;
    this.worker?.postMessage({ type: 'rules', gen: this.gen, table, cap, entries: inodes.length, paths, hashes, globalMonitor: monitor, exempt });
    Atomics.store(this.ctl, Ctl.GEN, this.gen);
    // wake the worker: it takes the rules now (and marks or unmarks when rules appear or go)
    if (this.wakeFd >= 0) {
      try {
        writeSync(this.wakeFd, 'r');
      } catch {
        /* the worker is gone */
      }
    }
    return this.gen;
  }

  stats(): FanotifyStats {
    const c = (i: number) => Atomics.load(this.ctl, i);
    return {
      backend: 'fanotify',
      execs: c(Ctl.EXECS),
      opens: c(Ctl.OPENS),
      allowed: c(Ctl.ALLOWED),
      denied: c(Ctl.DENIED),
      self: c(Ctl.SELF),
      deadlineMisses: c(Ctl.DEADLINE),
      errors: c(Ctl.ERRORS),
      marks: c(Ctl.MARKS),
      hashes: c(Ctl.HASHES),
      maxAnswerUs: c(Ctl.MAX_US),
      sumAnswerUs: c(Ctl.SUM_US) >>> 0,
      cpuUs: c(Ctl.CPU_US) >>> 0,
      overflow: c(Ctl.OVERFLOW),
      ignoreMarks: c(Ctl.IGNORES),
      ignoreFlushes: c(Ctl.FLUSHES),
      active: c(Ctl.ACTIVE) === 1,
      decisions: this.decisions,
      failMode: this.failMode,
      deadlineMs: this.deadlineMs,
    };
  }

  /** Stop answering: the worker closes the group (the kernel allows what is pending). */
  async stop(): Promise<void> {
    process.off('SIGUSR2', this.onSignal);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    const done = new Promise<void>((resolve) => {
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'stopped') resolve();
        else this.onMessage(m);
      });
      w.once('exit', () => resolve());
    });
    w.postMessage({ type: 'stop' });
    if (this.wakeFd >= 0) {
      try {
        writeSync(this.wakeFd, 'x');
      } catch {
        /* the worker is gone already */
      }
    }
    await done;
    await w.terminate();
  }
}
