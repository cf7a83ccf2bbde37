/**
 * Tamper protection of origin records (docs/provenance.md TAMPERING): with BPF
 * LSM, while `vigil run --provenance MODE` runs, bpf/provenance/tamper.bpf.c
 * (lsm/inode_setxattr, lsm/inode_removexattr) refuses with EPERM every set,
 * rewrite or removal of an attribute named trusted.vigil.* or security.bpf.vigil.* by a process that
 * is not vigil, root and the file's owner included, and reports each attempt.
 *
 * vigil's own processes are exempt through the map tamper_exempt (tgid → start
 * time in clock ticks: a reused pid is not exempt). The agent pins it at
 * TAMPER_EXEMPT_PIN so that `vigil provenance mark|clear` (another process) can
 * exempt itself for the time of its change, and so that two agents share one
 * set of exemptions (each writes records the other's hook checks). The hooks
 * themselves are not pinned: they detach when the agent exits.
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { BpfMap, BpfObject, RingBufferReader } from '../kernel/index.js';
import { checkLayouts } from '../events/layouts.js';
import { f, VigilHdr, VigilTask, type Layout } from '../events/layouts.js';
import { decodeHeader, decodeTask, type TaskIds } from '../events/records.js';
import { cString } from '../events/bytes.js';
import { procStartTicks, pruneGoneProcesses } from '../enforcement/index.js';
import { readKernelStats, sensorObjectPath } from '../sensors/bpf-sensor.js';
import type { ProcessContext } from '../process/context.js';
import type { ProvenanceTamperEvent } from '../events/schema.js';

export const TAMPER_OBJECT = 'tamper.bpf.o';
/** the exemptions, shared by every agent and `vigil provenance mark|clear` */
export const TAMPER_EXEMPT_PIN = '/sys/fs/bpf/vigil/provenance/tamper_exempt';

/** enum vigil_tamper_record_type (bpf/provenance/tamper.h: 72..79) */
export const TamperRecordType = { XATTR_TAMPER: 72 } as const;
/** enum vigil_tamper_stat (this object's vigil_stats slots) */
export const TamperStat = { TAMPER_SET: 16, TAMPER_REMOVE: 17 } as const;
/** enum vigil_tamper_op */
export const TamperOp = { SET: 1, REMOVE: 2 } as const;

const B = VigilHdr.size + VigilTask.size;

export const VigilXattrTamper = {
  name: 'vigil_xattr_tamper',
  size: B + 56,
  fields: {
    hdr: f(0, VigilHdr.size, 'vigil_hdr'),
    task: f(VigilHdr.size, VigilTask.size, 'vigil_task'),
    ino: f(B, 8),
    dev: f(B + 8, 4),
    owner: f(B + 12, 4),
    op: f(B + 16, 4),
    _pad0: f(B + 20, 4),
    name: f(B + 24, 32),
  },
} as const satisfies Layout;

export const VigilTamperExempt = { name: 'vigil_tamper_exempt', size: 8, fields: { start_ticks: f(0, 8) } } as const satisfies Layout;

export const TAMPER_LAYOUTS: Layout[] = [VigilXattrTamper, VigilTamperExempt];

/** One refused attempt, as the kernel reported it. */
export interface TamperAttempt {
  ktimeNs: bigint;
  task: TaskIds;
  dev: number;
  ino: bigint;
  /** the file's owner (uid) */
  owner: number;
  op: 'set' | 'remove';
  /** the attribute's name (cut at 31 bytes) */
  name: string;
}

export function decodeTamper(v: DataView, b: Uint8Array, off: number): TamperAttempt {
  const F = VigilXattrTamper.fields;
  const n = off + F.name.offset;
  return {
    ktimeNs: decodeHeader(v, off, VigilXattrTamper.size).ktimeNs,
    task: decodeTask(v, b, off + F.task.offset),
    ino: v.getBigUint64(off + F.ino.offset, true),
    dev: v.getUint32(off + F.dev.offset, true),
    owner: v.getUint32(off + F.owner.offset, true),
    op: v.getUint32(off + F.op.offset, true) === TamperOp.REMOVE ? 'remove' : 'set',
    name: cString(b.subarray(n, n + F.name.size)),
  };
}

/** A refused attempt as an event of the published schema (provenance_tamper). */
export function tamperEvent(a: TamperAttempt, pc: ProcessContext, path: string | null): ProvenanceTamperEvent {
  return {
    category: 'provenance_tamper',
    ...pc.actor(a.ktimeNs, a.task),
    TargetFilename: path ?? '',
    vigil: {
      ...pc.taskFields(a.ktimeNs, a.task),
      action: a.op === 'set' ? 'xattr_set_refused' : 'xattr_remove_refused',
      attribute: a.name,
      dev: a.dev,
      ino: a.ino.toString(),
      owner: a.owner,
    },
  };
}

function tgidKey(pid: number): Buffer {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(pid >>> 0);
  return k;
}

function exemptValue(pid: number): Buffer {
  const v = Buffer.alloc(VigilTamperExempt.size);
  v.writeBigUInt64LE(BigInt(procStartTicks(pid)));
  return v;
}

export interface TamperGuardOptions {
  onAttempt: (a: TamperAttempt) => void;
  /** before each batch of records: read the process sensor's ring first (the agent's syncProcesses) */
  beforeBatch?: () => void;
  /** where the exemptions are pinned (tests) */
  exemptPin?: string;
}

export class TamperGuard {
  private readonly obj: BpfObject;
  private readonly reader: RingBufferReader;
  private readonly exemptMap: BpfMap;
  private closed = false;
  private readonly beforeBatch: (() => void) | undefined;

  /**
   * Load and attach the hooks (BPF LSM); this process is exempt before they
   * attach. Throws the loader's error where BPF LSM is unavailable.
   */
  constructor(opts: TamperGuardOptions) {
    const pin = opts.exemptPin ?? TAMPER_EXEMPT_PIN;
    this.beforeBatch = opts.beforeBatch;
    const obj = BpfObject.open(sensorObjectPath(TAMPER_OBJECT), { maxEntries: { events: 64 * 1024 } });
    let pinned: BpfMap | null = null;
    try {
      const drift = checkLayouts(obj.btf(), TAMPER_LAYOUTS, TAMPER_LAYOUTS.map((l) => l.name));
      if (drift.length) throw new Error(`${TAMPER_OBJECT}: record layouts differ from the TypeScript ones: ${drift.map((d) => `${d.layout}: ${d.problem}`).join('; ')}`);
      // another agent's (or a previous one's) exemptions: one set for all
      if (existsSync(pin)) {
        try {
          pinned = BpfMap.openPinned(pin);
          obj.reuseMap('tamper_exempt', pinned.fd);
        } catch {
          // not a map of this layout (an older vigil): replace it
          pinned?.close();
          pinned = null;
          unlinkSync(pin);
        }
      }
      obj.load();
      this.exemptMap = obj.map('tamper_exempt');
      if (!pinned) {
        mkdirSync(dirname(pin), { recursive: true, mode: 0o700 });
        this.exemptMap.pin(pin);
      }
      pruneGoneProcesses(this.exemptMap); // exemptions of processes gone or replaced
      this.exemptMap.update(tgidKey(process.pid), exemptValue(process.pid));
      this.reader = new RingBufferReader(
        obj.map('events'),
        (v, b, off, len) => {
          const h = decodeHeader(v, off, len);
          if (h.type !== TamperRecordType.XATTR_TAMPER) return;
          opts.onAttempt(decodeTamper(v, b, off));
        },
        { budget: 1024, ...(opts.beforeBatch ? { beforeBatch: opts.beforeBatch } : {}) },
      );
      obj.attachAll();
      this.reader.start();
      this.obj = obj;
    } catch (e) {
      obj.close();
      throw e;
    } finally {
      pinned?.close();
    }
  }

  /** Refusals the kernel counted (not the records read: a full ring still counts). */
  counts(): { set: number; remove: number; lost?: number } {
    const k = readKernelStats(this.obj.map('vigil_stats'), { [TamperStat.TAMPER_SET]: 'set', [TamperStat.TAMPER_REMOVE]: 'remove' });
    return { set: k.set ?? 0, remove: k.remove ?? 0, ...(k.rb_full ? { lost: k.rb_full } : {}) };
  }

  drain(): void {
    this.beforeBatch?.();
    this.reader.drain();
  }

  /** Detach the hooks (the pinned exemptions stay for other agents; this process leaves them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.drain();
    this.reader.close();
    try {
      this.exemptMap.delete(tgidKey(process.pid));
    } catch {
      /* gone */
    }
    this.obj.close();
  }
}

/**
 * Run `f` (a change of this process to a vigil attribute: `vigil provenance
 * mark|clear`) exempt from a running agent's tamper protection. Without a
 * pinned exemption map (no agent with tamper protection) it just runs `f`.
 */
export function withTamperExemption<T>(f: () => T, pin = TAMPER_EXEMPT_PIN): T {
  let m: BpfMap | null = null;
  if (existsSync(pin)) {
    try {
      m = BpfMap.openPinned(pin);
      m.update(tgidKey(process.pid), exemptValue(process.pid));
    } catch {
      m?.close();
      m = null;
    }
  }
  try {
    return f();
  } finally {
    if (m) {
      try {
        m.delete(tgidKey(process.pid));
      } catch {
        /* gone */
      }
      m.close();
    }
  }
}
