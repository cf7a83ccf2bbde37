/**
 * The fanotify exec guard inside the test VM (node test/vm/suite.mjs), where BPF
 * LSM is active: with `enforcement.backend: fanotify` the same deny (direct, hard
 * link, ld.so, LD_PRELOAD, after the file's allow was cached as an ignore mark),
 * sha256 copy and rm behaviour as on a host without BPF LSM (test/enforcement/
 * fanotify.kernel.test.ts, which also covers SIGKILL and the parallel execs);
 * with `auto`, lsm is chosen. A few execs per case.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecGuard } from '../../src/enforcement/index.js';
import { RulesStore } from '../../src/enforcement/rules-store.js';

const inVm = process.env.VIGIL_IN_VM === '1';
const REPO = resolve(new URL('.', import.meta.url).pathname, '../..');
const T = '/tmp/vigil-fan-vm';
const PIN = '/sys/fs/bpf/vigil-fan-vm/exec_guard';
const AGENT_START_MS = 90_000;

function deny(db: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/vigil'), 'deny', ...args, '--db', db, '--pin-dir', PIN], { encoding: 'utf8', env: { ...process.env, VIGIL_CONFIG: '' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function run(path: string): 'EPERM' | number | string {
  const r = spawnSync(path, [], { encoding: 'utf8' });
  if (r.error) return (r.error as NodeJS.ErrnoException).code ?? String(r.error);
  return r.status ?? -1;
}

async function until<T>(what: string, f: () => T | null | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startAgent(name: string, backend: string): Promise<{ p: ChildProcess; err: () => string; db: string }> {
  const db = join(T, `${name}.db`);
  const cfg = join(T, `${name}.yaml`);
  writeFileSync(cfg, `db: ${db}\nstats_interval: 0\nenforcement: ${JSON.stringify({ backend, fanotify_mounts: [T] })}\n`, { mode: 0o600 });
  let err = '';
  const p = spawn(process.execPath, [join(REPO, 'bin/vigil'), 'run', '-c', cfg, '--sensors', 'exec'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VIGIL_CONFIG: '' } });
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return until(`the agent (${backend})`, () => (/enforcement: (fanotify backend|exec guard (armed|adopted))|DETECT-ONLY/.test(err) ? { p, err: () => err, db } : null), AGENT_START_MS);
}

async function stop(p: ChildProcess): Promise<void> {
  p.kill('SIGTERM');
  await until('the agent to exit', () => p.exitCode !== null || p.signalCode !== null, 30_000);
}

describe.skipIf(!inVm)('fanotify backend in the VM (BPF LSM active)', () => {
  let wasArmed = false;
  beforeAll(() => {
    wasArmed = ExecGuard.isArmed(); // auto arms the default pin directory: removed again after
    rmSync(T, { recursive: true, force: true });
    mkdirSync(T, { recursive: true });
    for (const n of ['x', 'f1', 'f2']) {
      copyFileSync(n === 'x' ? '/bin/true' : '/bin/false', join(T, n));
      chmodSync(join(T, n), 0o755);
    }
    for (const n of ['libm-copy.so.6', 'libm-other.so.6']) copyFileSync('/lib/x86_64-linux-gnu/libm.so.6', join(T, n));
  });

  afterAll(() => {
    ExecGuard.disarm(PIN);
    if (!wasArmed) ExecGuard.disarm();
    rmSync(T, { recursive: true, force: true });
  });

  it('forced to fanotify: deny add PATH refuses (a file cached as allowed too, a hard link, through ld.so, as LD_PRELOAD), a sha256 rule refuses a copy, deny rm lifts', async () => {
    // one rule before the agent starts (no CLI call: each costs tens of seconds under TCG): the marks are in force from the start
    const lib = join(T, 'libm-copy.so.6');
    const store = RulesStore.open(join(T, 'fan.db'));
    store.add({ kind: 'path', path: lib, resolvedPath: lib, sha256: null, mode: 'enforce', comment: null });
    store.close();
    const a = await startAgent('fan', 'fanotify');
    try {
      expect(a.err()).toMatch(/enforcement: fanotify backend/);
      // a denied library in LD_PRELOAD is not loaded (the program runs without it); another copy is
      const preload = (l: string) => spawnSync('/bin/true', [], { encoding: 'utf8', env: { ...process.env, LD_PRELOAD: l } });
      expect(preload(join(T, 'libm-other.so.6')).stderr).toBe('');
      expect(preload(lib).stderr).toMatch(/cannot be preloaded/);
      // x runs twice: its allow is cached in the kernel (an inode ignore mark)
      expect(run(join(T, 'x'))).toBe(0);
      expect(run(join(T, 'x'))).toBe(0);
      expect(deny(a.db, 'add', join(T, 'f1'), '--sha256').code).toBe(0);
      await until('EPERM for the copy', () => run(join(T, 'f2')) === 'EPERM');
      expect(run(join(T, 'x'))).toBe(0);
      // the rule for x removes every ignore mark: x, a hard link to it, and x through the loader are refused
      expect(deny(a.db, 'add', join(T, 'x')).code).toBe(0);
      await until('EPERM for x', () => run(join(T, 'x')) === 'EPERM');
      linkSync(join(T, 'x'), join(T, 'x-link'));
      expect(run(join(T, 'x-link'))).toBe('EPERM');
      const ld = spawnSync('/lib64/ld-linux-x86-64.so.2', [join(T, 'x')], { encoding: 'utf8' });
      expect(ld.status).not.toBe(0);
      expect(ld.stderr).toMatch(/Operation not permitted/);
      // the cache's kernel calls worked on this kernel (FAN_MARK_EVICTABLE is 5.19+: older ones pin the marked inodes)
      expect(a.err()).not.toMatch(/ignore mark|FAN_MARK_FLUSH/);
      const list = JSON.parse(deny(a.db, 'list', '--json').out);
      expect(list).toMatchObject({ backend: 'fanotify' });
      const id = list.rules.find((r: { path: string }) => r.path === join(T, 'x')).id;
      expect(deny(a.db, 'rm', String(id)).code).toBe(0);
      await until('x runs again', () => run(join(T, 'x')) === 0);
    } finally {
      await stop(a.p);
    }
  }, 240_000);

  it('auto: lsm is chosen where BPF LSM is active', async () => {
    const a = await startAgent('auto', 'auto');
    try {
      expect(a.err()).toMatch(/enforcement: exec guard (armed|adopted from bpffs) \(BPF LSM\)/);
      expect(a.err()).not.toMatch(/fanotify backend/);
    } finally {
      await stop(a.p);
    }
  }, 240_000);
});
