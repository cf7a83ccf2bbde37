/** struct vigil_file records → file events, with the shared process context. */
import { posix } from 'node:path';
import { decodeBytes, markCut } from '../../events/bytes.js';
import { errnoName } from '../../kernel/errors.js';
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
  constructor(private readonly ctx: ProcessContext) {}

  build(r: FileRecord): FileEvent {
    const target = pathText(r.path, (r.flags & FileFlags.PATH_JOINED) !== 0, (r.flags & FileFlags.PATH_TRUNCATED) !== 0);
    const truncated: string[] = [];
    const raw: Record<string, string> = {};
    const vigil: Record<string, unknown> = {
      ...this.ctx.taskFields(r.ktimeNs, r.task),
      operation: 'write',
      result: r.result,
      path_source: r.flags & FileFlags.PATH_KERNEL ? 'kernel' : 'joined',
    };
    if (r.result < 0) vigil.error = errnoName(-r.result);
    if (r.ino) {
      vigil.dev = r.dev;
      vigil.ino = r.ino.toString();
    }
    if (r.flags & FileFlags.PATH_TRUNCATED) truncated.push('TargetFilename');
    if (r.flags & FileFlags.PATH_FAULT) truncated.push('TargetFilename:unreadable');
    if (target.raw !== undefined) raw.TargetFilename = target.raw;

    const ev: Record<string, unknown> = { category: 'file_event', ...this.ctx.actor(r.ktimeNs, r.task), TargetFilename: target.text };
    switch (r.op) {
      case FileOp.OPEN_WRITE:
      case FileOp.OPEN_READ: {
        const created = (r.flags & FileFlags.CREATED) !== 0;
        vigil.open_flags = openFlagNames(r.openFlags);
        if (r.openFlags & 0o100) vigil.mode = octal(r.mode);
        if (r.op === FileOp.OPEN_READ) {
          ev.category = 'file_access';
          vigil.operation = 'read';
        } else {
          vigil.operation = created ? 'create' : 'write';
          vigil.created = created;
          if (created) ev.CreationUtcTime = ev.timestamp;
        }
        break;
      }
      case FileOp.UNLINK:
        ev.category = 'file_delete';
        vigil.operation = 'delete';
        if (r.flags & FileFlags.DIR) vigil.directory = true;
        break;
      case FileOp.RENAME: {
        const to = pathText(r.path2, (r.flags & FileFlags.PATH2_JOINED) !== 0, (r.flags & FileFlags.PATH2_TRUNCATED) !== 0);
        ev.category = 'file_rename';
        vigil.operation = 'rename';
        // TargetFilename is the new name (as SigmaHQ's file_rename rules read it)
        ev.SourceFilename = target.text;
        ev.TargetFilename = to.text;
        delete raw.TargetFilename;
        if (target.raw !== undefined) raw.SourceFilename = target.raw;
        if (to.raw !== undefined) raw.TargetFilename = to.raw;
        const t = truncated.indexOf('TargetFilename');
        if (t >= 0) truncated[t] = 'SourceFilename';
        if (r.flags & FileFlags.PATH2_TRUNCATED) truncated.push('TargetFilename');
        break;
      }
      case FileOp.CHMOD:
        ev.category = 'file_change';
        vigil.operation = 'chmod';
        vigil.mode = octal(r.mode);
        if (r.flags & FileFlags.OLD_MODE) vigil.old_mode = octal(r.oldMode);
        break;
      case FileOp.TRUNCATE:
        ev.category = 'file_change';
        vigil.operation = 'truncate';
        break;
      default:
        throw new Error(`file record with unknown op ${r.op}`);
    }
    if (truncated.length) vigil.truncated = truncated;
    if (Object.keys(raw).length) vigil.raw = raw;
    ev.vigil = vigil;
    return ev as unknown as FileEvent;
  }
}
