/**
 * What every sensor (and the exec guard) adds to a kernel record about a task:
 * the process table's view of it (image, command line, parent), a boot-unique
 * ProcessGuid, the host name, the user name, wall-clock time. One instance per
 * agent, shared, so every event of a process carries the same identity.
 */
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { BootClock } from '../kernel/clock.js';
import { SCHEMA_VERSION } from '../events/schema.js';
import type { TaskIds } from '../events/records.js';
import { ProcessTable, type ProcInfo, type ProcessTableOptions } from './process-table.js';
import type { Ancestor } from '../events/schema.js';
import { jsonString } from '../store/json.js';
import { UserNames } from './users.js';

export interface ProcessContextOptions {
  table?: ProcessTable;
  tableOptions?: ProcessTableOptions;
  clock?: BootClock;
  users?: UserNames;
  host?: string;
  bootId?: string;
  /** what each event's Ancestors carries (events.ancestors in the config) */
  ancestors?: AncestorBounds;
}

export interface AncestorBounds {
  /** entries at most (parent first); 0 = none */
  maxDepth: number;
  /** characters of each ancestor's CommandLine at most */
  maxCommandLine: number;
}

/** An event's Ancestors (entries whose CommandLine was cut say so) and whether older ones were left out. */
export interface BoundedAncestors {
  list: Ancestor[];
  /** older ancestors than bounds.maxDepth exist */
  cut: boolean;
  /** serialization memo of the event builders (valid as long as this value is) */
  json?: string;
}

/** Memo on a process table entry: the Ancestors of its children, valid while `chain` is current. */
interface LineageMemo {
  value: BoundedAncestors;
  chain: ProcInfo[];
  /** the pid the walk stopped at because the table did not know it (0: none) */
  missing: number;
}

// one-shot hash where Node has it (20.12+): half the cost of createHash
const sha1hex: (s: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (s) => (crypto as unknown as { hash(a: string, d: string, e: string): string }).hash('sha1', s, 'hex')
    : (s) => crypto.createHash('sha1').update(s).digest('hex');

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '00000000-0000-0000-0000-000000000000';
  }
}

/** The Sysmon fields that name the acting process, common to file and network events. */
export interface ActorFields {
  timestamp: string;
  Hostname: string;
  ProcessId: number;
  ProcessGuid: string;
  Image: string;
  User: string;
}

/** vigil.* fields every event about a task carries. */
export interface TaskFields {
  schema: typeof SCHEMA_VERSION;
  seq: number;
  boot_ns: string;
  tid: number;
  uid: number;
  gid: number;
  euid: number;
  session_id: number;
  comm: string;
  cgroup_id: string;
  start_ns: string;
}

export class ProcessContext {
  readonly table: ProcessTable;
  readonly clock: BootClock;
  readonly users: UserNames;
  readonly host: string;
  readonly bootId: string;
  readonly bounds: AncestorBounds;
  private seq = 0;
  private readonly guids = new Map<string, string>();
  private lastCgroup = -1n;
  private lastCgroupText = '';

  constructor(opts: ProcessContextOptions = {}) {
    this.table = opts.table ?? new ProcessTable(opts.tableOptions ?? {});
    this.clock = opts.clock ?? new BootClock();
    this.users = opts.users ?? new UserNames();
    this.host = opts.host ?? hostname();
    this.bootId = opts.bootId ?? readBootId();
    this.bounds = opts.ancestors ?? { maxDepth: 2, maxCommandLine: 32 };
    this.hostJson = jsonString(this.host);
  }

  /** Next event sequence number of this agent run (shared by every sensor). */
  nextSeq(): number {
    return ++this.seq;
  }

  /** Boot-unique process id in GUID form (stable for the life of the process). */
  guid(pid: number, startNs: bigint): string {
    // /proc-seeded processes know their start only to the clock tick: round both
    const key = `${pid}:${tick(startNs)}`;
    let g = this.guids.get(key);
    if (g) return g;
    const h = sha1hex(`${this.bootId}:${key}`);
    g = `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
    // a small memo: the same few processes produce most events
    if (this.guids.size >= 4096) this.guids.clear();
    this.guids.set(key, g);
    return g;
  }

  /** ProcessGuid of a table entry (memoized on it). */
  procGuid(p: ProcInfo): string {
    return (p.guid ??= this.guid(p.pid, p.startNs));
  }

  /** vigil.* task fields of an event made from a kernel record. */
  taskFields(ktimeNs: bigint, t: TaskIds): TaskFields {
    // per-process and per-cgroup text is memoized: bigint → string is not free
    if (t.cgroupId !== this.lastCgroup) {
      this.lastCgroup = t.cgroupId;
      this.lastCgroupText = t.cgroupId.toString();
    }
    const p = this.table.get(t.tgid);
    const start = p && p.startNs === t.startNs ? (p.startText ??= t.startNs.toString()) : t.startNs.toString();
    return {
      schema: SCHEMA_VERSION,
      seq: this.nextSeq(),
      boot_ns: ktimeNs.toString(),
      tid: t.pid,
      uid: t.uid,
      gid: t.gid,
      euid: t.euid,
      session_id: t.sessionid,
      comm: t.comm,
      cgroup_id: this.lastCgroupText,
      start_ns: start,
    };
  }

  /** JSON text of task fields (the members, no braces), as JSON.stringify writes them. */
  taskJson(f: TaskFields): string {
    return (
      `"schema":${f.schema},"seq":${f.seq},"boot_ns":"${f.boot_ns}","tid":${f.tid},"uid":${f.uid},"gid":${f.gid},"euid":${f.euid},` +
      `"session_id":${f.session_id},"comm":${jsonString(f.comm)},"cgroup_id":"${f.cgroup_id}","start_ns":"${f.start_ns}"`
    );
  }

  /** The host name as JSON text. */
  readonly hostJson: string;

  /**
   * The Ancestors an event about `p` carries: its parent first, then up, at most
   * bounds.maxDepth entries, each CommandLine cut to bounds.maxCommandLine
   * characters (the entry says so); `cut` when older ones were left out. Memoized on the parent's table
   * entry (siblings share it) and recomputed when an entry on the chain changed.
   */
  ancestors(p: { pid: number; ppid: number }): BoundedAncestors {
    const parent = this.table.get(p.ppid);
    if (!parent || p.ppid === p.pid) return this.walk(p.pid, p.ppid).value;
    const m = parent.lineage as LineageMemo | undefined;
    if (m && this.current(m)) return m.value;
    const fresh = this.walk(p.pid, p.ppid);
    parent.lineage = fresh;
    return fresh.value;
  }

  private current(m: LineageMemo): boolean {
    for (const c of m.chain) if (this.table.get(c.pid) !== c) return false;
    return m.missing === 0 || this.table.get(m.missing) === undefined;
  }

  private walk(self: number, ppid: number): LineageMemo {
    const { maxDepth, maxCommandLine } = this.bounds;
    const list: Ancestor[] = [];
    const chain: ProcInfo[] = [];
    let cut = false;
    let missing = 0;
    const seen = new Set<number>([self]);
    let cur = ppid;
    while (cur > 0 && !seen.has(cur)) {
      const a = this.table.get(cur);
      if (list.length >= maxDepth) {
        cut = true;
        if (a) chain.push(a);
        else missing = cur;
        break;
      }
      seen.add(cur);
      if (!a) {
        list.push({ ProcessId: cur, Image: '', CommandLine: '' });
        missing = cur;
        break;
      }
      chain.push(a);
      if (a.commandLine.length > maxCommandLine) {
        list.push({ ProcessId: a.pid, Image: a.image, CommandLine: cutText(a.commandLine, maxCommandLine), truncated: true });
      } else {
        list.push({ ProcessId: a.pid, Image: a.image, CommandLine: a.commandLine });
      }
      cur = a.ppid;
    }
    return { value: { list, cut }, chain, missing };
  }

  /**
   * Who did it: the process table's image for the task (the exec sensor keeps it
   * current; sensors drain it before their own records), else the kernel's comm
   * in brackets so it cannot be mistaken for a path.
   */
  actor(ktimeNs: bigint, t: TaskIds): ActorFields {
    const p = this.table.get(t.tgid);
    return {
      timestamp: this.clock.iso(ktimeNs),
      Hostname: this.host,
      ProcessId: t.tgid,
      ProcessGuid: p && p.startNs === t.startNs ? this.procGuid(p) : this.guid(t.tgid, t.startNs),
      Image: p?.image || `[${t.comm}]`,
      User: this.users.name(t.uid),
    };
  }
}

/** start time in clock ticks (10 ms): exact integer division without a bigint where the value allows */
function tick(startNs: bigint): number | bigint {
  const n = Number(startNs);
  if (!Number.isSafeInteger(n)) return startNs / 10_000_000n;
  let q = Math.floor(n / 10_000_000);
  if (q * 10_000_000 > n) q--;
  else if ((q + 1) * 10_000_000 <= n) q++;
  return q;
}

/** The first `max` UTF-16 units of s, not splitting a surrogate pair. */
export function cutText(s: string, max: number): string {
  if (s.length <= max) return s;
  const c = s.charCodeAt(max - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}
