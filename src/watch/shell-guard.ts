/**
 * vigil watch's BPF LSM guards, sharing the tree scope's set of tracked tgids:
 *  - shells (`shells.action: deny`, bpf/watch/shell_guard.bpf.c on
 *    bprm_check_security): the exec of a shell by a process below the root fails;
 *  - files (`sensitive.action: deny`, bpf/watch/file_guard.bpf.c on file_open):
 *    opening a sensitive file (the inodes the policy's paths named at start) fails.
 * Both refuse with EPERM in the kernel and report each refusal. Where BPF LSM is
 * not active the load fails and `vigil watch` refuses to start with such a policy.
 */
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject, RingBufferReader, type BpfMap } from '../kernel/index.js';
import { decodeHeader, decodeTask, type TaskIds } from '../events/records.js';
import { kernelDev } from '../enforcement/abi.js';
import { objectPath, readKernelStats } from '../sensors/bpf-sensor.js';
import type { ScopeMaps } from '../sensors/index.js';

/** Where the shells live (each resolved to its real file; the kernel checks the inode). */
export const SHELL_PATHS = ['/bin', '/usr/bin', '/usr/local/bin'].flatMap((d) =>
  ['sh', 'dash', 'bash', 'rbash', 'zsh', 'ksh', 'ksh93', 'mksh', 'fish', 'csh', 'tcsh', 'ash', 'busybox', 'yash', 'posh'].map((n) => `${d}/${n}`),
);

/** enum vigil_shell_guard_record_type */
const REC = { shell: 64, file: 65 } as const;
const HDR = 16;
const TASK = 72;
/** files a directory pattern may bring into the file guard's set (its map holds 65,536) */
export const FILE_GUARD_MAX = 60_000;

export interface GuardDenial {
  kind: 'shell' | 'file';
  ktimeNs: bigint;
  task: TaskIds;
  dev: number;
  ino: bigint;
  depth: number;
  /** the path vigil resolved to this inode at start */
  path: string;
}

/**
 * The regular files the patterns name now: exact paths, and every file under a
 * directory pattern (trailing /, bounded walk). File-name globs name no file in
 * advance and are not included.
 */
export function filesForPatterns(patterns: string[], homes: string[], max = FILE_GUARD_MAX): { files: string[]; truncated: boolean } {
  const files: string[] = [];
  let truncated = false;
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (files.length >= max) {
        truncated = true;
        return;
      }
      const p = join(dir, n);
      try {
        const st = lstatSync(p);
        if (st.isFile()) files.push(p);
        else if (st.isDirectory() && depth < 8) walk(p, depth + 1);
      } catch {
        /* vanished */
      }
    }
  };
  for (const pat of patterns) {
    const expanded = pat.startsWith('~/') ? homes.map((h) => `${h.replace(/\/$/, '')}/${pat.slice(2)}`) : pat.startsWith('/') ? [pat] : [];
    for (const e of expanded) {
      if (e.endsWith('/')) walk(e, 0);
      else {
        try {
          if (statSync(e).isFile()) files.push(e);
        } catch {
          /* not there now */
        }
      }
    }
  }
  return { files, truncated };
}

export class WatchGuard {
  private readonly obj: BpfObject;
  private readonly reader: RingBufferReader;
  private readonly statsMap: BpfMap;
  private closed = false;
  /** the inodes in the kernel's set, "dev:ino" → path */
  readonly inodes = new Map<string, string>();

  constructor(
    readonly kind: 'shell' | 'file',
    scope: ScopeMaps,
    paths: string[],
    onDenied: (d: GuardDenial) => void,
  ) {
    const obj = BpfObject.open(objectPath(kind === 'shell' ? 'shell_guard.bpf.o' : 'file_guard.bpf.o'), { maxEntries: { events: 64 * 1024 } });
    try {
      obj.reuseMap('vigil_scope_tgids', scope.tgidsFd);
      obj.reuseMap('vigil_scope_settings', scope.settingsFd);
      obj.load();
      const m = obj.map(kind === 'shell' ? 'shell_inodes' : 'file_inodes');
      for (const p of paths) {
        let real: string;
        try {
          real = realpathSync(p);
        } catch {
          continue;
        }
        const st = statSync(real, { bigint: true });
        const dev = kernelDev(st.dev);
        if (this.inodes.has(`${dev}:${st.ino}`)) continue;
        const key = Buffer.alloc(16);
        key.writeBigUInt64LE(st.ino, 0);
        key.writeUInt32LE(dev, 8);
        m.update(key, Buffer.alloc(4));
        this.inodes.set(`${dev}:${st.ino}`, real);
      }
      this.statsMap = obj.map('vigil_stats');
      this.reader = new RingBufferReader(
        obj.map('events'),
        (v, b, off, len) => {
          const h = decodeHeader(v, off, len);
          if (h.type !== REC[kind]) return;
          const base = off + HDR + TASK;
          const ino = v.getBigUint64(base, true);
          const dev = v.getUint32(base + 8, true);
          onDenied({ kind, ktimeNs: h.ktimeNs, task: decodeTask(v, b, off + HDR), ino, dev, depth: v.getUint32(base + 12, true), path: this.inodes.get(`${dev}:${ino}`) ?? '' });
        },
        { budget: 1024 },
      );
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
    const k = readKernelStats(this.statsMap, { 16: 'shell_denied', 17: 'file_denied' });
    return (this.kind === 'shell' ? k.shell_denied : k.file_denied) ?? 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.drain();
    this.reader.close();
    this.obj.close();
  }
}
