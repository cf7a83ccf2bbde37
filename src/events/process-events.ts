/**
 * Turns decoded exec/fork/exit records into process events: updates the
 * process table, attaches parent and ancestors, names the user, converts
 * boot time to wall-clock time.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { BootClock } from '../kernel/clock.js';
import { decodeBytes, splitArgv } from './bytes.js';
import { ExecFlags } from './layouts.js';
import type { ExecRecord, ExitRecord, ForkRecord, ProcessRecord, TaskIds } from './records.js';
import type { ProcessTable } from './process-table.js';
import { SCHEMA_VERSION, type ProcessCreationEvent, type ProcessTerminationEvent, type VigilProcessFields } from './schema.js';
import type { UserNames } from './users.js';

export interface ProcessEventBuilderDeps {
  table: ProcessTable;
  clock: BootClock;
  users: UserNames;
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

export class ProcessEventBuilder {
  private seq = 0;
  private readonly host: string;
  private readonly bootId: string;

  constructor(private readonly deps: ProcessEventBuilderDeps) {
    this.host = deps.host ?? hostname();
    this.bootId = deps.bootId ?? readBootId();
  }

  /** Apply a record to the table; returns the event it produces (fork: none). */
  handle(rec: ProcessRecord): ProcessCreationEvent | ProcessTerminationEvent | null {
    switch (rec.type) {
      case 'exec':
        return this.exec(rec);
      case 'fork':
        this.fork(rec);
        return null;
      case 'exit':
        return this.exit(rec);
    }
  }

  /** Boot-unique process id in GUID form (stable for the life of the process). */
  guid(pid: number, startNs: bigint): string {
    // /proc-seeded processes know their start only to the clock tick: round both
    const tick = startNs / 10_000_000n;
    const h = createHash('sha1').update(`${this.bootId}:${pid}:${tick}`).digest('hex');
    return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
  }

  private fork(rec: ForkRecord): void {
    this.deps.table.fork(rec.task.tgid, rec.task.ppid, rec.task.startNs, rec.task.uid);
  }

  private common(rec: ProcessRecord, t: TaskIds): VigilProcessFields {
    return {
      schema: SCHEMA_VERSION,
      seq: ++this.seq,
      boot_ns: rec.ktimeNs.toString(),
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

  private exec(rec: ExecRecord): ProcessCreationEvent {
    const t = rec.task;
    const { table, clock, users } = this.deps;
    const raw: Record<string, string | string[]> = {};
    const exe = decodeBytes(rec.exe);
    const cwd = decodeBytes(rec.cwd);
    const argvBytes = splitArgv(rec.args);
    const argv: string[] = [];
    let argvRaw = false;
    for (const a of argvBytes) {
      const d = decodeBytes(a);
      argv.push(d.text);
      if (d.raw !== undefined) argvRaw = true;
    }
    if (exe.raw !== undefined) raw.Image = exe.raw;
    if (cwd.raw !== undefined) raw.CurrentDirectory = cwd.raw;
    if (argvRaw) raw.argv = argvBytes.map((a) => Buffer.from(a).toString('base64'));

    const truncated: string[] = [];
    if (rec.flags & ExecFlags.ARGS_TRUNCATED) truncated.push('CommandLine');
    if (rec.flags & ExecFlags.EXE_TRUNCATED) truncated.push('Image');
    if (rec.flags & ExecFlags.CWD_TRUNCATED) truncated.push('CurrentDirectory');
    if (rec.flags & ExecFlags.ARGS_FAULT) truncated.push('CommandLine:unreadable');

    const image = exe.text;
    const commandLine = argv.join(' ');
    const parent = table.get(t.ppid);
    table.exec({ pid: t.tgid, ppid: t.ppid, startNs: t.startNs, image, commandLine, cwd: cwd.text, uid: t.uid });

    const vigil: ProcessCreationEvent['vigil'] = {
      ...this.common(rec, t),
      argv,
      argc: rec.argc,
      exe_dev: rec.exeDev,
      exe_ino: rec.exeIno.toString(),
    };
    if (truncated.length) vigil.truncated = truncated;
    if (Object.keys(raw).length) vigil.raw = raw;

    return {
      category: 'process_creation',
      timestamp: clock.iso(rec.ktimeNs),
      Hostname: this.host,
      ProcessId: t.tgid,
      ProcessGuid: this.guid(t.tgid, t.startNs),
      Image: image,
      CommandLine: commandLine,
      CurrentDirectory: cwd.text,
      User: users.name(t.uid),
      LogonId: t.loginuid,
      ParentProcessId: t.ppid,
      ParentProcessGuid: this.guid(t.ppid, parent?.startNs ?? t.parentStartNs),
      ParentImage: parent?.image ?? '',
      ParentCommandLine: parent?.commandLine ?? '',
      Ancestors: table.ancestors(t.tgid),
      vigil,
    };
  }

  private exit(rec: ExitRecord): ProcessTerminationEvent {
    const t = rec.task;
    const { table, clock, users } = this.deps;
    const ancestors = table.ancestors(t.tgid);
    const p = table.exit(t.tgid, t.startNs);
    const parent = table.get(t.ppid);
    const status = rec.exitCode;
    return {
      category: 'process_termination',
      timestamp: clock.iso(rec.ktimeNs),
      Hostname: this.host,
      ProcessId: t.tgid,
      ProcessGuid: this.guid(t.tgid, t.startNs),
      Image: p?.image ?? '',
      CommandLine: p?.commandLine ?? '',
      User: users.name(t.uid),
      ParentProcessId: t.ppid,
      ParentImage: parent?.image ?? '',
      Ancestors: ancestors,
      vigil: {
        ...this.common(rec, t),
        exit_status: status,
        exit_code: (status >> 8) & 0xff,
        signal: status & 0x7f,
      },
    };
  }
}
