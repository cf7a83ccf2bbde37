/**
 * Tamper protection of origin records (src/provenance/tamper.ts,
 * bpf/provenance/tamper.bpf.c): the record and key layouts and enums agree
 * with the BTF of both builds of the object; a record decodes into an event of
 * the published schema; the CLI's exemption is a no-op where no agent pinned
 * the exemption map. The hooks themselves run in the VM suite
 * (provenance.vm.test.ts: BPF LSM).
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { BpfObject } from '../../src/kernel/index.js';
import { checkEnum, checkLayouts, VigilHdr, VigilTask } from '../../src/events/layouts.js';
import { BPF_OBJECT_DIR } from '../../src/sensors/bpf-sensor.js';
import { EventSchema } from '../../src/sensors/index.js';
import { ProcessContext } from '../../src/process/context.js';
import { TAMPER_LAYOUTS, TamperRecordType, TamperStat, decodeTamper, tamperEvent, withTamperExemption } from '../../src/provenance/index.js';
import { TamperOp, VigilXattrTamper } from '../../src/provenance/tamper.js';

describe('provenance tamper protection', () => {
  for (const name of ['tamper.bpf.o', 'tamper.compat.bpf.o']) {
    it(`${name} carries the tamper record, the exemption value and the enums of tamper.h`, () => {
      const obj = BpfObject.open(`${BPF_OBJECT_DIR}${name}`);
      try {
        const btf = obj.btf();
        expect(checkLayouts(btf, TAMPER_LAYOUTS, TAMPER_LAYOUTS.map((l) => l.name))).toEqual([]);
        expect(checkEnum(btf, 'vigil_tamper_record_type', 'VIGIL_REC_', TamperRecordType)).toEqual([]);
        expect(checkEnum(btf, 'vigil_tamper_stat', 'VIGIL_STAT_', TamperStat)).toEqual([]);
        expect(checkEnum(btf, 'vigil_tamper_op', 'VIGIL_TAMPER_', TamperOp)).toEqual([]);
        expect(obj.programs().map((p) => p.section).sort()).toEqual(['lsm/inode_removexattr', 'lsm/inode_setxattr']);
      } finally {
        obj.close();
      }
    });
  }

  it('a record decodes into a provenance_tamper event of the published schema', () => {
    const b = Buffer.alloc(VigilXattrTamper.size);
    const F = VigilXattrTamper.fields;
    b.writeUInt16LE(TamperRecordType.XATTR_TAMPER, 0);
    b.writeUInt8(1, VigilHdr.fields.version.offset);
    b.writeUInt32LE(VigilXattrTamper.size, VigilHdr.fields.size.offset);
    b.writeBigUInt64LE(123_000_000n, VigilHdr.fields.ktime_ns.offset);
    const t = F.task.offset;
    b.writeUInt32LE(4242, t + VigilTask.fields.pid.offset);
    b.writeUInt32LE(4242, t + VigilTask.fields.tgid.offset);
    b.writeUInt32LE(1, t + VigilTask.fields.ppid.offset);
    b.write('setfattr', t + VigilTask.fields.comm.offset);
    b.writeBigUInt64LE(77n, F.ino.offset);
    b.writeUInt32LE(0x800001, F.dev.offset);
    b.writeUInt32LE(1000, F.owner.offset);
    b.writeUInt32LE(2, F.op.offset);
    b.write('trusted.vigil.origin', F.name.offset);
    const a = decodeTamper(new DataView(b.buffer, b.byteOffset, b.length), b, 0);
    expect(a).toMatchObject({ ino: 77n, dev: 0x800001, owner: 1000, op: 'remove', name: 'trusted.vigil.origin', task: { tgid: 4242, comm: 'setfattr' } });
    const ev = tamperEvent(a, new ProcessContext(), '/home/ann/dl/tool');
    expect(EventSchema.safeParse(ev).error?.issues).toBeUndefined();
    expect(ev).toMatchObject({ category: 'provenance_tamper', TargetFilename: '/home/ann/dl/tool', Image: '[setfattr]', vigil: { action: 'xattr_remove_refused', ino: '77', owner: 1000 } });
    expect(tamperEvent({ ...a, op: 'set' }, new ProcessContext(), null)).toMatchObject({ TargetFilename: '', vigil: { action: 'xattr_set_refused' } });
  });

  it('without an agent\'s pinned exemptions the CLI\'s exemption only runs the change', () => {
    const pin = '/nonexistent/vigil/tamper_exempt';
    expect(existsSync(pin)).toBe(false);
    expect(withTamperExemption(() => 7, pin)).toBe(7);
  });
});
