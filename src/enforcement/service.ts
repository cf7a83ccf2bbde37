/**
 * What the CLI and the agent call: add/remove rules and apply them to the
 * kernel (arming the guard when needed), run the guard inside the agent
 * (decision events, periodic re-validation), probe what this kernel enforces.
 */
import type { ProcessContext } from '../process/context.js';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import type { RecordError } from '../kernel/errors.js';
import { acquireLock, type FileLock } from '../kernel/lock.js';
import { makePrivateDir } from '../store/files.js';
import { DEFAULT_PIN_DIR, type GuardMapName, type Mode, type ProvenancePolicy } from './abi.js';
import type { BpfMap } from '../kernel/index.js';
import { DecisionReader, decisionEvent, type ExecGuardEvent } from './decision.js';
import { DEFAULT_INTERPRETERS, ExecGuard, defaultObjectPath, resolveFile, type ReconcileResult } from './guard.js';
import { RulesStore, type DenyRule } from './rules-store.js';

export interface GuardLocation {
  db: string;
  pinDir?: string;
}

export function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path).on('error', rej).on('data', (d) => h.update(d)).on('end', () => res(h.digest('hex')));
  });
}

export interface AddRuleInput {
  path?: string;
  /** hex digest; `true` = hash `path` now */
  sha256?: string | true;
  mode?: Mode;
  comment?: string;
}

export async function makeRule(input: AddRuleInput): Promise<Omit<DenyRule, 'id' | 'createdMs'>> {
  const mode = input.mode ?? 'enforce';
  const comment = input.comment ?? null;
  const path = input.path ? (isAbsolute(input.path) ? input.path : resolve(input.path)) : null;
  if (input.sha256 !== undefined) {
    let digest: string;
    if (input.sha256 === true) {
      if (!path) throw new Error('--sha256 without a digest needs a PATH to hash');
      digest = await sha256File(path);
    } else {
      digest = input.sha256.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`--sha256: not a sha256 digest (64 hex digits): ${input.sha256}`);
    }
    return { kind: 'sha256', path, resolvedPath: path ? (resolveFile(path)?.realPath ?? null) : null, sha256: digest, mode, comment };
  }
  if (!path) throw new Error('give a PATH or --sha256 HEX');
  const id = resolveFile(path);
  if (!id && existsSync(path)) throw new Error(`${path} is not a regular file`);
  return { kind: 'path', path, resolvedPath: id?.realPath ?? null, sha256: null, mode, comment };
}

/** Arm (or adopt) the guard and make its maps match the rules in the store. */
export function applyRules(
  loc: GuardLocation,
  opts: { arm?: boolean } = {},
): { result: ReconcileResult; armedNow: boolean; hashProgram: boolean; hashUnavailable?: string } | null {
  const pinDir = loc.pinDir ?? DEFAULT_PIN_DIR;
  if (!opts.arm && !ExecGuard.isArmed(pinDir)) return null;
  const store = RulesStore.open(loc.db);
  try {
    const { guard, loaded, hashUnavailable } = ExecGuard.arm({ pinDir });
    try {
      if (loaded) guard.allowFile(process.execPath);
      const result = guard.reconcile(store.list(), store.globalMode());
      return { result, armedNow: loaded, hashProgram: guard.hashProgram, ...(hashUnavailable ? { hashUnavailable } : {}) };
    } finally {
      guard.close();
    }
  } finally {
    store.close();
  }
}

/** Where the lock of a pinned guard lives (bpffs holds no regular files): /run/vigil/guard<pin dir>.lock. */
export const GUARD_LOCK_DIR = '/run/vigil';
export function guardLockPath(pinDir: string = DEFAULT_PIN_DIR): string {
  return `${GUARD_LOCK_DIR}/guard${pinDir.replace(/[^A-Za-z0-9.-]+/g, '_')}.lock`;
}

/**
 * Throw LockHeldError when another agent holds the guard at `pinDir` (checked
 * before anything else starts; ExecGuardService.start takes the lock itself).
 */
export function checkGuardLock(pinDir: string = DEFAULT_PIN_DIR): void {
  const path = guardLockPath(pinDir);
  if (!existsSync(path)) return;
  acquireLock(pinDir, path).release();
}

export interface GuardServiceOptions extends GuardLocation {
  onEvent: (ev: ExecGuardEvent) => void;
  /** the agent's shared process enrichment (identity, time, Ancestors from its process table) */
  process?: ProcessContext;
  /** re-resolve path rules and pick up rule changes every N ms (default 2000) */
  revalidateMs?: number;
  onBadRecord?: (e: RecordError) => void;
  onError?: (e: unknown) => void;
  /** the exec policy on marked files this agent sets in the guard (default off) */
  provenance?: ProvenancePolicy;
  /** the agent's vigil_marks map (its sensors'), reused when the guard is loaded now */
  marksFd?: () => number | undefined;
  /** files read by an interpreter (file_open): refused when true (enforcement.loader_guard, default), else reported */
  loaderGuard?: boolean;
  /** interpreters' executables whose reads are checked (enforcement.interpreters; default DEFAULT_INTERPRETERS) */
  interpreters?: string[];
}

/**
 * The guard inside the agent: arms or adopts the pinned guard, exempts the
 * agent, reads decisions, re-validates rules on a timer. stop() leaves the
 * enforcement pinned (it outlives the agent: `vigil disarm` removes it).
 */
export class ExecGuardService {
  private guard: ExecGuard | null = null;
  private reader: DecisionReader | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rules = new Map<number, DenyRule>();
  adopted = false;
  decisions = 0;
  private lock: FileLock | null = null;

  constructor(private readonly opts: GuardServiceOptions) {}

  /**
   * Arm or adopt the guard. One agent per pinned guard: a second one gets
   * LockHeldError (naming the holder's pid) before it touches the pins.
   */
  start(): { adopted: boolean; hashProgram: boolean; hashUnavailable?: string; originProgram: boolean; originUnavailable?: string } {
    const pinDir = this.opts.pinDir ?? DEFAULT_PIN_DIR;
    makePrivateDir(GUARD_LOCK_DIR);
    this.lock = acquireLock(pinDir, guardLockPath(pinDir));
    try {
      return this.arm();
    } catch (e) {
      this.stop();
      throw e;
    }
  }

  private arm(): { adopted: boolean; hashProgram: boolean; hashUnavailable?: string; originProgram: boolean; originUnavailable?: string } {
    const marksFd = this.opts.marksFd?.();
    const { guard, loaded, hashUnavailable, originUnavailable } = ExecGuard.arm({ ...(this.opts.pinDir ? { pinDir: this.opts.pinDir } : {}), ...(marksFd !== undefined ? { marksFd } : {}) });
    this.guard = guard;
    this.adopted = !loaded;
    guard.setProvenancePolicy(this.opts.provenance ?? 'off');
    guard.setScriptPolicy(this.opts.loaderGuard === false ? 'report' : 'refuse');
    guard.setInterpreters(this.opts.interpreters ?? DEFAULT_INTERPRETERS);
    guard.pruneAllowedProcesses();
    guard.allowProcess(process.pid);
    guard.allowFile(process.execPath);
    this.revalidate();
    this.reader = new DecisionReader(guard.map('events'), (d) => {
      this.decisions++;
      this.opts.onEvent(decisionEvent(d, { rules: this.rules, ...(this.opts.process ? { process: this.opts.process } : {}) }));
    }, this.opts.onBadRecord);
    this.reader.start(this.opts.onError);
    const every = this.opts.revalidateMs ?? 2000;
    if (every > 0) {
      this.timer = setInterval(() => {
        try {
          this.revalidate();
        } catch (e) {
          this.opts.onError?.(e);
        }
      }, every);
      this.timer.unref();
    }
    return {
      adopted: this.adopted, hashProgram: guard.hashProgram, ...(hashUnavailable ? { hashUnavailable } : {}),
      originProgram: guard.originProgram, ...(originUnavailable ? { originUnavailable } : {}),
    };
  }

  /** Reload rules from the store and reconcile the maps (cheap: stats + map lookups). */
  revalidate(): ReconcileResult | null {
    if (!this.guard) return null;
    if (!ExecGuard.isArmed(this.guard.pinDir)) return null; // disarmed deliberately: do not re-arm
    const store = RulesStore.open(this.opts.db);
    try {
      const list = store.list();
      this.rules = new Map(list.map((r) => [r.id, r]));
      return this.guard.reconcile(list, store.globalMode());
    } finally {
      store.close();
    }
  }

  drain(): number {
    return this.reader?.drain() ?? 0;
  }

  /** the armed guard reads marks from files' security.bpf.vigil.mark at exec (Linux 6.15+) */
  get originProgram(): boolean {
    return this.guard?.originProgram ?? false;
  }

  /** A pinned map of the armed guard (provenance: vigil_marks, prov_allow), null when not armed. */
  map(name: GuardMapName): BpfMap | null {
    return this.guard?.map(name) ?? null;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.reader?.drain();
    this.reader?.close();
    this.reader = null;
    this.guard?.close();
    this.guard = null;
    this.lock?.release();
    this.lock = null;
  }
}

export interface EnforcementProbe {
  /** bpf is in /sys/kernel/security/lsm */
  lsmActive: boolean;
  /** the guard loaded and attached here (then detached again) */
  canLoadLsm: boolean;
  /** the sha256 (IMA, sleepable) program loaded too */
  hashRules: boolean;
  /** why it did not (the kernel's refusal, in words) */
  hashUnavailable?: string;
  /** the in-kernel origin programs (security.bpf.vigil.mark read at exec, 6.15+) loaded too */
  originRules: boolean;
  /** why they did not */
  originUnavailable?: string;
  /** the object file tried (exec_guard.bpf.o or exec_guard.compat.bpf.o) */
  object: string;
  level: 'enforce' | 'detect-only';
  reason?: string;
  /** the load or attach failure, when canLoadLsm is false */
  error?: Error;
}

/**
 * Try the guard for real: load and attach it into a scratch pin directory and
 * remove it again. Does not touch an armed guard.
 */
export async function probeEnforcement(): Promise<EnforcementProbe> {
  let lsmActive = false;
  try {
    lsmActive = readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').includes('bpf');
  } catch {
    /* securityfs not mounted */
  }
  const pinDir = `/sys/fs/bpf/vigil-probe-${process.pid}`;
  const object = basename(defaultObjectPath());
  try {
    const { guard, hashUnavailable, originUnavailable } = ExecGuard.arm({ pinDir, ringBytes: 4096 * 4 });
    const hashRules = guard.hashProgram;
    const originRules = guard.originProgram;
    guard.close();
    ExecGuard.disarm(pinDir);
    const base = { lsmActive, canLoadLsm: true, hashRules, object, ...(hashUnavailable ? { hashUnavailable } : {}), originRules, ...(originUnavailable ? { originUnavailable } : {}) };
    if (!lsmActive) {
      return { ...base, level: 'detect-only', reason: 'the guard loads, but bpf is not in the active LSM list (/sys/kernel/security/lsm): add lsm=...,bpf to the kernel command line' };
    }
    return { ...base, level: 'enforce' };
  } catch (e) {
    try {
      ExecGuard.disarm(pinDir);
    } catch {
      /* nothing pinned */
    }
    const msg = (e as Error).message;
    const reason = !lsmActive
      ? `BPF LSM is not active (bpf missing from /sys/kernel/security/lsm; boot with lsm=...,bpf): ${msg}`
      : `the exec guard did not load: ${msg}`;
    return { lsmActive, canLoadLsm: false, hashRules: false, originRules: false, object, level: 'detect-only', reason, error: e as Error };
  }
}
