/**
 * What the agent and the fanotify worker share: the control block (an
 * Int32Array over a SharedArrayBuffer: the rules' generation and the worker's
 * counters, read by the agent without a message), the decision table (an
 * open-addressing hash of (dev, ino) → verdict in a SharedArrayBuffer, written
 * whole by the agent for each rule generation), and the messages.
 */

/** Slots of the control block. */
export const Ctl = {
  GEN: 0,
  EXECS: 1,
  OPENS: 2,
  ALLOWED: 3,
  DENIED: 4,
  SELF: 5,
  DEADLINE: 6,
  ERRORS: 7,
  MARKS: 8,
  HASHES: 9,
  MAX_US: 10,
  OVERFLOW: 11,
  /** 1 while marks are in force (at least one rule), 0 without rules */
  ACTIVE: 12,
  /** total µs spent deciding (read to answer), wraps at 2^31: for means over a bench round */
  SUM_US: 13,
  /** the listener thread's CPU time spent on events, µs (wraps at 2^31) */
  CPU_US: 14,
  /** inode ignore marks placed (files answered FAN_ALLOW with no rule matching: later opens and execs stay in the kernel) */
  IGNORES: 15,
  /** times every ignore mark was removed (a rule change, or the cap of pinned marks reached) */
  FLUSHES: 16,
} as const;
export const CTL_SLOTS = 18;

export const MATCH = { inode: 1, path: 2, sha256: 3 } as const;

/** A verdict: ruleId * 2 + (enforce ? 1 : 0); -1 = no rule. */
export function verdictValue(ruleId: number, enforce: boolean): number {
  return ruleId * 2 + (enforce ? 1 : 0);
}

/**
 * The (dev, ino) table: `cap` slots (a power of two) of three doubles (dev,
 * ino, verdict); dev and ino are exact below 2^53. ino 0 marks an empty slot.
 */
export function buildTable(entries: Array<[dev: number, ino: number, verdict: number]>): { table: SharedArrayBuffer; cap: number } {
  let cap = 16;
  while (cap < entries.length * 2) cap *= 2;
  const sab = new SharedArrayBuffer(cap * 3 * 8);
  const t = new Float64Array(sab);
  for (const [dev, ino, v] of entries) {
    let i = slot(dev, ino, cap);
    while (t[i * 3 + 1] !== 0 && !(t[i * 3] === dev && t[i * 3 + 1] === ino)) i = (i + 1) & (cap - 1);
    if (t[i * 3 + 1] !== 0) continue; // first rule wins (lowest id)
    t[i * 3] = dev;
    t[i * 3 + 1] = ino;
    t[i * 3 + 2] = v;
  }
  return { table: sab, cap };
}

function slot(dev: number, ino: number, cap: number): number {
  // mix the low 32 bits of each (Math.imul: a multiplicative hash)
  const h = Math.imul((ino >>> 0) ^ Math.imul(dev >>> 0, 0x9e3779b1), 0x85ebca6b) ^ ((ino / 4294967296) >>> 0);
  return (h >>> 0) & (cap - 1);
}

export function lookupInode(t: Float64Array, cap: number, dev: number, ino: number): number {
  let i = slot(dev, ino, cap);
  for (let n = 0; n < cap; n++) {
    const k = t[i * 3 + 1];
    if (k === 0) return -1;
    if (k === ino && t[i * 3] === dev) return t[i * 3 + 2]!;
    i = (i + 1) & (cap - 1);
  }
  return -1;
}

export type FailMode = 'open' | 'closed';

export interface FanotifyWorkerData {
  ctl: SharedArrayBuffer;
  selfPid: number;
  deadlineMs: number;
  failMode: FailMode;
  /** FAN_OPEN_PERM marks too: opens of denied files refused (ld.so route, LD_PRELOAD, sh script) */
  loader: boolean;
  /** children of the agent are exempt (reported would_block, exempt) */
  exemptChildren: boolean;
  /** mark only the filesystems holding these paths (default: every filesystem but pseudo ones) */
  mounts: string[] | null;
  /** after FAN_ALLOW for a file no rule matches, an inode ignore mark (see the worker); default true */
  ignoreCache?: boolean;
}

export interface FanotifyRules {
  gen: number;
  table: Float64Array;
  cap: number;
  /** entries in the table */
  entries: number;
  paths: Map<string, number>;
  hashes: Map<string, number>;
  globalMonitor: boolean;
  /** "dev:ino" of files never blocked (vigil's own interpreter) */
  exempt: Set<string>;
}

export interface WorkerTask {
  pid: number;
  tgid: number;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  loginuid: number;
  sessionid: number;
  /** /proc/PID/stat start time, clock ticks */
  startTicks: number;
  comm: string;
}

export interface WorkerDecision {
  type: 'decision';
  pid: number;
  ruleId: number;
  match: number;
  action: number;
  mode: number;
  flags: number;
  /** kernel encoding (major << 20 | minor), as the LSM backend reports it */
  dev: number;
  ino: string;
  path: string;
  /** exec: FAN_OPEN_EXEC_PERM; open: FAN_OPEN_PERM (the loader guard) */
  perm: 'exec' | 'open';
  ktimeNs: string;
  task: WorkerTask;
}

export type WorkerMessage =
  | WorkerDecision
  | { type: 'ready'; wakeFd: number; marks: number }
  | { type: 'mark'; kind: 'filesystem' | 'mount'; path: string; fstype: string; why?: string }
  | { type: 'mark-failed'; path: string; fstype: string; error: string }
  | { type: 'deadline'; pid: number; path: string; failMode: FailMode; deadlineMs: number }
  | { type: 'error'; error: string }
  | { type: 'fatal'; error: string }
  | { type: 'stopped' };
