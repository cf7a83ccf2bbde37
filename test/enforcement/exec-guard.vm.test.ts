/**
 * Exec guard, end to end, inside the test VM (node test/vm/suite.mjs): real
 * execs, real EPERM, events from the kernel, persistence across kill -9,
 * disarm. Uses the built CLI (dist/) like a user would.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, copyFileSync, chmodSync, existsSync, linkSync, mkdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { kernelAtLeast } from '../vm/kernel.js';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecGuard } from '../../src/enforcement/index.js';
import { EventSchema } from '../../src/sensors/index.js';
import { RulesStore } from '../../src/enforcement/rules-store.js';

const inVm = process.env.VIGIL_IN_VM === '1';
// In-kernel sha256 needs bpf_ima_file_hash (5.18) in a sleepable bprm_check_security
// (5.11): the suite's 6.x kernels have both (Debian builds them with IMA), 5.10 neither.
const kernelHashes = kernelAtLeast(5, 18);
const REPO = resolve(new URL('.', import.meta.url).pathname, '../..');
const T = '/tmp/vigil-guard-test';
const DB = join(T, 'vigil.db');
const PIN = '/sys/fs/bpf/vigil-test/exec_guard';

function vigil(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/vigil'), ...args, '--db', DB, '--pin-dir', PIN], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function vigilOk(...args: string[]): string {
  const r = vigil(...args);
  if (r.code !== 0) throw new Error(`vigil ${args.join(' ')} exited ${r.code}\n${r.out}${r.err}`);
  return r.out;
}

/** exec it; 'EPERM' when the kernel refused, else the exit status */
function run(path: string): 'EPERM' | number | string {
  const r = spawnSync(path, [], { encoding: 'utf8' });
  if (r.error) return (r.error as NodeJS.ErrnoException).code ?? String(r.error);
  return r.status ?? -1;
}

/** A unique executable (a copy of /bin/true with random bytes appended). */
function makeExe(name: string): string {
  const p = join(T, name);
  copyFileSync('/bin/true', p);
  appendFileSync(p, randomBytes(64));
  chmodSync(p, 0o755);
  return p;
}

/** a C helper next to this file (test/enforcement/NAME.c), compiled once into the test directory */
function helper(name: string): string {
  const out = join(T, name);
  if (!existsSync(out)) {
    const cc = spawnSync('cc', ['-O2', '-o', out, join(REPO, 'test/enforcement', `${name}.c`)], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc ${name}.c: ${cc.stderr}`);
  }
  return out;
}

/** every event any agent of this file printed (checked against the published schema at the end) */
const emitted: Record<string, unknown>[] = [];

/**
 * How long an agent may take to load and attach the guard: under qemu TCG on a busy
 * 2-core host a node start plus the BPF load took over 15 s. Waits for events stay short.
 */
const AGENT_START_MS = 90_000;

class Agent {
  lines: Record<string, unknown>[] = [];
  private buf = '';
  readonly proc: ChildProcessWithoutNullStreams;
  constructor() {
    this.proc = spawn(process.execPath, [join(REPO, 'test/enforcement/guard-agent.mjs'), DB, PIN]);
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        try {
          const v = JSON.parse(line);
          this.lines.push(v);
          if (v.category) emitted.push(v);
        } catch {
          /* not JSON */
        }
      }
    });
    this.proc.stderr.on('data', (d) => process.stderr.write(`[agent] ${d}`));
  }
  async waitFor(pred: (l: Record<string, any>) => boolean, ms = 15_000): Promise<Record<string, any>> {
    const t0 = Date.now();
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (Date.now() - t0 > ms) throw new Error(`timed out; agent said:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe.skipIf(!inVm)('exec guard (in the VM)', () => {
  let agent: Agent;
  let denied: string;

  beforeAll(async () => {
    rmSync(T, { recursive: true, force: true });
    mkdirSync(T, { recursive: true });
    ExecGuard.disarm(PIN);
    agent = new Agent();
    const ready = await agent.waitFor((l) => l.ready === true, AGENT_START_MS);
    expect(ready.adopted).toBe(false);
    // the sha256 program loads exactly where the kernel can run it, and says why not elsewhere
    expect(ready.hashProgram).toBe(kernelHashes);
    if (!kernelHashes) expect(ready.hashUnavailable).toMatch(/sha256 rules need bpf_ima_file_hash, Linux 5\.18\+/);
  });

  afterAll(() => {
    agent?.proc.kill('SIGKILL');
    ExecGuard.disarm(PIN);
  });

  it('denies a path with EPERM and reports exec_blocked: the process, its Ancestors, TargetFilename, the rule', async () => {
    denied = makeExe('denied');
    const allowed = makeExe('allowed');
    expect(run(denied)).toBe(0);
    const out = vigilOk('deny', 'add', denied, '--comment', 'test deny');
    const id = Number(/added rule (\d+)/.exec(out)?.[1]);
    expect(id).toBeGreaterThan(0);

    const r = spawnSync(denied);
    expect((r.error as NodeJS.ErrnoException | undefined)?.code).toBe('EPERM');
    expect(run(allowed)).toBe(0);
    expect(run('/bin/true')).toBe(0);
    expect(spawnSync('/bin/sh', ['-c', 'echo hi'], { encoding: 'utf8' }).stdout).toBe('hi\n');

    const ev = await agent.waitFor((l) => l.vigil?.action === 'exec_blocked' && l.vigil?.rule?.id === id);
    expect(ev.category).toBe('exec_guard');
    expect(ev.vigil.rule).toMatchObject({ id, mode: 'enforce', kind: 'path', comment: 'test deny' });
    expect(['inode', 'path']).toContain(ev.vigil.rule.match);
    expect(ev.TargetFilename).toBe(realpathSync(denied));
    // the child the test forked (its exec failed), whose parent is this process
    expect(ev.ParentProcessId).toBe(process.pid);
    expect(ev.ProcessId).not.toBe(process.pid);
    expect(ev.Ancestors[0].ProcessId).toBe(process.pid);
    expect(ev.Ancestors.length).toBeGreaterThanOrEqual(2);
  });

  it('denies the same file through a hard link (same inode)', () => {
    const link = join(T, 'denied-hardlink');
    linkSync(denied, link);
    expect(run(link)).toBe('EPERM');
  });

  it('denies by path a file replaced at that path (new inode)', () => {
    const replacement = makeExe('replacement');
    renameSync(replacement, denied); // same path, another inode
    expect(run(denied)).toBe('EPERM');
  });

  it(kernelHashes
    ? 'blocks a renamed copy of content denied by sha256'
    : 'sha256 rules without in-kernel hashing (before 5.18): the file it was added with is blocked, the CLI says copies are not', async () => {
    const payload = makeExe('payload');
    const added = vigil('deny', 'add', payload, '--sha256', '--comment', 'by content');
    expect(added.code, added.err).toBe(0);
    const id = Number(/added rule (\d+)/.exec(added.out)?.[1]);
    const notes = added.err; // what the rule does on this kernel goes to stderr
    expect(run(payload)).toBe('EPERM');
    const copy = join(T, 'innocent-name');
    copyFileSync(payload, copy);
    chmodSync(copy, 0o755);
    if (kernelHashes) {
      expect(notes).not.toMatch(/warning: sha256/);
      expect(run(copy)).toBe('EPERM');
      const ev = await agent.waitFor((l) => l.vigil?.action === 'exec_blocked' && l.vigil?.rule?.id === id && l.TargetFilename === copy);
      expect(ev.vigil.rule.match).toBe('sha256');
      // the same content from a memfd (execve of /proc/self/fd/N, as fexecve does): hashed by IMA too
      const m = spawnSync('python3', ['-c', 'import os,sys; fd=os.memfd_create("payload"); os.write(fd, open(sys.argv[1],"rb").read()); os.execv(f"/proc/self/fd/{fd}", ["payload"])', copy], { encoding: 'utf8' });
      expect(m.status).not.toBe(0);
      expect(m.stderr).toMatch(/PermissionError: \[Errno 1\] Operation not permitted/);
    } else {
      expect(notes).toMatch(/warning: sha256 rules match only the files they were added with \(by inode\), not copies: .*bpf_ima_file_hash \(Linux 5\.18\+/);
      // what this kernel does: the copy (another inode) runs
      expect(run(copy)).toBe(0);
      const ev = await agent.waitFor((l) => l.vigil?.action === 'exec_blocked' && l.vigil?.rule?.id === id && l.TargetFilename === payload);
      expect(ev.vigil.rule.match).toBe('inode');
    }
    // a different content is not affected
    expect(run(makeExe('other'))).toBe(0);
  });

  it('monitor mode allows and reports would_block', async () => {
    const mon = makeExe('monitored');
    const out = vigilOk('deny', 'add', mon, '--mode', 'monitor');
    const id = Number(/added rule (\d+)/.exec(out)?.[1]);
    expect(run(mon)).toBe(0);
    const ev = await agent.waitFor((l) => l.vigil?.action === 'would_block' && l.vigil?.rule?.id === id);
    expect(ev.vigil.rule.mode).toBe('monitor');
  });

  it('global monitor mode downgrades enforce rules, enforce restores them', async () => {
    vigilOk('deny', 'mode', 'monitor');
    expect(run(denied)).toBe(0);
    await agent.waitFor((l) => l.vigil?.action === 'would_block' && l.vigil?.global_monitor === true);
    vigilOk('deny', 'mode', 'enforce');
    expect(run(denied)).toBe('EPERM');
  });

  it('lists rules as JSON', () => {
    const j = JSON.parse(vigilOk('deny', 'list', '--json'));
    expect(j.armed).toBe(true);
    expect(j.rules.map((r: { kind: string }) => r.kind)).toEqual(['path', 'sha256', 'path']);
  });

  it('closes the loader and script routes: ld.so DENIED, a denied library in LD_PRELOAD, mmap/mprotect PROT_EXEC, sh/python3 SCRIPT (refused; only reported with the script policy at report)', async () => {
    // rules straight into the store and the pinned maps (no CLI call: each costs tens of seconds under TCG)
    const lib = join(T, 'libm-denied.so.6');
    copyFileSync('/lib/x86_64-linux-gnu/libm.so.6', lib);
    copyFileSync('/lib/x86_64-linux-gnu/libm.so.6', join(T, 'libm-other.so.6'));
    const script = join(T, 'denied.sh');
    writeFileSync(script, 'echo ran-script\n');
    const py = join(T, 'denied.py');
    writeFileSync(py, 'print("ran-py")\n');
    const store = RulesStore.open(DB);
    const g = ExecGuard.adopt(PIN);
    try {
      for (const f of [lib, script, py]) store.add({ kind: 'path', path: f, resolvedPath: f, sha256: null, mode: 'enforce', comment: 'route' });
      g.reconcile(store.list(), store.globalMode());
    } finally {
      store.close();
    }
    const maprot = helper('maprot');
    try {
      // ld.so runs as the program and maps the denied file itself: the mapping is refused
      const ld = spawnSync('/lib64/ld-linux-x86-64.so.2', [denied], { encoding: 'utf8' });
      expect(ld.status).not.toBe(0);
      expect(ld.stderr).toMatch(/failed to map segment|Operation not permitted/);
      expect(spawnSync('/lib64/ld-linux-x86-64.so.2', ['/bin/true']).status).toBe(0);
      // a denied library in LD_PRELOAD is not loaded (the program runs without it); another copy is
      const preload = (l: string) => spawnSync('/bin/true', [], { encoding: 'utf8', env: { ...process.env, LD_PRELOAD: l } });
      expect(preload(join(T, 'libm-other.so.6')).stderr).toBe('');
      expect(preload(lib).stderr).toMatch(/cannot be preloaded/);
      // mmap with PROT_EXEC and mprotect adding it: refused for the denied file, never for anonymous memory
      expect(spawnSync(maprot, [lib], { encoding: 'utf8' }).stdout).toBe('mmap_exec=1 mprotect_exec=1 anon_exec=0\n');
      expect(spawnSync(maprot, [join(T, 'libm-other.so.6')], { encoding: 'utf8' }).stdout).toBe('mmap_exec=0 mprotect_exec=0 anon_exec=0\n');
      // scripts read by an interpreter (identified by its executable's inode)
      const sh = spawnSync('/bin/sh', [script], { encoding: 'utf8' });
      expect(sh.stdout).not.toContain('ran-script');
      expect(sh.status).not.toBe(0);
      const p3 = spawnSync('python3', [py], { encoding: 'utf8' });
      expect(p3.stdout).not.toContain('ran-py');
      expect(p3.stderr).toMatch(/Operation not permitted/);
      // reading it with a program that is not an interpreter is not an exec route
      expect(spawnSync('cat', [script], { encoding: 'utf8' }).stdout).toBe('echo ran-script\n');
      // enforcement.loader_guard false: reported, not refused
      g.setScriptPolicy('report');
      expect(spawnSync('/bin/sh', [script], { encoding: 'utf8' }).stdout).toBe('ran-script\n');
    } finally {
      g.setScriptPolicy('refuse');
      g.close();
    }
    const hookOf = (hook: string, file: string, action = 'exec_blocked') =>
      agent.waitFor((l) => l.vigil?.hook === hook && l.vigil?.action === action && l.TargetFilename === file);
    await hookOf('mmap_file', realpathSync(denied));
    await hookOf('mmap_file', lib);
    await hookOf('file_mprotect', lib);
    await hookOf('file_open', script);
    await hookOf('file_open', py);
    const reported = await hookOf('file_open', script, 'would_block');
    expect(reported.vigil).toMatchObject({ report_only: true, rule: { match: expect.stringMatching(/^(inode|path)$/), mode: 'enforce' } });
    // a direct exec is still decided at bprm_check_security, once (the kernel's own mapping of it is not decided again)
    expect(run(denied)).toBe('EPERM');
    await hookOf('bprm_check_security', realpathSync(denied));
  });

  it('keeps enforcing after kill -9 of the agent; a new agent adopts it', async () => {
    agent.proc.kill('SIGKILL');
    await new Promise((r) => agent.proc.once('exit', r));
    expect(run(denied)).toBe('EPERM');
    // rules can still change with no agent running
    const late = makeExe('late');
    vigilOk('deny', 'add', late);
    expect(run(late)).toBe('EPERM');
    agent = new Agent();
    const ready = await agent.waitFor((l) => l.ready === true, AGENT_START_MS);
    expect(ready.adopted).toBe(true);
    expect(run(denied)).toBe('EPERM');
    await agent.waitFor((l) => l.vigil?.action === 'exec_blocked' && l.TargetFilename === realpathSync(denied));
  }, 240_000);

  it('deny rm lifts one rule at once', () => {
    const j = JSON.parse(vigilOk('deny', 'list', '--json'));
    const late = j.rules.find((r: { path: string }) => r.path?.endsWith('/late'));
    vigilOk('deny', 'rm', String(late.id));
    expect(run(join(T, 'late'))).toBe(0);
    expect(run(denied)).toBe('EPERM');
  });

  it('every event the guard emitted validates against the published event schema (docs/schema/event.schema.json)', () => {
    expect(emitted.length).toBeGreaterThan(5);
    for (const ev of emitted) {
      const r = EventSchema.safeParse(ev);
      expect(r.error, JSON.stringify(ev)).toBeUndefined();
      expect(ev.category).toBe('exec_guard');
    }
  });

  it('vigil disarm lifts enforcement, deny apply re-arms it', () => {
    const out = spawnSync(process.execPath, [join(REPO, 'bin/vigil'), 'disarm', '--pin-dir', PIN], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(run(denied)).toBe(0);
    vigilOk('deny', 'apply');
    expect(run(denied)).toBe('EPERM');
    ExecGuard.disarm(PIN);
    expect(run(denied)).toBe(0);
  });
});

/*
 * Path rules through the basename prefilter (deny_name): the kernel walks a path
 * only when the exec'd file's name is a path rule's basename, or when the file is
 * the root of its mount. No agent here, so nothing re-resolves a path to its new
 * inode: a denial of a replaced file can only come from the path lookup.
 */
describe.skipIf(!inVm)('exec guard path prefilter (in the VM)', () => {
  const D = '/tmp/vigil-guard-prefilter';
  const PIN2 = '/sys/fs/bpf/vigil-test/exec_guard_prefilter';
  let guard: ExecGuard;
  const longName = `${'n'.repeat(70)}-long-basename-${'x'.repeat(40)}`; // > 63 bytes: the key is truncated
  const rule = (id: number, path: string) => ({
    id, kind: 'path' as const, path, resolvedPath: path, sha256: null, mode: 'enforce' as const, comment: null, createdMs: 0,
  });
  const exe = (name: string) => {
    const p = join(D, name);
    copyFileSync('/bin/true', p);
    appendFileSync(p, randomBytes(64));
    chmodSync(p, 0o755);
    return p;
  };
  /** put a new file (new inode) at path */
  const replace = (path: string) => {
    const fresh = exe(`fresh-${randomBytes(4).toString('hex')}`);
    renameSync(fresh, path);
  };

  beforeAll(() => {
    rmSync(D, { recursive: true, force: true });
    mkdirSync(join(D, 'sub'), { recursive: true });
    ExecGuard.disarm(PIN2);
    guard = ExecGuard.arm({ pinDir: PIN2 }).guard;
  });

  afterAll(() => {
    spawnSync('umount', [join(D, 'mounted-over')]);
    guard?.close();
    ExecGuard.disarm(PIN2);
  });

  it('denies a replaced file by path; the same name elsewhere and other names run', () => {
    const a = exe('prefiltered');
    const res = guard.reconcile([rule(1, a)], 'enforce');
    expect(res.path).toBe(1);
    expect(run(a)).toBe('EPERM'); // by inode
    replace(a);
    expect(run(a)).toBe('EPERM'); // new inode: only the path lookup can deny it
    expect(run(exe('not-prefiltered'))).toBe(0);
    // same basename, other directory: walked (name in the set), path differs: allowed
    const twin = join(D, 'sub', 'prefiltered');
    copyFileSync('/bin/true', twin);
    chmodSync(twin, 0o755);
    expect(run(twin)).toBe(0);
  });

  it('matches basenames longer than the 64-byte name key (truncated alike in TS and the kernel)', () => {
    const l = exe(longName);
    const a = join(D, 'prefiltered');
    guard.reconcile([rule(1, a), rule(2, l)], 'enforce');
    replace(l);
    expect(run(l)).toBe('EPERM');
    // a name sharing the first 63 bytes passes the prefilter, its path does not match
    expect(run(exe(`${longName.slice(0, 63)}-other`))).toBe(0);
  });

  it('denies by path a file bind-mounted over a denied path (its own name differs: mount root is walked)', () => {
    const target = exe('mounted-over');
    guard.reconcile([rule(3, target)], 'enforce');
    const other = exe('bind-source');
    expect(spawnSync('mount', ['--bind', other, target]).status).toBe(0);
    try {
      expect(run(other)).toBe(0); // its own path is not denied
      expect(run(target)).toBe('EPERM');
    } finally {
      spawnSync('umount', [target]);
    }
  });

  it('removing the rules lifts the path denial', () => {
    const a = join(D, 'prefiltered');
    guard.reconcile([], 'enforce');
    expect(run(a)).toBe(0);
  });
});
