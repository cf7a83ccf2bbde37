/**
 * A watched process tree, kept in the kernel (bpf/scope/scope.bpf.c and
 * bpf/include/vigil_scope.h). Load it before the sensors and pass maps() in
 * their context: their objects reuse its two maps, and once the mode is TREE
 * every sensor program reports only the tgids in the set. The set grows at
 * fork in the kernel (a child is in before it runs) and shrinks when a task is
 * freed; userspace adds only the root.
 */
import { BpfObject, type BpfMap } from '../kernel/index.js';
import { objectPath, readKernelStats } from './bpf-sensor.js';
import type { ScopeMaps } from './sensor.js';

/** enum vigil_scope_mode */
export const ScopeMode = { OFF: 0, TREE: 1 } as const;

/** enum vigil_scope_stat */
const SCOPE_STATS: Record<number, string> = { 16: 'scope_added', 17: 'scope_removed', 18: 'scope_full' };

export interface TreeScopeStats {
  /** children added at fork by the kernel */
  added: number;
  /** processes removed when freed */
  removed: number;
  /** children not added because the set was full (they escaped the watch): a loss */
  full: number;
  /** tgids in the set now */
  tracked: number;
}

export class TreeScope {
  private readonly obj: BpfObject;
  private readonly tgids: BpfMap;
  private readonly settings: BpfMap;
  private final: TreeScopeStats | null = null;

  private constructor(obj: BpfObject) {
    this.obj = obj;
    this.tgids = obj.map('vigil_scope_tgids');
    this.settings = obj.map('vigil_scope_settings');
  }

  /** Load and attach the scope programs (fork and free tracepoints); the mode stays OFF until setMode. */
  static open(): TreeScope {
    // the object's ring buffer is never written: keep it at one page
    const obj = BpfObject.open(objectPath('scope.bpf.o'), { maxEntries: { events: 4096 } });
    try {
      obj.load();
      obj.attachAll();
      return new TreeScope(obj);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /** The fds the sensors' objects reuse (SensorContext.scope). */
  maps(): ScopeMaps {
    return { tgidsFd: this.tgids.fd, settingsFd: this.settings.fd };
  }

  /** Track a process (the root of the tree). Its later children are added by the kernel. */
  add(tgid: number): void {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(tgid);
    this.tgids.update(k, Buffer.alloc(4));
  }

  has(tgid: number): boolean {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(tgid);
    return this.tgids.lookup(k) !== null;
  }

  /** Depth below the root of a tracked process (0: the root), or null. */
  depth(tgid: number): number | null {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(tgid);
    const v = this.tgids.lookup(k);
    return v ? v.readUInt32LE(0) : null;
  }

  setMode(mode: (typeof ScopeMode)[keyof typeof ScopeMode]): void {
    const v = Buffer.alloc(8);
    v.writeUInt32LE(mode);
    this.settings.update(Buffer.alloc(4), v);
  }

  /** The tracked tgids now (walks the map). */
  tracked(): number[] {
    const out: number[] = [];
    for (const k of this.tgids.keys()) out.push(k.readUInt32LE(0));
    return out;
  }

  stats(): TreeScopeStats {
    if (this.final) return this.final;
    const k = readKernelStats(this.obj.map('vigil_stats'), SCOPE_STATS);
    return { added: k.scope_added ?? 0, removed: k.scope_removed ?? 0, full: k.scope_full ?? 0, tracked: this.tracked().length };
  }

  close(): void {
    if (this.final) return;
    this.final = this.stats();
    this.obj.close();
  }
}

