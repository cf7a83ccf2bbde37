/**
 * The agent's provenance service (docs/provenance.md): turns the file
 * sensor's file_provenance events (the kernel already marked the inode) into
 * an origin record on the file (xattr trusted.vigil.origin) and in the store,
 * and re-arms stored marks in the kernel's vigil_marks map at start.
 * With the exec guard (BPF LSM) it also keeps the guard's allow maps
 * (prov_allow, and prov_allow_uid for rules on the exec uid) equal to what the
 * allow rules match, adds the origin to the guard's decisions on
 * marked files, and in soak mode learns allow rules for review.
 */
import { statSync } from 'node:fs';
import { kernelDev } from '../enforcement/index.js';
import { markKey, markUidKey, markValue, TaintFlags, VigilMark } from '../events/taint.js';
import type { BpfMap } from '../kernel/index.js';
import { setXattr } from '../kernel/xattr.js';
import { encodeOrigin, ORIGIN_XATTR, type OriginRecord } from './format.js';
import type { ProvenanceStore } from './store.js';
import { TamperGuard, tamperEvent } from './tamper.js';
import { writeMarkXattr } from './mark-xattr.js';
import type { ProcessContext } from '../process/context.js';
import { allowedBy, allowValue, applyAllowed, narrowest, resolveAllowed, type AllowDimension, type AllowRule, type AllowStore, type AllowSubject } from './allow.js';

export const PROVENANCE_MODES = ['off', 'monitor', 'soak', 'enforce'] as const;
export type ProvenanceMode = (typeof PROVENANCE_MODES)[number];

export interface ProvenanceCounters {
  /** file_provenance events handled */
  marks: number;
  /** origin records written on files */
  xattr_written: number;
  /** xattr writes refused (file system without trusted xattrs, read-only, gone): the store still has the mark */
  xattr_failed: number;
  store_failed: number;
  /** the path no longer names the marked inode (renamed, deleted, replaced) or was cut: no record written */
  moved: number;
  /** marks put back in the kernel from the store at start */
  rearmed: number;
  /** stored marks whose file is gone or replaced: not re-armed */
  rearm_skipped: number;
  /** execs of a marked file (monitor: reported, not blocked) */
  marked_execs: number;
  /** exec guard decisions on marked files (blocked, or would be) */
  decisions: number;
  /** soak: allow rules learned (new pending rules) */
  learned: number;
  /** marked inodes in the guard's allow map (prov_allow: for every uid) after the last full resolution */
  allowed: number;
  /** (marked inode, exec uid) pairs in prov_allow_uid (rules on the exec uid) after the last full resolution */
  allowed_uid: number;
  /** tamper protection: changes to vigil's attributes by other processes refused (the kernel's count) */
  tamper_refused: number;
}

/** An exec of a marked file, as the monitor reports it (nothing is blocked in this version). */
export interface MarkedExec {
  image: string;
  pid: number;
  dev: number;
  ino: string;
  depth: number;
  /** the stored origin record, when the store has it */
  record: OriginRecord | null;
}

export interface ProvenanceServiceOptions {
  mode: ProvenanceMode;
  store: ProvenanceStore | null;
  /** this machine's name (records say where they were marked) */
  host: string;
  onError?: (e: unknown, what: string) => void;
  /** a marked file was executed (process_creation of an exe whose inode is marked in the kernel) */
  onMarkedExec?: (x: MarkedExec) => void;
  /** allow rules (the same database); null: none (no store) */
  allow?: AllowStore | null;
  /** soak: the dimensions a learned rule is made in, one rule per dimension (default: path) */
  soakDimensions?: readonly AllowDimension[];
  /** re-read the allow rules every N ms while the guard is attached (default 2000; 0: never) */
  allowPollMs?: number;
}

const HOSTS_MAX = 4096;

export class ProvenanceService {
  readonly counters: ProvenanceCounters = { marks: 0, xattr_written: 0, xattr_failed: 0, store_failed: 0, moved: 0, rearmed: 0, rearm_skipped: 0, marked_execs: 0, decisions: 0, learned: 0, allowed: 0, allowed_uid: 0, tamper_refused: 0 };
  /** the exec guard's prov_allow map (BPF LSM), when attached */
  private allowMap: BpfMap | null = null;
  /** its prov_allow_uid map (rules on the exec uid) */
  private allowUidMap: BpfMap | null = null;
  private allowRules: AllowRule[] = [];
  private allowSig = '';
  private allowTimer: NodeJS.Timeout | null = null;
  private marks: BpfMap | null = null;
  private tamper: TamperGuard | null = null;
  private readonly xattrErrors = new Set<string>();
  /** remote address → the name it was resolved from (the network sensor's DestinationHostname) */
  private readonly hosts = new Map<string, string>();

  constructor(private readonly opts: ProvenanceServiceOptions) {}

  get mode(): ProvenanceMode {
    return this.opts.mode;
  }

  /** Put the stored marks whose files are still there back in the kernel's map. */
  rearm(marks: BpfMap | undefined | null): void {
    this.marks = marks ?? null;
    if (!marks || !this.opts.store) return;
    for (const m of this.opts.store.all()) {
      try {
        const st = statSync(m.path, { bigint: true });
        if (kernelDev(st.dev) !== m.dev || st.ino.toString() !== m.ino) {
          this.counters.rearm_skipped++;
          continue;
        }
        marks.update(markKey(m.dev, BigInt(m.ino)), markValue(m.depth, m.record.kind === 'derived' ? TaintFlags.FILE : TaintFlags.NET));
        this.counters.rearmed++;
      } catch {
        this.counters.rearm_skipped++;
      }
    }
  }

  /**
   * The exec guard enforces the policy (BPF LSM): keep its prov_allow and
   * prov_allow_uid maps equal to what the active allow rules match, now and
   * whenever the rules change.
   */
  attachGuard(allowMap: BpfMap, allowUidMap: BpfMap): void {
    this.allowMap = allowMap;
    this.allowUidMap = allowUidMap;
    this.resolveAllow(true);
    const every = this.opts.allowPollMs ?? 2000;
    if (every > 0 && this.opts.allow) {
      this.allowTimer = setInterval(() => {
        try {
          this.resolveAllow(false);
        } catch (e) {
          this.opts.onError?.(e, 'allow rules');
        }
      }, every);
      this.allowTimer.unref();
    }
  }

  /** Re-read the rules; when they changed (or `force`), resolve every mark again. */
  resolveAllow(force: boolean): void {
    if (!this.allowMap) return;
    const sig = this.opts.allow?.signature() ?? '';
    if (!force && sig === this.allowSig) return;
    this.allowSig = sig;
    this.allowRules = this.opts.allow?.list('active') ?? [];
    const want = resolveAllowed(this.allowRules, this.opts.store, this.marks);
    applyAllowed(this.allowMap, want.inode);
    if (this.allowUidMap) applyAllowed(this.allowUidMap, want.uid);
    this.counters.allowed = want.inode.size;
    this.counters.allowed_uid = want.uid.size;
  }

  /**
   * An exec guard decision: one on a marked file gets the file's origin record,
   * and in soak mode the narrowest rule per configured dimension is stored for review.
   */
  decision(ev: Record<string, unknown>): void {
    const v = ev.vigil as { rule?: { match?: string; mode?: string }; dev?: number; ino?: string; origin?: unknown; learned?: number[] } | undefined;
    if (!v || v.rule?.match !== 'provenance' || typeof v.dev !== 'number' || typeof v.ino !== 'string') return;
    this.counters.decisions++;
    try {
      const stored = this.opts.store?.get(v.dev, v.ino) ?? null;
      if (stored) v.origin = stored.record as unknown as Record<string, unknown>;
      if (v.rule.mode !== 'soak' || !this.opts.allow) return;
      const execUid = (ev.vigil as { uid?: unknown }).uid;
      const subject: AllowSubject = {
        path: typeof ev.TargetFilename === 'string' && ev.TargetFilename.startsWith('/') ? ev.TargetFilename : null,
        record: stored?.record ?? null,
        ...(typeof execUid === 'number' ? { execUid } : {}),
      };
      const ids: number[] = [];
      for (const d of this.opts.soakDimensions ?? ['path']) {
        const c = narrowest(d, subject);
        if (!c) continue;
        const { rule, added } = this.opts.allow.add(c, { state: 'pending', source: 'soak', comment: `learned in soak mode from ${ev.TargetFilename as string}` });
        if (added) this.counters.learned++;
        ids.push(rule.id);
      }
      if (ids.length) v.learned = ids;
    } catch (e) {
      this.opts.onError?.(e, 'provenance decision');
    }
  }

  /** Every event the agent emits passes here (cheap for the ones that are not ours). */
  handle(ev: Record<string, unknown>): void {
    const cat = ev.category;
    if (cat === 'process_creation') {
      if (this.marks) this.checkExec(ev);
      return;
    }
    if (cat === 'network_connection') {
      const ip = ev.DestinationIp;
      const name = ev.DestinationHostname;
      if (typeof ip === 'string' && typeof name === 'string' && name) {
        if (this.hosts.size >= HOSTS_MAX && !this.hosts.has(ip)) this.hosts.delete(this.hosts.keys().next().value!);
        this.hosts.set(ip, name);
      }
      return;
    }
    if (cat !== 'file_provenance') return;
    this.counters.marks++;
    try {
      this.persist(ev);
    } catch (e) {
      this.opts.onError?.(e, 'provenance mark');
    }
  }

  /** Monitor: is the executable's inode marked in the kernel? (one map lookup per exec while provenance is on) */
  private checkExec(ev: Record<string, unknown>): void {
    const v = ev.vigil as { exe_dev?: number; exe_ino?: string } | undefined;
    if (!v || typeof v.exe_dev !== 'number' || typeof v.exe_ino !== 'string' || !this.marks) return;
    try {
      const m = this.marks.lookup(markKey(v.exe_dev, BigInt(v.exe_ino)));
      if (!m) return;
      this.counters.marked_execs++;
      const record = this.opts.store?.get(v.exe_dev, v.exe_ino)?.record ?? null;
      this.opts.onMarkedExec?.({ image: String(ev.Image ?? ''), pid: Number(ev.ProcessId), dev: v.exe_dev, ino: v.exe_ino, depth: m.readUInt32LE(VigilMark.fields.depth.offset), record });
    } catch (e) {
      this.opts.onError?.(e, 'provenance exec check');
    }
  }

  private persist(ev: Record<string, unknown>): void {
    const v = ev.vigil as Record<string, unknown>;
    const path = ev.TargetFilename as string;
    const dev = v.dev as number;
    const ino = v.ino as string;
    if (!path.startsWith('/')) {
      this.counters.moved++; // a cut path ("…tail"): nothing to write on
      return;
    }
    try {
      const st = statSync(path, { bigint: true });
      if (kernelDev(st.dev) !== dev || st.ino.toString() !== ino) {
        this.counters.moved++;
        return;
      }
    } catch {
      this.counters.moved++;
      return;
    }
    const record: OriginRecord = {
      v: 1,
      kind: v.origin === 'network' ? 'network' : 'derived',
      time: ev.timestamp as string,
      path,
      exe: (ev.Image as string).startsWith('[') ? '' : (ev.Image as string),
      comm: String(v.comm ?? '').slice(0, 16),
      pid: ev.ProcessId as number,
      uid: v.uid as number,
      host: this.opts.host,
      depth: v.depth as number,
    };
    if (typeof v.remote_address === 'string') {
      const host = this.hosts.get(v.remote_address);
      record.remote = { address: v.remote_address, port: v.remote_port as number, ...(host ? { host } : {}), ...(v.network_time ? { time: v.network_time as string } : {}) };
    }
    const df = v.derived_from as { dev: number; ino: string } | undefined;
    if (df) {
      const src = this.opts.store?.get(df.dev, df.ino) ?? null;
      record.derived_from = { path: src?.path ?? '', dev: df.dev, ino: df.ino };
      // a derived file keeps the network peer of its root
      if (!record.remote && src?.record.remote) record.remote = src.record.remote;
    }
    try {
      setXattr(path, ORIGIN_XATTR, encodeOrigin(record));
      this.counters.xattr_written++;
      // the mark the exec guard reads itself where the kernel can (6.15+: security.bpf.vigil.mark);
      // its failure is counted below as the record's would be
      writeMarkXattr(path, record.kind, record.depth);
    } catch (e) {
      this.counters.xattr_failed++;
      // said once per cause (a file system without trusted.* xattrs fails for every file on it); all are counted
      const code = (e as { code?: string }).code ?? 'error';
      if (!this.xattrErrors.has(code)) {
        this.xattrErrors.add(code);
        this.opts.onError?.(e, `origin record on ${path} (further ${code} failures are only counted: xattr_failed)`);
      }
    }
    try {
      this.opts.store?.put({ dev, ino, path, depth: record.depth, record });
    } catch (e) {
      this.counters.store_failed++;
      this.opts.onError?.(e, 'provenance store');
    }
    // a new mark an active rule allows: into the guard's allow maps at once
    if (this.allowMap && this.allowRules.length) {
      const { rule, uids } = allowedBy(this.allowRules, { path, record });
      if (rule) this.allowMap.update(markKey(dev, BigInt(ino)), allowValue(rule.id));
      for (const u of uids) this.allowUidMap?.update(markUidKey(dev, BigInt(ino), u.uid), allowValue(u.rule.id));
    }
  }

  /**
   * Tamper protection (BPF LSM, docs/provenance.md TAMPERING): from now until
   * close(), only vigil's processes can set or remove trusted.vigil.*
   * attributes; each refused attempt is counted and emitted as a
   * provenance_tamper event, named after the process table's entry (`syncProcesses`
   * reads the exec sensor's ring before each batch, so a program that has just
   * started is named, not the image it forked from). Throws where the hooks
   * cannot load (no BPF LSM).
   */
  protect(pc: ProcessContext, emit: (ev: Record<string, unknown>) => void, syncProcesses?: () => void): void {
    this.tamper = new TamperGuard({
      ...(syncProcesses ? { beforeBatch: syncProcesses } : {}),
      onAttempt: (a) => {
        let path: string | null = null;
        try {
          path = this.opts.store?.get(a.dev, a.ino.toString())?.path ?? null;
        } catch {
          path = null;
        }
        emit(tamperEvent(a, pc, path) as unknown as Record<string, unknown>);
      },
    });
  }

  get protecting(): boolean {
    return this.tamper !== null;
  }

  /** Read the tamper records now, and the kernel's count of refusals. */
  tamperCounts(): { set: number; remove: number; lost?: number } | null {
    if (!this.tamper) return null;
    this.tamper.drain();
    const c = this.tamper.counts();
    this.counters.tamper_refused = c.set + c.remove;
    return c;
  }

  /** Detach the tamper hooks (after reading what they refused). */
  unprotect(): void {
    this.tamperCounts();
    this.tamper?.close();
    this.tamper = null;
  }

  close(): void {
    this.unprotect();
    if (this.allowTimer) clearInterval(this.allowTimer);
    this.allowTimer = null;
    this.opts.store?.close();
    this.opts.allow?.close();
  }
}
