/**
 * Turns decoded exec/fork/exit records into process events: updates the
 * process table, attaches parent and (bounded) ancestors, names the user,
 * converts boot time to wall-clock time. What does not change between events of
 * one process (ProcessGuid, start time, its children's Ancestors) is computed
 * once and kept on its table entry (src/process/context.ts).
 */
import { isUtf8 } from 'node:buffer';
import { decodeBytes, splitArgv } from '../../events/bytes.js';
import { SCHEMA_VERSION, type ProcessCreationEvent, type ProcessTerminationEvent } from '../../events/schema.js';
import type { ProcessContext } from '../../process/context.js';
import type { ProcInfo } from '../../process/process-table.js';
import { PMASK, PMASK_PARENT, argvDerivable, type StoreSplit } from '../../store/store.js';
import { jsonString, jsonStrings } from '../../store/json.js';
import { ExecFlags } from './layouts.js';
import { markCut } from '../../events/bytes.js';
import type { ExecRecord, ExitRecord, ForkRecord, ProcessRecord } from './decode.js';

export type ProcessEvent = ProcessCreationEvent | ProcessTerminationEvent;

/** Every process field a creation's store row leaves out when its parent is in the table. */
const CREATION_MASK = 2047;
const CREATION_MASK_NO_PARENT = CREATION_MASK & ~PMASK_PARENT;
const TERMINATION_MASK = PMASK.ProcessGuid | PMASK.ProcessId | PMASK.Image;

export class ProcessEventBuilder {
  /** the table entry the last event returned by handle() is about (null: none) */
  lastProcess: ProcInfo | null = null;
  /**
   * the JSON text of the last event (what JSON.stringify gives, built from parts
   * memoized per process) and its store row (src/store/store.ts)
   */
  lastJson = '';
  lastStored: StoreSplit | null = null;

  constructor(private readonly ctx: ProcessContext) {}

  /** Boot-unique process id in GUID form (stable for the life of the process). */
  guid(pid: number, startNs: bigint): string {
    return this.ctx.guid(pid, startNs);
  }

  /** Apply a record to the table; returns the event it produces (fork: none). */
  handle(rec: ProcessRecord): ProcessEvent | null {
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
    const ctx = this.ctx;
    const { table, clock, users } = ctx;
    let raw: Record<string, string | string[]> | null = null;
    const exe = decodeBytes(rec.exe);
    const cwd = decodeBytes(rec.cwd);
    const argv = decodeArgv(rec.args);
    if (exe.raw !== undefined) (raw ??= {}).Image = exe.raw;
    if (cwd.raw !== undefined) (raw ??= {}).CurrentDirectory = cwd.raw;
    if (argv.raw) (raw ??= {}).argv = argv.raw;

    let truncated: string[] | null = null;
    if (rec.flags) {
      if (rec.flags & ExecFlags.ARGS_TRUNCATED) (truncated ??= []).push('CommandLine');
      if (rec.flags & ExecFlags.EXE_TRUNCATED) (truncated ??= []).push('Image');
      if (rec.flags & ExecFlags.CWD_TRUNCATED) (truncated ??= []).push('CurrentDirectory');
      if (rec.flags & ExecFlags.ARGS_FAULT) (truncated ??= []).push('CommandLine:unreadable');
    }

    // a cut path keeps its tail: marked so it is not taken for a real path (docs/events.md)
    const exeCut = (rec.flags & ExecFlags.EXE_TRUNCATED) !== 0;
    const image = exeCut ? markCut(exe.text) : exe.text;
    const cwdText = rec.flags & ExecFlags.CWD_TRUNCATED ? markCut(cwd.text) : cwd.text;
    const commandLine = argv.list.join(' ');
    const parent = table.get(t.ppid);
    const info = table.exec({ pid: t.tgid, ppid: t.ppid, startNs: t.startNs, image, commandLine, cwd: cwdText, uid: t.uid });
    // what the process_termination event says of this image (rare: cut, or not UTF-8)
    if (exeCut || exe.raw !== undefined) info.imageNote = { cut: exeCut, ...(exe.raw !== undefined ? { raw: exe.raw } : {}) };
    const anc = ctx.ancestors(info);

    const task = ctx.taskFields(rec.ktimeNs, t);
    // one literal, every key present (absent ones undefined: JSON leaves them out): one object shape
    const vigil: ProcessCreationEvent['vigil'] = {
      schema: task.schema,
      seq: task.seq,
      boot_ns: task.boot_ns,
      tid: task.tid,
      uid: task.uid,
      gid: task.gid,
      euid: task.euid,
      session_id: task.session_id,
      comm: task.comm,
      cgroup_id: task.cgroup_id,
      start_ns: task.start_ns,
      argv: argv.list,
      argc: rec.argc,
      exe_dev: rec.exeDev,
      exe_ino: rec.exeIno.toString(),
      ancestors_truncated: anc.cut ? true : undefined,
      truncated: truncated ?? undefined,
      raw: raw ?? undefined,
    };

    const guid = ctx.procGuid(info);
    const parentGuid = parent ? ctx.procGuid(parent) : ctx.guid(t.ppid, t.parentStartNs);
    const user = users.name(t.uid);
    const timestamp = clock.iso(rec.ktimeNs);
    const ev: ProcessCreationEvent = {
      category: 'process_creation',
      timestamp,
      Hostname: ctx.host,
      ProcessId: t.tgid,
      ProcessGuid: guid,
      Image: image,
      CommandLine: commandLine,
      CurrentDirectory: cwdText,
      User: user,
      LogonId: t.loginuid,
      ParentProcessId: t.ppid,
      ParentProcessGuid: parentGuid,
      ParentImage: parent?.image ?? '',
      ParentCommandLine: parent?.commandLine ?? '',
      Ancestors: anc.list,
      vigil,
    };

    // the same text JSON.stringify(ev) gives, from parts: the parent's and the
    // ancestors' are made once per parent (siblings share them)
    const head = `{"category":"process_creation","timestamp":"${timestamp}","Hostname":${ctx.hostJson}`;
    const imageJson = jsonString(image);
    const cmdJson = jsonString(commandLine);
    (info.json ??= {}).image = imageJson;
    const self = `,"ProcessId":${t.tgid},"ProcessGuid":"${guid}","Image":${imageJson},"CommandLine":${cmdJson},"CurrentDirectory":${jsonString(cwdText)}`;
    const userJson = `,"User":${jsonString(user)},"LogonId":${t.loginuid}`;
    let parentJson: string;
    if (parent) {
      const pj = (parent.json ??= {});
      parentJson = pj.parent ??= `,"ParentProcessGuid":"${parentGuid}","ParentImage":${jsonString(parent.image)},"ParentCommandLine":${jsonString(parent.commandLine)}`;
    } else {
      parentJson = `,"ParentProcessGuid":"${parentGuid}","ParentImage":"","ParentCommandLine":""`;
    }
    const ancJson = `,"Ancestors":${(anc.json ??= JSON.stringify(anc.list))}`;
    const argvJson = jsonStrings(argv.list);
    const det = `"argc":${rec.argc},"exe_dev":${rec.exeDev},"exe_ino":"${vigil.exe_ino}"`;
    const common = `,"vigil":{${ctx.taskJson(task)}`;
    const end = `${anc.cut ? ',"ancestors_truncated":true' : ''}${truncated ? `,"truncated":${jsonStrings(truncated)}` : ''}${raw ? `,"raw":${JSON.stringify(raw)}` : ''}}}`;
    this.lastJson = `${head}${self}${userJson},"ParentProcessId":${t.ppid}${parentJson}${ancJson}${common},"argv":${argvJson},${det}${end}`;
    this.lastStored = {
      json: `${head}${userJson}${parent ? '' : parentJson}${common}${end}`,
      pmask: parent ? CREATION_MASK : CREATION_MASK_NO_PARENT,
      detail: `{${argvDerivable(argv.list, commandLine) ? '' : `"argv":${argvJson},`}${det}}`,
    };
    this.lastProcess = info;
    return ev;
  }

  private exit(rec: ExitRecord): ProcessTerminationEvent {
    const t = rec.task;
    const ctx = this.ctx;
    const { table, clock, users } = ctx;
    const p = table.exit(t.tgid, t.startNs);
    const status = rec.exitCode;
    const guid = p && p.startNs === t.startNs ? ctx.procGuid(p) : ctx.guid(t.tgid, t.startNs);
    // the entry is this process (a /proc-seeded one knows its start to the tick: same GUID)
    const same = p !== undefined && ctx.procGuid(p) === guid;
    const note = same ? p.imageNote : undefined;
    const image = p?.image ?? '';
    const user = users.name(t.uid);
    const timestamp = clock.iso(rec.ktimeNs);
    const seq = ctx.nextSeq();
    const bootNs = rec.ktimeNs.toString();
    const ev: ProcessTerminationEvent = {
      category: 'process_termination',
      timestamp,
      Hostname: ctx.host,
      ProcessId: t.tgid,
      ProcessGuid: guid,
      Image: image,
      User: user,
      // tid and comm only where they say something Image and ProcessId do not
      vigil: {
        schema: SCHEMA_VERSION,
        seq,
        boot_ns: bootNs,
        tid: t.pid !== t.tgid ? t.pid : undefined,
        comm: image === '' ? t.comm : undefined,
        exit_status: status,
        exit_code: (status >> 8) & 0xff,
        signal: status & 0x7f,
        truncated: note?.cut ? ['Image'] : undefined,
        raw: note?.raw !== undefined ? { Image: note.raw } : undefined,
      },
    };
    const head = `{"category":"process_termination","timestamp":"${timestamp}","Hostname":${ctx.hostJson}`;
    const imageJson = same ? ((p.json ??= {}).image ??= jsonString(image)) : jsonString(image);
    const tail =
      `,"User":${jsonString(user)},"vigil":{"schema":${SCHEMA_VERSION},"seq":${seq},"boot_ns":"${bootNs}"` +
      `${t.pid !== t.tgid ? `,"tid":${t.pid}` : ''}${image === '' ? `,"comm":${jsonString(t.comm)}` : ''}` +
      `,"exit_status":${status},"exit_code":${ev.vigil.exit_code},"signal":${ev.vigil.signal}${note?.cut ? ',"truncated":["Image"]' : ''}${note?.raw !== undefined ? `,"raw":{"Image":"${note.raw}"}` : ''}}}`;
    this.lastJson = `${head},"ProcessId":${t.tgid},"ProcessGuid":"${guid}","Image":${imageJson}${tail}`;
    this.lastStored = same ? { json: `${head}${tail}`, pmask: TERMINATION_MASK, detail: null } : null;
    this.lastProcess = same ? p : null;
    return ev;
  }
}

/**
 * argv from the kernel's NUL-separated bytes. Valid UTF-8 (the usual case) is
 * decoded once and split; otherwise each argument is decoded on its own and the
 * exact bytes travel along in base64 (docs/events.md, "Non-UTF-8 data").
 */
function decodeArgv(b: Buffer): { list: string[]; raw: string[] | null } {
  if (b.length === 0) return { list: [], raw: null };
  if (isUtf8(b)) {
    const list = b.toString('utf8').split('\0');
    if (b[b.length - 1] === 0) list.pop(); // the final NUL ends the last argument
    return { list, raw: null };
  }
  const parts = splitArgv(b);
  return { list: parts.map((a) => decodeBytes(a).text), raw: parts.map((a) => Buffer.from(a).toString('base64')) };
}
