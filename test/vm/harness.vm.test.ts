/**
 * Smoke test of the VM harness (runs inside the VM: test/vm/suite.mjs).
 * BPF LSM is active, bpffs/securityfs/tracefs are mounted, and a real LSM program
 * loaded with the project's kernel binding turns an exec into EPERM.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BpfObject } from '../../src/kernel/index.js';

const inVm = process.env.VIGIL_IN_VM === '1';

/** Kernel s_dev (major << 20 | minor) from Node's userspace dev_t encoding. */
function kernelDev(dev: number): number {
  const major = ((dev >>> 8) & 0xfff) | Math.floor(dev / 0x100000000) & ~0xfff;
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff);
  return ((major << 20) | minor) >>> 0;
}

describe.skipIf(!inVm)('VM harness', () => {
  it('boots with BPF LSM active and the BPF file systems mounted', () => {
    const lsm = readFileSync('/sys/kernel/security/lsm', 'utf8');
    expect(lsm.split(',')).toContain('bpf');
    const mounts = readFileSync('/proc/mounts', 'utf8');
    expect(mounts).toMatch(/ \/sys\/fs\/bpf bpf /);
    expect(mounts).toMatch(/ \/sys\/kernel\/tracing tracefs /);
    expect(process.getuid?.()).toBe(0);
    expect(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()).toBe(process.env.VIGIL_VM_KERNEL);
  });

  it('loads and attaches an LSM program that denies an exec with EPERM', () => {
    const dir = mkdtempSync('/tmp/vigil-smoke-');
    const here = new URL('.', import.meta.url).pathname;
    // suite.mjs builds it on the host (clang under TCG takes ~10 s); else build here
    let obj = join(here, '.cache/fixtures/smoke_lsm.bpf.o');
    if (!existsSync(obj)) {
      obj = join(dir, 'smoke_lsm.bpf.o');
      execFileSync('clang-19', [
        '-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-mcpu=v3',
        `-I${join(here, '../../bpf/include')}`, '-c', join(here, 'fixtures/smoke_lsm.bpf.c'), '-o', obj,
      ]);
    }
    const victim = join(dir, 'true-copy');
    copyFileSync('/bin/true', victim);
    execFileSync('chmod', ['755', victim]);
    expect(spawnSync(victim).status).toBe(0);

    const o = BpfObject.open(obj).load();
    try {
      o.program('smoke_bprm_check').attachLsm();
      const st = statSync(victim);
      const key = Buffer.alloc(16);
      key.writeBigUInt64LE(BigInt(st.ino), 0);
      key.writeUInt32LE(kernelDev(st.dev), 8);
      const val = Buffer.alloc(4);
      o.map('deny_inodes').update(key, val);
      const r = spawnSync(victim);
      expect(r.error && (r.error as NodeJS.ErrnoException).code).toBe('EPERM');
      expect(spawnSync('/bin/true').status).toBe(0);
    } finally {
      o.close();
    }
    expect(spawnSync(victim).status).toBe(0);
  });
});
