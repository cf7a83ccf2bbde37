/**
 * Cut paths and process_termination (issue 9, item 11): a path the kernel cut
 * keeps its tail and starts with "…", never with "/" like a real path; the
 * termination of a process whose image was cut or is not UTF-8 says so
 * (vigil.truncated, vigil.raw) like its creation did; the JSON text the builder
 * makes is JSON.stringify's and the events validate against the schema.
 */
import { describe, expect, it } from 'vitest';
import type { TaskIds } from '../../src/events/records.js';
import { ProcessContext } from '../../src/process/context.js';
import { ProcessEventBuilder } from '../../src/sensors/exec/events.js';
import { ExecFlags } from '../../src/sensors/exec/layouts.js';
import type { ExecRecord, ProcessRecord } from '../../src/sensors/exec/decode.js';
import { FileEventBuilder } from '../../src/sensors/file/events.js';
import { FileFlags, FileOp } from '../../src/sensors/file/layouts.js';
import { EventSchema } from '../../src/sensors/index.js';

const task = (pid: number): TaskIds => ({ pid, tgid: pid, ppid: 1, uid: 0, gid: 0, euid: 0, loginuid: 0, sessionid: 1, startNs: BigInt(pid) * 1_000_000_000n, parentStartNs: 1n, cgroupId: 1n, comm: 'deep' });
const exec = (pid: number, exe: Buffer, flags: number): ExecRecord => ({
  type: 'exec', ktimeNs: 5_000_000_000n, task: task(pid), flags, argc: 1, exeDev: 1, exeIno: 2n, exe, cwd: Buffer.from('/c/d'), args: Buffer.from('deep\0'),
});
const exit = (pid: number): ProcessRecord => ({ type: 'exit', ktimeNs: 6_000_000_000n, task: task(pid), exitCode: 0 });

function run(records: ProcessRecord[]) {
  const b = new ProcessEventBuilder(new ProcessContext({ host: 'h', bootId: 'b' }));
  return records.map((r) => {
    const ev = b.handle(r)!;
    expect(JSON.parse(b.lastJson)).toEqual(JSON.parse(JSON.stringify(ev)));
    expect(EventSchema.safeParse(ev).error).toBeUndefined();
    return ev as unknown as Record<string, any>;
  });
}

describe('cut paths are marked', () => {
  it('a cut Image and CurrentDirectory start with "…"; the termination says truncated: ["Image"]', () => {
    const [created, ended] = run([exec(10, Buffer.from('/b/c/deep'), ExecFlags.EXE_TRUNCATED | ExecFlags.CWD_TRUNCATED), exit(10)]);
    expect(created!.Image).toBe('…/b/c/deep');
    expect(created!.CurrentDirectory).toBe('…/c/d');
    expect(created!.vigil.truncated).toEqual(['Image', 'CurrentDirectory']);
    expect(ended).toMatchObject({ category: 'process_termination', Image: '…/b/c/deep', vigil: { truncated: ['Image'] } });
  });

  it('an Image that is not UTF-8: the termination carries its exact bytes too', () => {
    const bytes = Buffer.concat([Buffer.from('/opt/'), Buffer.from([0xff, 0xfe]), Buffer.from('/x')]);
    const [created, ended] = run([exec(11, bytes, 0), exit(11)]);
    expect(created!.vigil.raw).toEqual({ Image: bytes.toString('base64') });
    expect(ended!.Image).toBe('/opt/\\xff\\xfe/x');
    expect(ended!.vigil.raw).toEqual({ Image: bytes.toString('base64') });
    expect(ended!.vigil.truncated).toBeUndefined();
  });

  it('an ordinary process: neither', () => {
    const [, ended] = run([exec(12, Buffer.from('/bin/true'), 0), exit(12)]);
    expect(ended!.vigil.truncated).toBeUndefined();
    expect(ended!.vigil.raw).toBeUndefined();
  });

  it('a cut TargetFilename (file sensor) starts with "…"', () => {
    const b = new FileEventBuilder(new ProcessContext({ host: 'h', bootId: 'b' }));
    const ev = b.build({
      ktimeNs: 1n, task: task(13), result: 3, op: FileOp.OPEN_WRITE, flags: FileFlags.PATH_TRUNCATED | FileFlags.PATH_KERNEL, openFlags: 0o1, mode: 0, oldMode: 0, dev: 1, ino: 5n,
      path: Buffer.from('/y/z/file'), path2: Buffer.alloc(0),
    }) as unknown as Record<string, any>;
    expect(ev.TargetFilename).toBe('…/y/z/file');
    expect(ev.vigil.truncated).toEqual(['TargetFilename']);
    expect(EventSchema.safeParse(ev).error).toBeUndefined();
  });
});
