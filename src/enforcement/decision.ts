/**
 * Decision records of the exec guard (struct vigil_exec_decision) and the
 * events made from them: `exec_blocked` (enforced, EPERM) and `would_block`
 * (monitor mode, or an exempt process).
 */
import { ProcessContext } from '../process/context.js';
import type { ExecGuardEvent } from '../events/schema.js';
import { RecordError } from '../kernel/errors.js';
import { BpfMap, RingBufferReader } from '../kernel/index.js';
import { RecordType, VigilAncestor, VigilExecDecision } from '../events/layouts.js';
import { decodeHeader, decodeTask, type TaskIds } from '../events/records.js';
import { cString, decodeBytes } from '../events/bytes.js';
import { Action, DecisionFlags, HookName, MatchName, modeName } from './abi.js';
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
  /** enum vigil_guard_hook (HookName) */
  hook: number;
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
    hook: v.getUint32(off + F.hook.offset, true),
    ancestors,
    path: Buffer.from(bytes.subarray(p, p + pathLen)),
  };
}

export type { ExecGuardEvent };

export interface EventContext {
  rules?: Map<number, DenyRule>;
  /**
   * The agent's shared process enrichment (ProcessGuid, Hostname, User, Image,
   * Ancestors from its process table). Without one (vigil deny events) a
   * context of its own: the kernel record's comm and ancestors.
   */
  process?: ProcessContext;
  /** which backend decided (default lsm: the BPF LSM guard's ring buffer) */
  backend?: 'lsm' | 'fanotify';
}

let ownContext: ProcessContext | undefined;

/** A decision as an event of the published schema (ExecGuardSchema, docs/schema/event.schema.json). */
export function decisionEvent(d: DecisionRecord, ctx: EventContext = {}): ExecGuardEvent {
  const pc = ctx.process ?? (ownContext ??= new ProcessContext());
  const rule = ctx.rules?.get(d.ruleId);
  const task = pc.taskFields(d.ktimeNs, d.task);
  const target = decodeBytes(d.path);
  // the process table's lineage when it knows the parent (the process itself may not be
  // there yet: its fork comes on another ring), else what the kernel read
  const comm = new Map(d.ancestors.map((a) => [a.tgid, a.comm]));
  const Ancestors = pc.table.get(d.task.ppid)
    ? pc.ancestors({ pid: d.task.tgid, ppid: d.task.ppid }).list.map((a) => (a.Image === '' && comm.has(a.ProcessId) ? { ...a, Image: `[${comm.get(a.ProcessId)}]` } : a))
    : d.ancestors.slice(0, pc.bounds.maxDepth).map((a) => ({ ProcessId: a.tgid, Image: `[${a.comm}]`, CommandLine: '' }));
  const match = MatchName[d.match] ?? 'inode';
  const ev: ExecGuardEvent = {
    category: 'exec_guard',
    ...pc.actor(d.ktimeNs, d.task),
    ParentProcessId: d.task.ppid,
    TargetFilename: target.text,
    Ancestors,
    vigil: {
      ...task,
      action: d.action === Action.BLOCKED ? 'exec_blocked' : 'would_block',
      backend: ctx.backend ?? 'lsm',
      rule: { id: d.ruleId, match, mode: modeName(d.mode) },
      dev: d.fileDev,
      ino: d.fileIno.toString(),
      exempt: (d.flags & DecisionFlags.EXEMPT) !== 0,
      global_monitor: (d.flags & DecisionFlags.GLOBAL_MONITOR) !== 0,
    },
  };
  if ((ctx.backend ?? 'lsm') === 'lsm') {
    const hook = HookName[d.hook];
    if (hook) ev.vigil.hook = hook;
    if (d.flags & DecisionFlags.REPORT_ONLY) ev.vigil.report_only = true;
  }
  if (d.flags & DecisionFlags.PATH_TRUNCATED) ev.vigil.truncated = ['TargetFilename'];
  if (target.raw !== undefined) ev.vigil.raw = { TargetFilename: target.raw };
  if (rule) Object.assign(ev.vigil.rule, { kind: rule.kind, path: rule.path, sha256: rule.sha256, comment: rule.comment });
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
