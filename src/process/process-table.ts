/**
 * The process table: what vigil knows of each live process, to give every
 * event its parent and ancestors. Bounded: live entries are capped (oldest
 * evicted and counted), exited entries linger in a small FIFO so children that
 * report after their parent's exit still find it, and then go.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { BoundedFifo } from '../util/fifo.js';

export interface ProcInfo {
  /** unique per entry in this agent run (a fork and each exec of a process are entries of their own) */
  key: number;
  /** key of the parent's entry when this one was made (0: the parent was not in the table) */
  parentKey: number;
  pid: number;
  ppid: number;
  /** start_boottime of the process (ns): with pid, unique per boot */
  startNs: bigint;
  image: string;
  commandLine: string;
  cwd: string;
  uid: number;
  exited: boolean;
  /** where the entry came from: kernel event or /proc at start-up */
  source: 'exec' | 'fork' | 'proc';
  /** memoized by ProcessContext and the event builders: ProcessGuid, start_ns as text, the ancestors its children carry, JSON text */
  guid?: string | undefined;
  startText?: string | undefined;
  lineage?: unknown;
  json?: { image?: string; parent?: string } | undefined;
  /** the image's path was cut in the kernel, or is not UTF-8 (raw: base64 of its bytes); for process_termination */
  imageNote?: { cut: boolean; raw?: string } | undefined;
}

/**
 * A table entry. Every entry is made here, with every field (memo slots
 * undefined) in one order: one object shape, so the hot paths that read
 * entries stay monomorphic.
 */
export function procInfo(
  pid: number,
  ppid: number,
  startNs: bigint,
  image: string,
  commandLine: string,
  cwd: string,
  uid: number,
  source: ProcInfo['source'],
  parentKey = 0,
): ProcInfo {
  return {
    key: 0,
    parentKey,
    pid,
    ppid,
    startNs,
    image,
    commandLine,
    cwd,
    uid,
    exited: false,
    source,
    guid: undefined,
    startText: undefined,
    lineage: undefined,
    json: undefined,
    imageNote: undefined,
  };
}

/** What a new entry is made of (the table fills in key, parentKey, exited, source). */
export type ProcInput = Omit<ProcInfo, 'key' | 'parentKey' | 'exited' | 'source' | 'guid' | 'startText' | 'lineage' | 'json'>;

import type { Ancestor } from '../events/schema.js';
export type { Ancestor };

export interface ProcessTableStats {
  live: number;
  exited: number;
  evicted: number;
  seeded: number;
}

export interface ProcessTableOptions {
  maxEntries?: number;
  maxExited?: number;
  maxDepth?: number;
}

export class ProcessTable {
  private readonly procs = new Map<number, ProcInfo>();
  // exited entries, oldest first: the oldest beyond maxExited leaves the table
  private readonly exitedFifo: BoundedFifo<ProcInfo>;
  private readonly maxEntries: number;
  readonly maxDepth: number;
  private evicted = 0;
  private seeded = 0;
  private nextKey = 0;

  constructor(opts: ProcessTableOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 32768;
    this.exitedFifo = new BoundedFifo(opts.maxExited ?? 2048);
    this.maxDepth = opts.maxDepth ?? 16;
  }

  get(pid: number): ProcInfo | undefined {
    return this.procs.get(pid);
  }

  /** A process started: fork copies the parent's image and command line. */
  fork(pid: number, ppid: number, startNs: bigint, uid: number): ProcInfo {
    const parent = this.procs.get(ppid);
    return this.put(procInfo(pid, ppid, startNs, parent?.image ?? '', parent?.commandLine ?? '', parent?.cwd ?? '', uid, 'fork', parent?.key ?? 0));
  }

  /** A process exec'd: it keeps its pid and gets a new image. */
  exec(info: ProcInput): ProcInfo {
    const prev = this.procs.get(info.pid);
    const p = procInfo(info.pid, info.ppid, info.startNs, info.image, info.commandLine, info.cwd, info.uid, 'exec', this.procs.get(info.ppid)?.key ?? 0);
    // the same process before the exec: keep what was computed of its identity
    if (prev && prev.startNs === info.startNs) {
      if (prev.guid !== undefined) p.guid = prev.guid;
      if (prev.startText !== undefined) p.startText = prev.startText;
    }
    return this.put(p);
  }

  exit(pid: number, startNs?: bigint): ProcInfo | undefined {
    const p = this.procs.get(pid);
    if (!p || (startNs !== undefined && !sameStart(p, startNs))) return p;
    if (!p.exited) {
      p.exited = true;
      const old = this.exitedFifo.push(p);
      if (old) {
        const cur = this.procs.get(old.pid);
        if (cur && cur.exited && cur.startNs === old.startNs) this.procs.delete(old.pid);
      }
    }
    return p;
  }

  /** Parent first, then grandparent..., up to maxDepth, stopping at pid 0 and at loops. */
  ancestors(pid: number): Ancestor[] {
    const out: Ancestor[] = [];
    const seen = new Set<number>([pid]);
    let cur = this.procs.get(pid)?.ppid;
    while (cur !== undefined && cur > 0 && out.length < this.maxDepth && !seen.has(cur)) {
      seen.add(cur);
      const p = this.procs.get(cur);
      if (!p) {
        out.push({ ProcessId: cur, Image: '', CommandLine: '' });
        break;
      }
      out.push({ ProcessId: p.pid, Image: p.image, CommandLine: p.commandLine });
      cur = p.ppid;
    }
    return out;
  }

  /** Every entry (live and lingering exited), oldest first. */
  entries(): IterableIterator<ProcInfo> {
    return this.procs.values();
  }

  /** Add entries known from elsewhere (a recording's /proc snapshot); existing pids are kept. */
  seed(infos: Iterable<ProcInput & Partial<Pick<ProcInfo, 'exited' | 'source'>>>): number {
    let n = 0;
    for (const p of infos) {
      if (this.procs.has(p.pid)) continue;
      const { pid, ppid, startNs, image, commandLine, cwd, uid } = p;
      const e = procInfo(pid, ppid, startNs, image, commandLine, cwd, uid, p.source ?? 'proc');
      e.exited = p.exited ?? false;
      this.put(e);
      n++;
    }
    this.seeded += n;
    return n;
  }

  stats(): ProcessTableStats {
    const exited = this.exitedFifo.size;
    return { live: this.procs.size - exited, exited, evicted: this.evicted, seeded: this.seeded };
  }

  get size(): number {
    return this.procs.size;
  }

  /**
   * Seed from /proc so processes older than the agent have parents too.
   * Unreadable entries (raced exits, kernel threads) are skipped.
   */
  seedFromProc(procRoot = '/proc', clockTicks = 100): number {
    let n = 0;
    let names: string[];
    try {
      names = readdirSync(procRoot);
    } catch {
      return 0;
    }
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      const info = readProc(`${procRoot}/${name}`, Number(name), clockTicks);
      if (!info || this.procs.has(info.pid)) continue;
      this.put(info);
      n++;
    }
    this.seeded += n;
    return n;
  }

  private put(p: ProcInfo): ProcInfo {
    p.key = ++this.nextKey;
    // re-insert: Map order is recency order for eviction
    this.procs.delete(p.pid);
    this.procs.set(p.pid, p);
    if (this.procs.size > this.maxEntries) {
      for (const [pid] of this.procs) {
        if (this.procs.size <= this.maxEntries) break;
        this.procs.delete(pid);
        this.evicted++;
      }
    }
    return p;
  }
}

/** /proc gives start times in clock ticks (10 ms), the kernel in ns. */
function sameStart(p: ProcInfo, startNs: bigint): boolean {
  if (p.source !== 'proc') return p.startNs === startNs;
  const d = p.startNs - startNs;
  return d < 20_000_000n && d > -20_000_000n;
}

/** Read one /proc/PID into a ProcInfo; undefined when it vanished or is a kernel thread. */
export function readProc(dir: string, pid: number, clockTicks = 100): ProcInfo | undefined {
  try {
    const stat = readFileSync(`${dir}/stat`, 'latin1');
    // comm may hold spaces and parentheses: fields start after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const startTicks = BigInt(rest[19] ?? '0');
    const cmdline = readFileSync(`${dir}/cmdline`);
    let image = '';
    try {
      image = readlinkSync(`${dir}/exe`);
    } catch {
      if (cmdline.length === 0) return undefined; // kernel thread
    }
    let cwd = '';
    try {
      cwd = readlinkSync(`${dir}/cwd`);
    } catch {
      /* permission or gone */
    }
    const status = readFileSync(`${dir}/status`, 'latin1');
    const uidLine = /^Uid:\s+(\d+)/m.exec(status);
    const args = cmdline.toString('utf8').replace(/\0+$/, '').split('\0');
    return procInfo(pid, ppid, (startTicks * 1_000_000_000n) / BigInt(clockTicks), image, args.join(' '), cwd, uidLine ? Number(uidLine[1]) : -1, 'proc');
  } catch {
    return undefined;
  }
}
