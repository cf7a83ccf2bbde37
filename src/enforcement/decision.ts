/**
 * Decision records of the exec guard (struct vigil_exec_decision) and the
 * events made from them: `exec_blocked` (enforced, EPERM) and `would_block`
 * (monitor mode, or an exempt process).
 */
import type { ProcessContext } from '../process/context.js';
import { RecordError } from '../kernel/errors.js';
import { BpfMap, RingBufferReader } from '../kernel/index.js';
import { RecordType, VigilAncestor, VigilExecDecision } from '../events/layouts.js';
import { decodeHeader, decodeTask, type TaskIds } from '../events/records.js';
import { cString, decodeBytes } from '../events/bytes.js';
import { Action, DecisionFlags, MatchName, modeName } from './abi.js';
import type { DenyRule } from './rules-store.js';

export interface AncestorIds {
  tgid: number;
  startNs: bigint;
  comm: string;
}

export interface DecisionRecord {
  type: 'exec_decision';
  ktimeNs: bigint;
  task: TaskIds;
  ruleId: number;
  fileIno: bigint;
  fileDev: number;
  match: number;
  action: number;
  mode: number;
  flags: number;
  ancestors: AncestorIds[];
  path: Buffer;
}

export function decodeDecision(v: DataView, bytes: Uint8Array, off: number, len: number): DecisionRecord {
  const h = decodeHeader(v, off, len);
  if (h.type !== RecordType.EXEC_DECISION) throw new RecordError(`record type ${h.type} is not an exec decision`, off);
  const F = VigilExecDecision.fields;
  if (h.size < VigilExecDecision.size) throw new RecordError(`exec decision of ${h.size} bytes, expected at least ${VigilExecDecision.size}`, off);
  const pathLen = v.getUint32(off + F.path_len.offset, true);
  if (VigilExecDecision.size + pathLen > h.size) throw new RecordError(`exec decision path of ${pathLen} bytes overruns the ${h.size}-byte record`, off);
  const n = Math.min(v.getUint32(off + F.n_ancestors.offset, true), F.ancestors.size / VigilAncestor.size);
  const ancestors: AncestorIds[] = [];
  for (let i = 0; i < n; i++) {
    const a = off + F.ancestors.offset + i * VigilAncestor.size;
    const c = a + VigilAncestor.fields.comm.offset;
    ancestors.push({
      tgid: v.getUint32(a + VigilAncestor.fields.tgid.offset, true),
      startNs: v.getBigUint64(a + VigilAncestor.fields.start_ns.offset, true),
      comm: cString(bytes.subarray(c, c + VigilAncestor.fields.comm.size)),
    });
  }
  const p = off + F.path.offset;
  return {
    type: 'exec_decision',
    ktimeNs: h.ktimeNs,
    task: decodeTask(v, bytes, off + F.task.offset),
    ruleId: Number(v.getBigUint64(off + F.rule_id.offset, true)),
    fileIno: v.getBigUint64(off + F.file_ino.offset, true),
    fileDev: v.getUint32(off + F.file_dev.offset, true),
    match: v.getUint32(off + F.match.offset, true),
    action: v.getUint32(off + F.action.offset, true),
    mode: v.getUint32(off + F.mode.offset, true),
    flags: v.getUint32(off + F.flags.offset, true),
    ancestors,
    path: Buffer.from(bytes.subarray(p, p + pathLen)),
  };
}

export interface AncestorInfo {
  pid: number;
  comm: string;
  /** from the agent's process table when it knows the process */
  image?: string;
  commandLine?: string;
}

export interface ExecGuardEvent {
  category: 'exec_guard';
  /** with the agent's shared process context: the same identity every sensor's events carry */
  Hostname?: string;
  ProcessId?: number;
  ProcessGuid?: string;
  Image?: string;
  User?: string;
  action: 'exec_blocked' | 'would_block';
  /** epoch ms */
  ts: number;
  /** the same instant, ISO-8601 (what every vigil event carries) */
  timestamp: string;
  ktime_ns: string;
  rule: { id: number; match: 'inode' | 'path' | 'sha256'; mode: string; kind?: string; path?: string | null; sha256?: string | null; comment?: string | null };
  /** the process that tried to exec (before the exec: its old image) */
  process: { pid: number; tgid: number; ppid: number; uid: number; euid: number; gid: number; comm: string; start_ns: string; cgroup_id: string; loginuid: number };
  ancestors: AncestorInfo[];
  file: { path: string; path_truncated: boolean; dev: number; ino: string };
  /** allowed because it is PID 1 or vigil itself */
  exempt: boolean;
  /** allowed because the global mode is monitor */
  global_monitor: boolean;
}

export interface EventContext {
  rules?: Map<number, DenyRule>;
  /** richer ancestors from the agent's process table */
  ancestors?: (pid: number) => AncestorInfo[] | undefined;
  /** CLOCK_BOOTTIME ns -> epoch ms */
  toEpochMs?: (ktimeNs: bigint) => number;
  /** the agent's shared process enrichment (ProcessGuid, Hostname, User, Image) */
  process?: ProcessContext;
}

export function decisionEvent(d: DecisionRecord, ctx: EventContext = {}): ExecGuardEvent {
  const rule = ctx.rules?.get(d.ruleId);
  const ts = ctx.toEpochMs ? ctx.toEpochMs(d.ktimeNs) : Date.now();
  const ev: ExecGuardEvent = {
    category: 'exec_guard',
    action: d.action === Action.BLOCKED ? 'exec_blocked' : 'would_block',
    ts,
    timestamp: new Date(ts).toISOString(),
    ktime_ns: d.ktimeNs.toString(),
    rule: { id: d.ruleId, match: MatchName[d.match] ?? 'inode', mode: modeName(d.mode) },
    process: {
      pid: d.task.pid, tgid: d.task.tgid, ppid: d.task.ppid, uid: d.task.uid, euid: d.task.euid, gid: d.task.gid,
      comm: d.task.comm, start_ns: d.task.startNs.toString(), cgroup_id: d.task.cgroupId.toString(), loginuid: d.task.loginuid,
    },
    ancestors: ctx.ancestors?.(d.task.tgid) ?? d.ancestors.map((a) => ({ pid: a.tgid, comm: a.comm })),
    file: { path: decodeBytes(d.path).text, path_truncated: (d.flags & DecisionFlags.PATH_TRUNCATED) !== 0, dev: d.fileDev, ino: d.fileIno.toString() },
    exempt: (d.flags & DecisionFlags.EXEMPT) !== 0,
    global_monitor: (d.flags & DecisionFlags.GLOBAL_MONITOR) !== 0,
  };
  if (ctx.process) {
    const a = ctx.process.actor(d.ktimeNs, d.task);
    Object.assign(ev, { Hostname: a.Hostname, ProcessId: a.ProcessId, ProcessGuid: a.ProcessGuid, Image: a.Image, User: a.User });
  }
  if (rule) Object.assign(ev.rule, { kind: rule.kind, path: rule.path, sha256: rule.sha256, comment: rule.comment });
  return ev;
}

/** Reads decision records from the guard's (pinned) ring buffer on the event loop. */
export class DecisionReader {
  private readonly reader: RingBufferReader;

  constructor(events: BpfMap, onDecision: (d: DecisionRecord) => void, onBad?: (e: RecordError) => void) {
    this.reader = new RingBufferReader(events, (view, bytes, off, len) => onDecision(decodeDecision(view, bytes, off, len)), {
      onHandlerError: (e) => {
        if (e instanceof RecordError) onBad?.(e);
      },
    });
  }

  /** records that failed to decode (or whose handling threw), counted and skipped */
  get badRecords(): number {
    return this.reader.stats.handlerErrors;
  }

  start(onError?: (e: unknown) => void): void {
    this.reader.start(onError);
  }

  /** Handle whatever is in the ring now (synchronously). */
  drain(): number {
    return this.reader.drain();
  }

  close(): void {
    this.reader.close();
  }
}
