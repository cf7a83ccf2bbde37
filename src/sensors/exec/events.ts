/**
 * Turns decoded exec/fork/exit records into process events: updates the
 * process table, attaches parent and ancestors, names the user, converts
 * boot time to wall-clock time.
 */
import { decodeBytes, splitArgv } from '../../events/bytes.js';
import type { ProcessCreationEvent, ProcessTerminationEvent } from '../../events/schema.js';
import type { ProcessContext } from '../../process/context.js';
import { ExecFlags } from './layouts.js';
import type { ExecRecord, ExitRecord, ForkRecord, ProcessRecord } from './decode.js';

export class ProcessEventBuilder {
  constructor(private readonly ctx: ProcessContext) {}

  /** Boot-unique process id in GUID form (stable for the life of the process). */
  guid(pid: number, startNs: bigint): string {
    return this.ctx.guid(pid, startNs);
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

  private fork(rec: ForkRecord): void {
    this.ctx.table.fork(rec.task.tgid, rec.task.ppid, rec.task.startNs, rec.task.uid);
  }

  private exec(rec: ExecRecord): ProcessCreationEvent {
    const t = rec.task;
    const { table, clock, users } = this.ctx;
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
      ...this.ctx.taskFields(rec.ktimeNs, t),
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
      Hostname: this.ctx.host,
      ProcessId: t.tgid,
      ProcessGuid: this.ctx.guid(t.tgid, t.startNs),
      Image: image,
      CommandLine: commandLine,
      CurrentDirectory: cwd.text,
      User: users.name(t.uid),
      LogonId: t.loginuid,
      ParentProcessId: t.ppid,
      ParentProcessGuid: this.ctx.guid(t.ppid, parent?.startNs ?? t.parentStartNs),
      ParentImage: parent?.image ?? '',
      ParentCommandLine: parent?.commandLine ?? '',
      Ancestors: table.ancestors(t.tgid),
      vigil,
    };
  }

  private exit(rec: ExitRecord): ProcessTerminationEvent {
    const t = rec.task;
    const { table, clock, users } = this.ctx;
    const ancestors = table.ancestors(t.tgid);
    const p = table.exit(t.tgid, t.startNs);
    const parent = table.get(t.ppid);
    const status = rec.exitCode;
    return {
      category: 'process_termination',
      timestamp: clock.iso(rec.ktimeNs),
      Hostname: this.ctx.host,
      ProcessId: t.tgid,
      ProcessGuid: this.ctx.guid(t.tgid, t.startNs),
      Image: p?.image ?? '',
      CommandLine: p?.commandLine ?? '',
      User: users.name(t.uid),
      ParentProcessId: t.ppid,
      ParentImage: parent?.image ?? '',
      Ancestors: ancestors,
      vigil: {
        ...this.ctx.taskFields(rec.ktimeNs, t),
        exit_status: status,
        exit_code: (status >> 8) & 0xff,
        signal: status & 0x7f,
      },
    };
  }
}
