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
import { readKernelStats, sensorObjectPath } from '../sensors/bpf-sensor.js';
import { checkLayouts } from '../events/layouts.js';
import { VigilLpm4Key, VigilLpm6Key, VigilNetDenied, VigilShellDenied, VigilShellKey, WATCH_LAYOUTS, WatchRecordType, WatchStat } from './layouts.js';
import type { ScopeMaps } from '../sensors/index.js';

/** Where the shells live (each resolved to its real file; the kernel checks the inode). */
export const SHELL_PATHS = ['/bin', '/usr/bin', '/usr/local/bin'].flatMap((d) =>
  ['sh', 'dash', 'bash', 'rbash', 'zsh', 'ksh', 'ksh93', 'mksh', 'fish', 'csh', 'tcsh', 'ash', 'busybox', 'yash', 'posh'].map((n) => `${d}/${n}`),
);

/** files a directory pattern may bring into the file guard's set (its map holds 65,536) */
export const FILE_GUARD_MAX = 60_000;

export type GuardKind = 'shell' | 'file' | 'net';

export interface FileDenial {
  kind: 'shell' | 'file';
  ktimeNs: bigint;
  task: TaskIds;
  dev: number;
  ino: bigint;
  depth: number;
  /** the path vigil resolved to this inode at start */
  path: string;
}

export interface NetDenial {
  kind: 'net';
  ktimeNs: bigint;
  task: TaskIds;
  depth: number;
  ip: string;
  port: number;
  protocol: 'ipv4' | 'ipv6';
  operation: 'connect' | 'sendmsg';
}

export type GuardDenial = FileDenial | NetDenial;

/** The allow list the network guard's tries hold: addresses with prefix lengths. */
export interface NetAllow {
  v4: { addr: string; bits: number }[];
  v6: { addr: string; bits: number }[];
}

const OBJECTS: Record<GuardKind, { file: string; record: number; stat: number; layout: string }> = {
  shell: { file: 'shell_guard.bpf.o', record: WatchRecordType.SHELL_DENIED, stat: WatchStat.SHELL_DENIED, layout: VigilShellDenied.name },
  file: { file: 'file_guard.bpf.o', record: WatchRecordType.FILE_DENIED, stat: WatchStat.FILE_DENIED, layout: VigilShellDenied.name },
  net: { file: 'net_guard.bpf.o', record: WatchRecordType.NET_DENIED, stat: WatchStat.NET_DENIED, layout: VigilNetDenied.name },
};

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
  /** the inodes in the kernel's set, "dev:ino" → path (shell and file guards) */
  readonly inodes = new Map<string, string>();

  /** The shell guard (shells' executables) or the file guard (files to refuse opening). */
  static files(kind: 'shell' | 'file', scope: ScopeMaps, paths: string[], onDenied: (d: GuardDenial) => void): WatchGuard {
    return new WatchGuard(kind, scope, onDenied, (obj, g) => {
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
        if (g.inodes.has(`${dev}:${st.ino}`)) continue;
        const key = Buffer.alloc(VigilShellKey.size);
        key.writeBigUInt64LE(st.ino, VigilShellKey.fields.ino.offset);
        key.writeUInt32LE(dev, VigilShellKey.fields.dev.offset);
        m.update(key, Buffer.alloc(4));
        g.inodes.set(`${dev}:${st.ino}`, real);
      }
    });
  }

  /** The network guard: connections (and addressed sends) outside `allow` are refused. */
  static network(scope: ScopeMaps, allow: NetAllow, onDenied: (d: GuardDenial) => void): WatchGuard {
    return new WatchGuard('net', scope, onDenied, (obj) => {
      const put = (map: string, layout: typeof VigilLpm4Key | typeof VigilLpm6Key, e: { addr: string; bits: number }, bytes: Buffer) => {
        const key = Buffer.alloc(layout.size);
        key.writeUInt32LE(e.bits, layout.fields.prefixlen.offset);
        bytes.copy(key, layout.fields.addr.offset);
        obj.map(map).update(key, Buffer.alloc(4));
      };
      for (const e of allow.v4) put('allow4', VigilLpm4Key, e, Buffer.from(e.addr.split('.').map(Number)));
      for (const e of allow.v6) put('allow6', VigilLpm6Key, e, ipv6Bytes(e.addr));
    });
  }

  private constructor(
    readonly kind: GuardKind,
    scope: ScopeMaps,
    onDenied: (d: GuardDenial) => void,
    fill: (obj: BpfObject, g: WatchGuard) => void,
  ) {
    const spec = OBJECTS[kind];
    const obj = BpfObject.open(sensorObjectPath(spec.file), { maxEntries: { events: 64 * 1024 } });
    try {
      const drift = checkLayouts(obj.btf(), WATCH_LAYOUTS, [spec.layout]);
      if (drift.length) throw new Error(`${spec.file}: record layouts differ from the TypeScript ones: ${drift.map((d) => `${d.layout}: ${d.problem}`).join('; ')}`);
      obj.reuseMap('vigil_scope_tgids', scope.tgidsFd);
      obj.reuseMap('vigil_scope_settings', scope.settingsFd);
      obj.load();
      fill(obj, this);
      this.statsMap = obj.map('vigil_stats');
      this.reader = new RingBufferReader(
        obj.map('events'),
        (v, b, off, len) => {
          const h = decodeHeader(v, off, len);
          if (h.type !== spec.record) return;
          const task = decodeTask(v, b, off + VigilShellDenied.fields.task.offset);
          if (kind === 'net') {
            const F = VigilNetDenied.fields;
            const family = v.getUint16(off + F.family.offset, true);
            const a = b.subarray(off + F.addr.offset, off + F.addr.offset + (family === 2 ? 4 : 16));
            onDenied({
              kind,
              ktimeNs: h.ktimeNs,
              task,
              depth: v.getUint32(off + F.depth.offset, true),
              ip: family === 2 ? [...a].join('.') : ipv6Text(a),
              port: v.getUint16(off + F.port.offset, true),
              protocol: family === 2 ? 'ipv4' : 'ipv6',
              operation: v.getUint32(off + F.op.offset, true) === 2 ? 'sendmsg' : 'connect',
            });
            return;
          }
          const F = VigilShellDenied.fields;
          const ino = v.getBigUint64(off + F.ino.offset, true);
          const dev = v.getUint32(off + F.dev.offset, true);
          onDenied({ kind, ktimeNs: h.ktimeNs, task, ino, dev, depth: v.getUint32(off + F.depth.offset, true), path: this.inodes.get(`${dev}:${ino}`) ?? '' });
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

  /** How many the kernel refused (its counter, not the records read). */
  denied(): number {
    const stat = OBJECTS[this.kind].stat;
    return readKernelStats(this.statsMap, { [stat]: 'denied' }).denied ?? 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.drain();
    this.reader.close();
    this.obj.close();
  }
}

/** 16 bytes of an IPv6 address in text form (node's parser via BlockList would not give bytes). */
export function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    s = `${s.slice(0, -v4[1]!.length)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function ipv6Text(a: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((a[i]! << 8) | a[i + 1]!);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${a[12]}.${a[13]}.${a[14]}.${a[15]}`; // IPv4-mapped (RFC 5952)
  // the longest run of two or more zero groups becomes "::" (RFC 5952)
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}
