/** struct vigil_file records → file events, with the shared process context. */
import { posix } from 'node:path';
import { decodeBytes, markCut } from '../../events/bytes.js';
import { errnoName } from '../../kernel/errors.js';
import { jsonString, jsonStrings } from '../../store/json.js';
import type { ProcessContext } from '../../process/context.js';
import type { FileRecord } from './decode.js';
import { FileFlags, FileOp } from './layouts.js';
import type { FileEvent } from './schema.js';

const O_FLAGS: Array<[number, string]> = [
  [0o1, 'O_WRONLY'], [0o2, 'O_RDWR'], [0o100, 'O_CREAT'], [0o200, 'O_EXCL'], [0o1000, 'O_TRUNC'], [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'], [0o10000, 'O_DSYNC'], [0o200000, 'O_DIRECTORY'], [0o400000, 'O_NOFOLLOW'], [0o2000000, 'O_CLOEXEC'],
  [0o20000000, 'O_TMPFILE'], [0o10000000, 'O_PATH'],
];

function openFlagNames(f: number): string[] {
  const out = (f & 3) === 0 ? ['O_RDONLY'] : [];
  for (const [bit, name] of O_FLAGS) if (name === 'O_TMPFILE' ? (f & 0o20200000) === 0o20200000 : f & bit) out.push(name);
  return out;
}

const octal = (m: number) => `0${(m & 0o7777).toString(8).padStart(3, '0')}`;

interface PathText {
  text: string;
  raw?: string;
}

/** A joined path is normalized lexically ("." and ".." folded, "//" collapsed). */
function pathText(b: Uint8Array, joined: boolean, cut = false): PathText {
  const d = decodeBytes(b);
  const norm = joined && d.text.length ? posix.normalize(d.text) : d.text;
  // a cut path keeps its tail: marked so it is not taken for a real path
  const text = cut ? markCut(norm) : norm;
  return d.raw !== undefined ? { text, raw: d.raw } : { text };
}

export class FileEventBuilder {
  /**
   * the JSON text of the last event build() returned: what JSON.stringify gives,
   * written while the event is built (the agent does not serialize it again)
   */
  lastJson = '';

  constructor(private readonly ctx: ProcessContext) {}

  build(r: FileRecord): FileEvent {
    const ctx = this.ctx;
    const f = r.flags;
    const target = pathText(r.path, (f & FileFlags.PATH_JOINED) !== 0, (f & FileFlags.PATH_TRUNCATED) !== 0);
    // the task fields' object is fresh per event: it becomes vigil (no copy)
    const task = ctx.taskFields(r.ktimeNs, r.task);
    const a = ctx.actor(r.ktimeNs, r.task);
    let category: string;
    let operation: string;
    let to: PathText | null = null;
    switch (r.op) {
      case FileOp.OPEN_WRITE:
        category = 'file_event';
        operation = f & FileFlags.CREATED ? 'create' : 'write';
        break;
      case FileOp.OPEN_READ:
        category = 'file_access';
        operation = 'read';
        break;
      case FileOp.UNLINK:
        category = 'file_delete';
        operation = 'delete';
        break;
      case FileOp.RENAME:
        category = 'file_rename';
        operation = 'rename';
        to = pathText(r.path2, (f & FileFlags.PATH2_JOINED) !== 0, (f & FileFlags.PATH2_TRUNCATED) !== 0);
        break;
      case FileOp.CHMOD:
        category = 'file_change';
        operation = 'chmod';
        break;
      case FileOp.TRUNCATE:
        category = 'file_change';
        operation = 'truncate';
        break;
      default:
        throw new Error(`file record with unknown op ${r.op}`);
    }
    // the object and its JSON text are written side by side, in the same member order
    const pathSource = f & FileFlags.PATH_KERNEL ? 'kernel' : 'joined';
    const vigil = task as unknown as Record<string, unknown>;
    vigil.operation = operation;
    vigil.result = r.result;
    vigil.path_source = pathSource;
    let vj = `${ctx.taskJson(task)},"operation":"${operation}","result":${r.result},"path_source":"${pathSource}"`;
    if (r.result < 0) {
      const e = errnoName(-r.result);
      vigil.error = e;
      vj += `,"error":${jsonString(e)}`;
    }
    if (r.ino) {
      const ino = r.ino.toString();
      vigil.dev = r.dev;
      vigil.ino = ino;
      vj += `,"dev":${r.dev},"ino":"${ino}"`;
    }
    switch (r.op) {
      case FileOp.OPEN_WRITE:
      case FileOp.OPEN_READ: {
        const flags = openFlagNames(r.openFlags);
        vigil.open_flags = flags;
        vj += `,"open_flags":${jsonStrings(flags)}`;
        if (r.openFlags & 0o100) {
          const mode = octal(r.mode);
          vigil.mode = mode;
          vj += `,"mode":"${mode}"`;
        }
        if (r.op === FileOp.OPEN_WRITE) {
          const created = (f & FileFlags.CREATED) !== 0;
          vigil.created = created;
          vj += `,"created":${created}`;
        }
        break;
      }
      case FileOp.UNLINK:
        if (f & FileFlags.DIR) {
          vigil.directory = true;
          vj += ',"directory":true';
        }
        break;
      case FileOp.CHMOD: {
        const mode = octal(r.mode);
        vigil.mode = mode;
        vj += `,"mode":"${mode}"`;
        if (f & FileFlags.OLD_MODE) {
          const old = octal(r.oldMode);
          vigil.old_mode = old;
          vj += `,"old_mode":"${old}"`;
        }
        break;
      }
    }
    // a rename's TargetFilename is the new name (as SigmaHQ's file_rename rules read it), SourceFilename the old
    let truncated: string[] | null = null;
    if (f & FileFlags.PATH_TRUNCATED) (truncated ??= []).push(to ? 'SourceFilename' : 'TargetFilename');
    if (f & FileFlags.PATH_FAULT) (truncated ??= []).push('TargetFilename:unreadable');
    if (to && f & FileFlags.PATH2_TRUNCATED) (truncated ??= []).push('TargetFilename');
    if (truncated) {
      vigil.truncated = truncated;
      vj += `,"truncated":${jsonStrings(truncated)}`;
    }
    let raw: Record<string, string> | null = null;
    if (target.raw !== undefined) (raw ??= {})[to ? 'SourceFilename' : 'TargetFilename'] = target.raw;
    if (to?.raw !== undefined) (raw ??= {}).TargetFilename = to.raw;
    if (raw) {
      vigil.raw = raw;
      vj += `,"raw":${JSON.stringify(raw)}`;
    }

    const targetName = to ? to.text : target.text;
    const ev: Record<string, unknown> = {
      category,
      timestamp: a.timestamp,
      Hostname: a.Hostname,
      ProcessId: a.ProcessId,
      ProcessGuid: a.ProcessGuid,
      Image: a.Image,
      User: a.User,
      TargetFilename: targetName,
    };
    let json =
      `{"category":"${category}","timestamp":"${a.timestamp}","Hostname":${ctx.hostJson},"ProcessId":${a.ProcessId},"ProcessGuid":"${a.ProcessGuid}",` +
      `"Image":${jsonString(a.Image)},"User":${jsonString(a.User)},"TargetFilename":${jsonString(targetName)}`;
    if (r.op === FileOp.OPEN_WRITE && f & FileFlags.CREATED) {
      ev.CreationUtcTime = a.timestamp;
      json += `,"CreationUtcTime":"${a.timestamp}"`;
    } else if (to) {
      ev.SourceFilename = target.text;
      json += `,"SourceFilename":${jsonString(target.text)}`;
    }
    ev.vigil = vigil;
    this.lastJson = `${json},"vigil":{${vj}}}`;
    return ev as unknown as FileEvent;
  }
}
