/**
 * The libbpf binding against the real kernel: maps (update/lookup/delete/
 * iterate/pin), per-CPU reads, verifier logs in errors, attach, ring buffer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { BpfError, BpfMap, BpfObject, BPF_NOEXIST, RingBufferReader } from '../../src/kernel/index.js';
import { objectPath, readKernelStats } from '../../src/sensors/bpf-sensor.js';
import { decodeHeader } from '../../src/events/records.js';
import { RecordType } from '../../src/events/layouts.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

const open: BpfObject[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

function selftest(): BpfObject {
  const o = BpfObject.open(objectPath('selftest.bpf.o'), { skipPrograms: ['selftest_rejected'] });
  open.push(o);
  return o.load();
}

describe('kernel binding', () => {
  it('updates, looks up, iterates and deletes hash entries', () => {
    const m = selftest().map('selftest_hash');
    expect(m.info).toMatchObject({ keySize: 4, valueSize: 8, maxEntries: 64 });
    for (let i = 10; i < 20; i++) m.update(u32(i), u64(BigInt(i * 100)));
    expect(m.lookup(u32(15))!.readBigUInt64LE(0)).toBe(1500n);
    expect(m.lookup(u32(99))).toBeNull();
    expect([...m.keys()].map((k) => k.readUInt32LE(0)).sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(m.delete(u32(15))).toBe(true);
    expect(m.delete(u32(15))).toBe(false);
    expect(() => m.update(u32(10), u64(1n), BPF_NOEXIST)).toThrow(/EEXIST/);
    expect(() => m.update(Buffer.alloc(3), u64(1n))).toThrow(/key is 3 bytes, the map takes 4/);
    expect(() => m.update(u32(1), Buffer.alloc(4))).toThrow(/value is 4 bytes, the map takes 8/);
  });

  it('pins a map and opens it by path from "another process" (a second handle)', () => {
    const path = '/sys/fs/bpf/vigil-selftest-hash';
    rmSync(path, { force: true });
    const m = selftest().map('selftest_hash');
    m.update(u32(7), u64(77n));
    m.pin(path);
    try {
      const p = BpfMap.openPinned(path);
      expect(p.info).toMatchObject({ keySize: 4, valueSize: 8, maxEntries: 64, name: 'selftest_hash' });
      expect(p.lookup(u32(7))!.readBigUInt64LE(0)).toBe(77n);
      p.update(u32(8), u64(88n));
      expect(m.lookup(u32(8))!.readBigUInt64LE(0)).toBe(88n);
      p.close();
    } finally {
      rmSync(path, { force: true });
    }
    expect(() => BpfMap.openPinned(path)).toThrow(/bpf_obj_get.*ENOENT.*nothing is pinned/);
  });

  it('attaches a tracepoint program that then runs', () => {
    const o = selftest();
    const m = o.map('selftest_hash');
    m.update(u32(1), u64(0n));
    o.program('selftest_ok').attach();
    spawnSync('/bin/sh', ['-c', 'true']); // shells call getppid
    spawnSync(process.execPath, ['-e', 'process.ppid']);
    expect(m.lookup(u32(1))!.readBigUInt64LE(0)).toBeGreaterThan(0n);
  });

  it('puts the verifier log into the error of a rejected program', () => {
    const o = BpfObject.open(objectPath('selftest.bpf.o'));
    open.push(o);
    let err: unknown;
    try {
      o.load();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BpfError);
    const e = err as BpfError;
    expect(e.op).toMatch(/^bpf_object__load\(selftest\.bpf\.o/);
    expect(e.code).toBe('EACCES');
    expect(e.log).toMatch(/map_value_or_null/);
    // the verifier's own last line is in the message, before the hint
    expect(e.reason).toMatch(/^prog 'selftest_rejected': .*map_value_or_null/);
    expect(e.message).toMatch(/failed: EACCES \[prog 'selftest_rejected': .*map_value_or_null.*\] \(the verifier refused the program/);
  });

  it('names the missing object and how to build it', () => {
    expect(() => BpfObject.open('/nonexistent/x.bpf.o')).toThrow(/ENOENT.*make -C bpf/);
  });

  for (const [ringBytes, n] of [
    [8 << 20, 50_000],
    [1 << 20, 50_000],
  ] as const) {
    it(`ring buffer of ${ringBytes >> 20} MiB, ${n} records: each one arrives or is counted as a kernel loss`, async () => {
      const o = BpfObject.open(objectPath('flood.bpf.o'), { maxEntries: { events: ringBytes } });
      open.push(o);
      o.load();
      o.program('vigil_flood').attach();
      let got = 0;
      const seqs = new Set<bigint>();
      const r = new RingBufferReader(o.map('events'), (v, _b, off, len) => {
        expect(decodeHeader(v, off, len).type).toBe(RecordType.FLOOD);
        // seq counts per CPU (vigil_stats is a per-CPU array): a record is (cpu, seq)
        seqs.add((BigInt(v.getUint32(off + 28, true)) << 40n) | v.getBigUint64(off + 16, true));
        got++;
      });
      // generator: says ready, waits for "go", then calls getppid() n times (Python does not cache it)
      const gen = spawn('python3', ['-c', `import os,sys\nprint('ready', flush=True)\nsys.stdin.readline()\nfor _ in range(${n}): os.getppid()\n`], { stdio: ['pipe', 'pipe', 'inherit'] });
      await new Promise((res) => gen.stdout!.once('data', res)); // past interpreter start-up
      o.map('flood_target').update(u32(0), u32(gen.pid!));
      const done = new Promise((res) => gen.on('exit', res));
      gen.stdin!.write('go\n');
      await done; // not consuming meanwhile: the 1 MiB ring must overflow
      while (r.drain(10_000) > 0);
      const k = readKernelStats(o.map('vigil_stats'));
      r.close();
      expect(k.flood! + k.rb_full!).toBe(n);
      expect(got).toBe(k.flood);
      expect(seqs.size).toBe(got);
      if (ringBytes === 8 << 20) expect(k.rb_full).toBe(0);
      else expect(k.rb_full).toBeGreaterThan(n / 2);
    });
  }
});
