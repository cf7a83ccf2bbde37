/**
 * What every sensor (and the exec guard) adds to a kernel record about a task:
 * the process table's view of it (image, command line, parent), a boot-unique
 * ProcessGuid, the host name, the user name, wall-clock time. One instance per
 * agent, shared, so every event of a process carries the same identity.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { BootClock } from '../kernel/clock.js';
import { SCHEMA_VERSION } from '../events/schema.js';
import type { TaskIds } from '../events/records.js';
import { ProcessTable, type ProcessTableOptions } from './process-table.js';
import { UserNames } from './users.js';

export interface ProcessContextOptions {
  table?: ProcessTable;
  tableOptions?: ProcessTableOptions;
  clock?: BootClock;
  users?: UserNames;
  host?: string;
  bootId?: string;
}

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
  private seq = 0;
  private readonly guids = new Map<string, string>();

  constructor(opts: ProcessContextOptions = {}) {
    this.table = opts.table ?? new ProcessTable(opts.tableOptions ?? {});
    this.clock = opts.clock ?? new BootClock();
    this.users = opts.users ?? new UserNames();
    this.host = opts.host ?? hostname();
    this.bootId = opts.bootId ?? readBootId();
  }

  /** Next event sequence number of this agent run (shared by every sensor). */
  nextSeq(): number {
    return ++this.seq;
  }

  /** Boot-unique process id in GUID form (stable for the life of the process). */
  guid(pid: number, startNs: bigint): string {
    // /proc-seeded processes know their start only to the clock tick: round both
    const tick = startNs / 10_000_000n;
    const key = `${pid}:${tick}`;
    let g = this.guids.get(key);
    if (g) return g;
    const h = createHash('sha1').update(`${this.bootId}:${key}`).digest('hex');
    g = `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
    // a small memo: the same few processes produce most events
    if (this.guids.size >= 4096) this.guids.clear();
    this.guids.set(key, g);
    return g;
  }

  /** vigil.* task fields of an event made from a kernel record. */
  taskFields(ktimeNs: bigint, t: TaskIds): TaskFields {
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
      cgroup_id: t.cgroupId.toString(),
      start_ns: t.startNs.toString(),
    };
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
      ProcessGuid: this.guid(t.tgid, t.startNs),
      Image: p?.image || `[${t.comm}]`,
      User: this.users.name(t.uid),
    };
  }
}
