/**
 * Which exec guard enforces here: `lsm` (the BPF LSM program, pinned, outlives
 * the agent) when BPF LSM is active and the guard loads; else `fanotify`
 * (permission events answered by the agent's worker, as long as the agent
 * runs) when fanotify permission events work; else `detect-only`, with the
 * reason. `enforcement.backend` in the config forces one (auto by default).
 */
import { readFileSync } from 'node:fs';
import type { ProcessContext } from '../process/context.js';
import type { RecordError } from '../kernel/errors.js';
import type { ExecGuardEvent } from './decision.js';
import { sdNotifier } from '../kernel/fanotify.js';
import { FanotifyGuardService, fanotifyUnavailable, type FanotifyStats } from './fanotify.js';
import type { FailMode } from './fanotify-shared.js';
import { procStartTicks } from './guard.js';
import { RulesStore } from './rules-store.js';
import { ExecGuardService } from './service.js';
import { LockHeldError } from '../kernel/lock.js';
import type { ProvenancePolicy } from './abi.js';

export type BackendChoice = 'auto' | 'lsm' | 'fanotify' | 'detect-only';
export type BackendKind = 'lsm' | 'fanotify' | 'detect-only';

export interface EnforcementOptions {
  db: string;
  backend: BackendChoice;
  deadlineMs: number;
  failMode: FailMode;
  loaderGuard: boolean;
  /** interpreters whose reads the LSM guard checks (file_open); null: DEFAULT_INTERPRETERS */
  interpreters?: string[] | null;
  fanotifyMounts: string[] | null;
  onEvent: (ev: ExecGuardEvent) => void;
  process?: ProcessContext;
  onLog: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  onBadRecord?: (e: RecordError) => void;
  /** an LSM guard that cannot load: the error (the CLI words BpfErrors its own way) */
  describeError?: (e: unknown) => string;
  /** the exec policy on marked files (BPF LSM only; the other backends do not apply it) */
  provenance?: ProvenancePolicy;
  /** the agent's vigil_marks map, reused by a guard loaded now */
  marksFd?: () => number | undefined;
}

export interface Enforcement {
  backend: BackendKind;
  /** why not lsm (auto fell back), or why detect-only */
  reason?: string;
  lsm: ExecGuardService | null;
  fanotify: FanotifyGuardService | null;
  revalidate(): void;
  stats(): { backend: BackendKind; reason?: string; fanotify?: FanotifyStats; lsm?: { decisions: number } };
  stop(): Promise<void>;
}

function lsmActive(): boolean {
  try {
    return readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').includes('bpf');
  } catch {
    return false;
  }
}

export async function startEnforcement(o: EnforcementOptions): Promise<Enforcement> {
  const describe = o.describeError ?? ((e: unknown) => (e as Error).message);
  let reason: string | undefined;
  if (o.backend === 'auto' || o.backend === 'lsm') {
    if (o.backend === 'auto' && !lsmActive()) {
      reason = 'BPF LSM is not active (bpf missing from /sys/kernel/security/lsm)';
    } else {
      const svc = new ExecGuardService({
        db: o.db,
        onEvent: o.onEvent,
        ...(o.process ? { process: o.process } : {}),
        onError: (e) => o.onLog('error', `exec guard error: ${(e as Error).message}`),
        ...(o.onBadRecord ? { onBadRecord: o.onBadRecord } : {}),
        ...(o.provenance ? { provenance: o.provenance } : {}),
        ...(o.marksFd ? { marksFd: o.marksFd } : {}),
        loaderGuard: o.loaderGuard,
        ...(o.interpreters ? { interpreters: o.interpreters } : {}),
      });
      try {
        const r = svc.start();
        o.onLog('info', `enforcement: exec guard ${r.adopted ? 'adopted from bpffs' : 'armed'} (BPF LSM)`, { enforcement: 'enforce', backend: 'lsm', adopted: r.adopted, hash_rules: r.hashProgram, origin_in_kernel: r.originProgram });
        return wrap('lsm', undefined, svc, null);
      } catch (e) {
        // another agent holds this guard: not a reason to fall back, a reason not to start
        if (e instanceof LockHeldError) throw e;
        reason = `the BPF LSM guard cannot load: ${describe(e)}`;
        try {
          svc.stop();
        } catch {
          /* nothing to stop */
        }
        if (o.backend === 'lsm') return detectOnly(o, `${reason} (enforcement.backend: lsm)`);
      }
    }
  }
  if (o.backend === 'detect-only') return detectOnly(o, 'enforcement.backend is detect-only');
  const why = fanotifyUnavailable();
  if (why) return detectOnly(o, `${reason ? `${reason}; ` : ''}fanotify permission events unavailable: ${why}`);
  const fan = new FanotifyGuardService({
    db: o.db,
    onEvent: o.onEvent,
    ...(o.process ? { process: o.process } : {}),
    deadlineMs: o.deadlineMs,
    failMode: o.failMode,
    loaderGuard: o.loaderGuard,
    mounts: o.fanotifyMounts,
    onLog: (l, m, f) => o.onLog(l === 'info' ? 'debug' : l, m, f),
  });
  try {
    const r = await fan.start();
    recordBackend(o.db, { backend: 'fanotify', pid: process.pid, startTicks: procStartTicks(process.pid), ...(reason ? { reason } : {}) });
    o.onLog(
      'info',
      `enforcement: fanotify backend (${r.marks} filesystem mark${r.marks === 1 ? '' : 's'}, deadline ${o.deadlineMs} ms, fail-${o.failMode}${o.loaderGuard ? ', loader guard on' : ''})${reason && o.backend === 'auto' ? `: ${reason}` : ''}`,
      { enforcement: 'enforce', backend: 'fanotify', marks: r.marks, deadline_ms: o.deadlineMs, fail_mode: o.failMode, loader_guard: o.loaderGuard, ...(reason ? { lsm_reason: reason } : {}) },
    );
    return wrap('fanotify', reason, null, fan);
  } catch (e) {
    await fan.stop().catch(() => undefined);
    return detectOnly(o, `${reason ? `${reason}; ` : ''}the fanotify backend did not start: ${(e as Error).message}`);
  }
}

function detectOnly(o: EnforcementOptions, reason: string): Enforcement {
  o.onLog('warn', 'enforcement: DETECT-ONLY: no exec guard can run here; events and alerts only, nothing is blocked', { enforcement: 'detect-only', backend: 'detect-only', reason });
  return wrap('detect-only', reason, null, null);
}

function wrap(backend: BackendKind, reason: string | undefined, lsm: ExecGuardService | null, fan: FanotifyGuardService | null): Enforcement {
  return {
    backend,
    ...(reason ? { reason } : {}),
    lsm,
    fanotify: fan,
    revalidate: () => {
      lsm?.revalidate();
      fan?.revalidate();
    },
    stats: () => ({
      backend,
      ...(reason ? { reason } : {}),
      ...(fan ? { fanotify: fan.stats() } : {}),
      ...(lsm ? { lsm: { decisions: lsm.decisions } } : {}),
    }),
    stop: async () => {
      lsm?.stop();
      await fan?.stop();
    },
  };
}

export interface BackendRecord {
  backend: 'fanotify';
  pid: number;
  startTicks: number;
  reason?: string;
}

/** What the running agent enforces with, for `vigil deny` in another process (guard_settings 'backend'). */
export function recordBackend(db: string, r: BackendRecord): void {
  const store = RulesStore.open(db);
  try {
    store.setSetting('backend', JSON.stringify(r));
  } finally {
    store.close();
  }
}

/** The fanotify agent that is running now (its pid alive with the same start time), or null. */
export function liveFanotifyAgent(store: RulesStore): BackendRecord | null {
  const raw = store.setting('backend');
  if (!raw) return null;
  try {
    const r = JSON.parse(raw) as BackendRecord;
    return procStartTicks(r.pid) === r.startTicks ? r : null;
  } catch {
    return null;
  }
}

/** Tell the running fanotify agent to reload the rules now (it also re-reads them every 2 s). */
export function notifyAgent(r: BackendRecord): boolean {
  try {
    process.kill(r.pid, 'SIGUSR2');
    return true;
  } catch {
    return false;
  }
}

/**
 * systemd's watchdog (WatchdogSec, NotifyAccess=main in packaging/vigil.service)
 * pinged from the event loop, when nothing else pings: with the fanotify
 * backend its answering thread pings (a wedged listener is what must be
 * caught); with lsm, detect-only or --no-enforce the event loop does. Returns
 * a stop function; a no-op without $WATCHDOG_USEC.
 */
export function mainWatchdog(): () => void {
  const us = Number(process.env.WATCHDOG_USEC ?? 0);
  const pid = Number(process.env.WATCHDOG_PID ?? process.pid);
  const send = us > 0 && pid === process.pid ? sdNotifier(process.env.NOTIFY_SOCKET) : null;
  if (!send) return () => undefined;
  send('WATCHDOG=1');
  const t = setInterval(() => send('WATCHDOG=1'), Math.max(50, Math.floor(us / 2000)));
  t.unref();
  return () => clearInterval(t);
}
