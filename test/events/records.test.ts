import { describe, expect, it } from 'vitest';
import { decodeHeader } from '../../src/events/records.js';
import { VigilTask } from '../../src/events/layouts.js';
import { decodeProcessRecord } from '../../src/sensors/exec/decode.js';
import { ExecFlags, ExecRecordType as RecordType, VigilExec, VigilExit, VigilFork } from '../../src/sensors/exec/layouts.js';
import { RecordError } from '../../src/kernel/errors.js';

function task(buf: Buffer, off: number, t: { pid: number; tgid: number; ppid: number; comm: string }) {
  const F = VigilTask.fields;
  buf.writeUInt32LE(t.pid, off + F.pid.offset);
  buf.writeUInt32LE(t.tgid, off + F.tgid.offset);
  buf.writeUInt32LE(t.ppid, off + F.ppid.offset);
  buf.writeUInt32LE(1000, off + F.uid.offset);
  buf.writeUInt32LE(4294967295, off + F.loginuid.offset);
  buf.writeBigUInt64LE(123456789n, off + F.start_ns.offset);
  buf.write(t.comm, off + F.comm.offset, 'latin1');
}

function hdr(buf: Buffer, type: number, size: number, version = 1) {
  buf.writeUInt16LE(type, 0);
  buf.writeUInt8(version, 2);
  buf.writeUInt32LE(size, 4);
  buf.writeBigUInt64LE(42n, 8);
}

export function execRecord(exe: string | Buffer, cwd: string, args: Buffer, flags = 0): Buffer {
  const e = Buffer.isBuffer(exe) ? exe : Buffer.from(exe);
  const c = Buffer.from(cwd);
  const size = VigilExec.size + e.length + c.length + args.length;
  const buf = Buffer.alloc(size);
  hdr(buf, RecordType.EXEC, size);
  task(buf, VigilExec.fields.task.offset, { pid: 10, tgid: 10, ppid: 1, comm: 'cat' });
  const F = VigilExec.fields;
  buf.writeUInt32LE(flags, F.flags.offset);
  buf.writeUInt32LE(2, F.argc.offset);
  buf.writeUInt32LE(e.length, F.exe_len.offset);
  buf.writeUInt32LE(c.length, F.cwd_len.offset);
  buf.writeUInt32LE(args.length, F.args_len.offset);
  buf.writeUInt32LE(0x800001, F.exe_dev.offset);
  buf.writeBigUInt64LE(777n, F.exe_ino.offset);
  e.copy(buf, F.data.offset);
  c.copy(buf, F.data.offset + e.length);
  args.copy(buf, F.data.offset + e.length + c.length);
  return buf;
}

const dec = (b: Buffer, len = b.length) => decodeProcessRecord(new DataView(b.buffer, b.byteOffset, b.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength), 0, len);

describe('record decoding', () => {
  it('decodes an exec record with its strings', () => {
    const r = dec(execRecord('/usr/bin/cat', '/tmp', Buffer.from('cat\0/etc/hosts\0'), ExecFlags.ARGS_TRUNCATED));
    expect(r.type).toBe('exec');
    if (r.type !== 'exec') return;
    expect(r.exe.toString()).toBe('/usr/bin/cat');
    expect(r.cwd.toString()).toBe('/tmp');
    expect(r.args.toString()).toBe('cat\0/etc/hosts\0');
    expect(r.task).toMatchObject({ pid: 10, tgid: 10, ppid: 1, uid: 1000, comm: 'cat', loginuid: 4294967295, startNs: 123456789n });
    expect(r.exeIno).toBe(777n);
    expect(r.flags & ExecFlags.ARGS_TRUNCATED).toBeTruthy();
    expect(r.ktimeNs).toBe(42n);
  });

  it('decodes at a non-zero offset inside a larger view', () => {
    const rec = execRecord('/bin/x', '/', Buffer.from('x\0'));
    const big = Buffer.alloc(rec.length + 64, 0xaa);
    rec.copy(big, 40);
    const r = decodeProcessRecord(new DataView(big.buffer, big.byteOffset, big.byteLength), new Uint8Array(big.buffer, big.byteOffset, big.byteLength), 40, rec.length);
    expect(r.type === 'exec' && r.exe.toString()).toBe('/bin/x');
  });

  it('decodes fork and exit records', () => {
    const f = Buffer.alloc(VigilFork.size);
    hdr(f, RecordType.FORK, f.length);
    task(f, 16, { pid: 11, tgid: 11, ppid: 10, comm: 'sh' });
    expect(dec(f)).toMatchObject({ type: 'fork', task: { tgid: 11, ppid: 10 } });
    const x = Buffer.alloc(VigilExit.size);
    hdr(x, RecordType.EXIT, x.length);
    task(x, 16, { pid: 11, tgid: 11, ppid: 10, comm: 'sh' });
    x.writeInt32LE(256, VigilExit.fields.exit_code.offset);
    expect(dec(x)).toMatchObject({ type: 'exit', exitCode: 256 });
  });

  it('rejects a record shorter than its header', () => {
    expect(() => dec(Buffer.alloc(8))).toThrow(RecordError);
    expect(() => dec(Buffer.alloc(8))).toThrow(/shorter than its 16-byte header/);
  });

  it('rejects a wrong version', () => {
    const b = execRecord('/bin/x', '/', Buffer.from('x\0'));
    b.writeUInt8(9, 2);
    expect(() => dec(b)).toThrow(/version 9/);
  });

  it('rejects a size larger than what was delivered', () => {
    const b = execRecord('/bin/x', '/', Buffer.from('x\0'));
    expect(() => dec(b, b.length - 1)).toThrow(/says \d+ bytes/);
  });

  it('rejects string lengths that overrun the record', () => {
    const b = execRecord('/bin/x', '/', Buffer.from('x\0'));
    b.writeUInt32LE(1 << 20, VigilExec.fields.args_len.offset);
    expect(() => dec(b)).toThrow(/overrun/);
  });

  it('rejects truncated fixed parts and unknown types', () => {
    const f = Buffer.alloc(40);
    hdr(f, RecordType.FORK, 40);
    expect(() => dec(f)).toThrow(/fork record of 40 bytes/);
    const u = Buffer.alloc(32);
    hdr(u, 77, 32);
    expect(() => dec(u)).toThrow(/unknown record type 77/);
  });

  it('never throws anything but RecordError on garbage', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.alloc(Math.floor(rnd() * 300));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(rnd() * 256);
      if (b.length >= 4 && rnd() < 0.5) b.writeUInt8(1, 2); // often a valid version
      if (b.length >= 8 && rnd() < 0.5) b.writeUInt32LE(b.length, 4);
      if (b.length >= 2 && rnd() < 0.5) b.writeUInt16LE(1 + Math.floor(rnd() * 3), 0);
      try {
        dec(b);
      } catch (e) {
        expect(e).toBeInstanceOf(RecordError);
      }
    }
  });

  it('reads the header fields', () => {
    const b = execRecord('/a', '/', Buffer.alloc(0));
    const h = decodeHeader(new DataView(b.buffer, b.byteOffset, b.byteLength), 0, b.length);
    expect(h).toEqual({ type: RecordType.EXEC, version: 1, size: b.length, ktimeNs: 42n });
  });
});
