/**
 * `shells.action: deny` (BPF LSM, bpf/watch/shell_guard.bpf.c): the exec of a
 * shell by a process of the watched tree below its root fails with EPERM in the
 * kernel. Shares the tree scope's set of tracked tgids. Where BPF LSM is not
 * active the load fails and `vigil watch` refuses to start with that policy.
 */
import { realpathSync, statSync } from 'node:fs';
import { BpfObject, RingBufferReader, type BpfMap } from '../kernel/index.js';
import { decodeHeader, decodeTask, type TaskIds } from '../events/records.js';
import { kernelDev } from '../enforcement/abi.js';
import { objectPath, readKernelStats } from '../sensors/bpf-sensor.js';
import type { ScopeMaps } from '../sensors/index.js';

/** Where the shells live (each resolved to its real file; the kernel checks the inode). */
const SHELL_PATHS = ['/bin', '/usr/bin', '/usr/local/bin'].flatMap((d) =>
  ['sh', 'dash', 'bash', 'rbash', 'zsh', 'ksh', 'ksh93', 'mksh', 'fish', 'csh', 'tcsh', 'ash', 'busybox', 'yash', 'posh'].map((n) => `${d}/${n}`),
);

const REC_SHELL_DENIED = 64;
const HDR = 16;
const TASK = 72;

export interface ShellDenial {
  ktimeNs: bigint;
  task: TaskIds;
  dev: number;
  ino: bigint;
  depth: number;
  /** the shell's path, from the inodes vigil put in the map */
  path: string;
}

export class ShellGuard {
  private readonly obj: BpfObject;
  private readonly reader: RingBufferReader;
  private readonly statsMap: BpfMap;
  private closed = false;
  /** the shells in the kernel's set, by "dev:ino" */
  readonly shells = new Map<string, string>();

  constructor(scope: ScopeMaps, onDenied: (d: ShellDenial) => void) {
    const obj = BpfObject.open(objectPath('shell_guard.bpf.o'), { maxEntries: { events: 64 * 1024 } });
    try {
      obj.reuseMap('vigil_scope_tgids', scope.tgidsFd);
      obj.reuseMap('vigil_scope_settings', scope.settingsFd);
      obj.load();
      const m = obj.map('shell_inodes');
      for (const p of SHELL_PATHS) {
        let real: string;
        try {
          real = realpathSync(p);
        } catch {
          continue;
        }
        const st = statSync(real, { bigint: true });
        const dev = kernelDev(st.dev);
        const key = Buffer.alloc(16);
        key.writeBigUInt64LE(st.ino, 0);
        key.writeUInt32LE(dev, 8);
        m.update(key, Buffer.alloc(4));
        this.shells.set(`${dev}:${st.ino}`, real);
      }
      this.statsMap = obj.map('vigil_stats');
      this.reader = new RingBufferReader(obj.map('events'), (v, _b, off, len) => {
        const h = decodeHeader(v, off, len);
        if (h.type !== REC_SHELL_DENIED) return;
        const base = off + HDR + TASK;
        const ino = v.getBigUint64(base, true);
        const dev = v.getUint32(base + 8, true);
        onDenied({ ktimeNs: h.ktimeNs, task: decodeTask(v, _b, off + HDR), ino, dev, depth: v.getUint32(base + 12, true), path: this.shells.get(`${dev}:${ino}`) ?? '' });
      }, { budget: 1024 });
      obj.attachAll();
      this.reader.start();
      this.obj = obj;
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  drain(): void {
    this.reader.drain();
  }

  denied(): number {
    return readKernelStats(this.statsMap, { 16: 'shell_denied' }).shell_denied ?? 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.drain();
    this.reader.close();
    this.obj.close();
  }
}
