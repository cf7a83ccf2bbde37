import { describe, expect, it } from 'vitest';
import { compilePrefixes, verdict } from '../../../src/sensors/file/prefixes.js';
import { decodeFileRecord } from '../../../src/sensors/file/decode.js';
import { FileEventBuilder } from '../../../src/sensors/file/events.js';
import { FileFlags, FileOp, FileRecordType, VigilFile } from '../../../src/sensors/file/layouts.js';
import { VigilHdr, VigilTask } from '../../../src/events/layouts.js';
import { ProcessContext } from '../../../src/process/context.js';
import { ProcessTable } from '../../../src/process/process-table.js';
import { EventSchema } from '../../../src/sensors/index.js';
import { RecordError } from '../../../src/kernel/errors.js';

describe('file sensor prefixes (the kernel decides by the longest prefix alone)', () => {
  const cfg = (c: Partial<{ include: string[]; exclude: string[]; read: string[] }>) => compilePrefixes({ include: [], exclude: [], read: [], ...c });
  const v = (c: ReturnType<typeof cfg>, p: string, read = false) => verdict(c.entries, c.hasInclude, p, read);

  it('exclude, and a longer include or read prefix under it wins for its subtree', () => {
    const c = cfg({ exclude: ['/var/'], include: [], read: ['/var/secret/'] });
    expect(v(c, '/var/log/x')).toBe(false);
    expect(v(c, '/var/secret/k', true)).toBe(true);
    expect(v(c, '/var/secret/k')).toBe(false); // the read prefix does not re-include writes
    expect(v(c, '/etc/passwd')).toBe(true);
    expect(v(c, '/etc/passwd', true)).toBe(false); // reads are off by default
  });

  it('include: only under it; an exclude inside it; a read prefix inside it keeps writes included', () => {
    const c = cfg({ include: ['/etc/'], exclude: ['/etc/ssl/'], read: ['/etc/shadow'] });
    expect(v(c, '/etc/passwd')).toBe(true);
    expect(v(c, '/tmp/x')).toBe(false);
    expect(v(c, '/etc/ssl/certs/a')).toBe(false);
    expect(v(c, '/etc/shadow')).toBe(true);
    expect(v(c, '/etc/shadow', true)).toBe(true);
    expect(c.hasInclude).toBe(true);
  });

  it('rejects relative and over-long prefixes with a message naming them', () => {
    expect(() => cfg({ exclude: ['tmp/'] })).toThrow(/absolute: "tmp\/"/);
    expect(() => cfg({ read: ['/' + 'a'.repeat(300)] })).toThrow(/longer than 256 bytes/);
  });
});

function record(op: number, path: string | Buffer, path2 = '', flags = 0, result = 0n): Buffer {
  const p = Buffer.from(path);
  const p2 = Buffer.from(path2);
  const b = Buffer.alloc(VigilFile.size + p.length + p2.length);
  const F = VigilFile.fields;
  b.writeUInt16LE(FileRecordType.FILE, VigilHdr.fields.type.offset);
  b.writeUInt8(1, VigilHdr.fields.version.offset);
  b.writeUInt32LE(b.length, VigilHdr.fields.size.offset);
  b.writeBigUInt64LE(5_000_000_000n, VigilHdr.fields.ktime_ns.offset);
  const t = F.task.offset;
  b.writeUInt32LE(4242, t + VigilTask.fields.pid.offset);
  b.writeUInt32LE(4242, t + VigilTask.fields.tgid.offset);
  b.write('sh', t + VigilTask.fields.comm.offset);
  b.writeBigInt64LE(result, F.result.offset);
  b.writeUInt32LE(op, F.op.offset);
  b.writeUInt32LE(flags, F.flags.offset);
  b.writeUInt32LE(0o1101, F.open_flags.offset);
  b.writeUInt32LE(0o644, F.mode.offset);
  b.writeUInt32LE(p.length, F.path_len.offset);
  b.writeUInt32LE(p2.length, F.path2_len.offset);
  p.copy(b, F.data.offset);
  p2.copy(b, F.data.offset + p.length);
  return b;
}

const dec = (b: Buffer) => decodeFileRecord(new DataView(b.buffer, b.byteOffset, b.byteLength), b, 0, b.length);

describe('file records → events', () => {
  const ctx = new ProcessContext({ table: new ProcessTable(), host: 'h', bootId: 'b' });
  const build = new FileEventBuilder(ctx);

  it('a created file: file_event with Sysmon names, flags and mode; valid against the schema', () => {
    const e = build.build(dec(record(FileOp.OPEN_WRITE, '/tmp/x', '', FileFlags.PATH_KERNEL | FileFlags.CREATED, 3n))) as Record<string, any>;
    expect(e).toMatchObject({ category: 'file_event', TargetFilename: '/tmp/x', ProcessId: 4242, Image: '[sh]', Hostname: 'h' });
    expect(e.vigil).toMatchObject({ operation: 'create', created: true, mode: '0644', path_source: 'kernel', result: 3 });
    expect(e.vigil.open_flags).toEqual(['O_WRONLY', 'O_CREAT', 'O_TRUNC']);
    expect(EventSchema.safeParse(e).error?.issues).toBeUndefined();
  });

  it('a rename: SourceFilename is the old path, TargetFilename the new one; joined paths normalized', () => {
    const e = build.build(dec(record(FileOp.RENAME, '/tmp/d/./a', '/tmp/d/sub/../b', FileFlags.PATH_JOINED | FileFlags.PATH2_JOINED))) as Record<string, any>;
    expect([e.category, e.SourceFilename, e.TargetFilename]).toEqual(['file_rename', '/tmp/d/a', '/tmp/d/b']);
    expect(EventSchema.safeParse(e).error?.issues).toBeUndefined();
  });

  it('a failed delete carries the errno name; non-UTF-8 bytes are escaped and kept in base64', () => {
    const raw = Buffer.concat([Buffer.from('/tmp/a\n'), Buffer.from([0xff])]);
    const e = build.build(dec(record(FileOp.UNLINK, raw, '', FileFlags.PATH_JOINED | FileFlags.PATH_TRUNCATED, -13n))) as Record<string, any>;
    expect(e.category).toBe('file_delete');
    // a path whose head the kernel could not fit is marked visibly: it must not pass for a real path
    expect(e.TargetFilename).toBe('…/tmp/a\n\\xff');
    expect(Buffer.from(e.vigil.raw.TargetFilename, 'base64')).toEqual(raw);
    expect(e.vigil).toMatchObject({ result: -13, error: 'EACCES', truncated: ['TargetFilename'] });
    expect(EventSchema.safeParse(e).error?.issues).toBeUndefined();
  });

  it('the JSON text written while building is exactly JSON.stringify of the event, for every op and flag', () => {
    const raw = Buffer.concat([Buffer.from('/tmp/"q"\t'), Buffer.from([0xfe])]);
    const F = FileFlags;
    const cases: Array<[number, string | Buffer, string, number, bigint]> = [
      [FileOp.OPEN_WRITE, '/tmp/x', '', F.PATH_KERNEL | F.CREATED, 3n],
      [FileOp.OPEN_WRITE, '/tmp/x', '', F.PATH_KERNEL, 4n],
      [FileOp.OPEN_READ, '/etc/shadow', '', F.PATH_KERNEL, 5n],
      [FileOp.UNLINK, '/tmp/dir', '', F.PATH_JOINED | F.DIR, 0n],
      [FileOp.UNLINK, raw, '', F.PATH_JOINED | F.PATH_TRUNCATED | F.PATH_FAULT, -13n],
      [FileOp.RENAME, raw, '/tmp/d/sub/../b', F.PATH_JOINED | F.PATH2_JOINED | F.PATH_TRUNCATED | F.PATH2_TRUNCATED | F.PATH_FAULT, 0n],
      [FileOp.RENAME, '/tmp/a', raw, F.PATH_JOINED, -2n],
      [FileOp.CHMOD, '/tmp/run.sh', '', F.PATH_KERNEL | F.OLD_MODE, 0n],
      [FileOp.CHMOD, '/tmp/run.sh', '', F.PATH_KERNEL, -1n],
      [FileOp.TRUNCATE, '/tmp/log', '', F.PATH_KERNEL, 0n],
    ];
    for (const [op, p1, p2, flags, result] of cases) {
      const b = record(op, p1, p2, flags, result);
      b.writeBigUInt64LE(77n, VigilFile.fields.ino.offset);
      b.writeUInt32LE(0o755, VigilFile.fields.mode.offset);
      const e = build.build(dec(b));
      expect(build.lastJson).toBe(JSON.stringify(e));
      expect(EventSchema.safeParse(e).error?.issues).toBeUndefined();
    }
  });

  it('malformed records are RecordErrors (counted by the sensor), never a crash', () => {
    const short = record(FileOp.UNLINK, '/x').subarray(0, 100);
    short.writeUInt32LE(100, VigilHdr.fields.size.offset);
    expect(() => dec(short)).toThrow(RecordError);
    const overrun = record(FileOp.UNLINK, '/x');
    overrun.writeUInt32LE(5000, VigilFile.fields.path_len.offset);
    expect(() => dec(overrun)).toThrow(/overrun/);
    const badOp = record(99, '/x');
    expect(() => dec(badOp)).toThrow(/unknown op 99/);
  });
});
