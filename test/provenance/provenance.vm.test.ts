/**
 * File provenance in the VM suite (docs/vm-tests.md): the same scenario as on
 * the host (scenario.ts) on 5.10 (compat build), 6.1, 6.12 and 6.18, where BPF
 * LSM is active; then the exec policy on marked files through the CLI, as a
 * user runs it: `vigil run --provenance enforce` refuses a downloaded program
 * and a downloaded shebang script with EPERM until `vigil allow add` matches;
 * `vigil allow add --exec-uid` lets only that uid run it (the guard's
 * prov_allow_uid); `--provenance soak` lets one run and learns a rule for
 * `vigil allow review`.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { kernelAtLeast } from '../vm/kernel.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provenanceScenario } from './scenario.js';
import { ExecGuard, kernelDev } from '../../src/enforcement/index.js';
import { encodeMarkXattr, markKey, MARK_XATTR, TaintFlags, VigilMark } from '../../src/events/taint.js';
import { BpfMap } from '../../src/kernel/index.js';
import { getXattr, setXattr } from '../../src/kernel/xattr.js';
import { withTamperExemption } from '../../src/provenance/tamper.js';
import { VIGIL, waitFor } from '../cli/wait.js';

const inVm = process.env.VIGIL_IN_VM === '1';
/** BPF programs read security.bpf.* attributes (bpf_get_file_xattr): the guard's origin programs load */
const originInKernel = kernelAtLeast(6, 15);
// in a describe of its own: the scenario's in-process agent (hooks beforeAll/afterAll) is stopped
// before the exec-policy tests start theirs; left running, it wrote the origin records of their
// downloads from this test process, which the tamper hooks rightly refuse (it is not the agent)
if (inVm) describe('in-process agent', () => provenanceScenario(`file provenance in the VM (${process.env.VIGIL_VM_KERNEL ?? 'kernel'})`));

const T = '/tmp/vigil-prov-policy';
const DB = join(T, 'vigil.db');
/** an agent's start (node + every sensor's BPF load) under qemu TCG can take tens of seconds */
const AGENT_START_MS = 90_000;

function vigil(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [VIGIL, ...args, '--db', DB], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** exec it (as `as`: node sets the child's uid and gid before the exec): 'EPERM' when the kernel refused, else the exit status */
function run(path: string, as: { uid: number; gid: number } | Record<string, never> = {}): 'EPERM' | number | string {
  const r = spawnSync(path, [], { encoding: 'utf8', ...as });
  if (r.error) return (r.error as NodeJS.ErrnoException).code ?? String(r.error);
  return r.status ?? -1;
}

class RunningAgent {
  out = '';
  err = '';
  readonly proc: ChildProcessWithoutNullStreams;
  constructor(mode: string) {
    this.proc = spawn(process.execPath, [VIGIL, 'run', '--provenance', mode, '--provenance-loopback', '--sensors', 'exec,file,network', '--db', DB, '--stats-interval', '0', '--stdout']);
    this.proc.stdout.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.proc.stderr.setEncoding('utf8').on('data', (d: string) => (this.err += d));
  }
  events(): Record<string, any>[] {
    return this.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await done;
  }
}

describe.skipIf(!inVm)('exec policy on marked files (BPF LSM, in the VM)', () => {
  let server: Server;
  let port: number;
  let agent: RunningAgent | null = null;
  const TRUE = readFileSync(realpathSync('/bin/true'));
  const SCRIPT = '#!/bin/sh\nexit 0\n';
  /** the enforce test's downloaded script: its origin record is in the store */
  let script = '';
  /** tries to change an origin record as the file's owner and as root (xattr-tamper.c) */
  const TAMPER = join(T, 'xattr-tamper');
  /** a program written before any agent ran: not marked */
  const PLAIN = join(T, 'plain');

  /**
   * curl a file from the loopback server (curl is network-touched: the file is marked at
   * write time) and make it executable. Not spawnSync: the server runs in this process.
   */
  async function download(name: string, what: 'true' | 'script'): Promise<string> {
    const p = join(T, name);
    const code = await new Promise<number>((res, rej) => spawn('curl', ['-sf', '-m', '20', '-o', p, `http://127.0.0.1:${port}/${what}`], { stdio: 'ignore' }).on('error', rej).on('exit', (c) => res(c ?? -1)));
    expect(code).toBe(0);
    chmodSync(p, 0o755);
    return p;
  }

  async function start(mode: string): Promise<RunningAgent> {
    const a = new RunningAgent(mode);
    await waitFor(() => /provenance: exec policy \w+ in the exec guard/.test(a.err) || a.proc.exitCode !== null, AGENT_START_MS).catch(() => undefined);
    if (!/provenance: exec policy \w+ in the exec guard/.test(a.err)) throw new Error(`the agent did not apply the exec policy:\n${a.err}`);
    return a;
  }

  beforeAll(async () => {
    rmSync(T, { recursive: true, force: true });
    mkdirSync(T, { recursive: true });
    ExecGuard.disarm();
    // built before any agent runs: this process serves the downloads (it is network-touched then), so
    // a file its children write later is marked, and refused in enforce mode like any download
    expect(spawnSync('gcc', ['-O2', '-static', '-o', TAMPER, join(__dirname, 'xattr-tamper.c')], { stdio: 'inherit' }).status).toBe(0);
    copyFileSync('/bin/true', PLAIN);
    chmodSync(PLAIN, 0o755);
    server = createServer((req, res) => res.end(req.url === '/true' ? TRUE : SCRIPT));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await agent?.stop();
    ExecGuard.disarm();
    await new Promise((r) => server?.close(r));
    rmSync(T, { recursive: true, force: true });
  });

  it('enforce: a downloaded program and a downloaded shebang script are refused (EPERM), reported with their origin; vigil allow add lets the program run', async () => {
    agent = await start('enforce');
    const prog = await download('prog', 'true');
    script = await download('script.sh', 'script');
    expect(run(prog)).toBe('EPERM');
    expect(run(script)).toBe('EPERM'); // the script itself is checked (bprm_check_security runs for it, then for /bin/sh)
    expect(run('/bin/true')).toBe(0);
    expect(spawnSync('/bin/sh', ['-c', 'exit 0']).status).toBe(0);
    await waitFor(() => agent!.events().filter((e) => e.category === 'exec_guard' && e.vigil.rule.match === 'provenance').length >= 2, 15_000);
    const blocked = agent.events().filter((e) => e.category === 'exec_guard' && e.vigil.rule.match === 'provenance');
    expect(blocked.map((e) => e.TargetFilename).sort()).toEqual([prog, script].sort());
    for (const e of blocked) expect(e.vigil).toMatchObject({ action: 'exec_blocked', rule: { id: 0, match: 'provenance', mode: 'enforce' } });
    // the loader and the interpreter routes: `ld.so ./file` (its executable mapping is refused) and `sh script` (read by an interpreter)
    const ld = spawnSync('/lib64/ld-linux-x86-64.so.2', [prog], { encoding: 'utf8' });
    expect(ld.status).not.toBe(0);
    expect(ld.stderr).toMatch(/failed to map segment|Operation not permitted/);
    const sh = spawnSync('/bin/sh', [script], { encoding: 'utf8' });
    expect(sh.status).not.toBe(0);
    await waitFor(() => agent!.events().some((e) => e.category === 'exec_guard' && e.vigil.hook === 'mmap_file' && e.TargetFilename === prog), 15_000);
    await waitFor(() => agent!.events().some((e) => e.category === 'exec_guard' && e.vigil.hook === 'file_open' && e.TargetFilename === script), 15_000);
    for (const e of agent.events().filter((x) => x.category === 'exec_guard' && x.vigil.hook !== 'bprm_check_security')) {
      expect(e.vigil).toMatchObject({ action: 'exec_blocked', rule: { id: 0, match: 'provenance', mode: 'enforce' } });
    }

    const add = vigil('allow', 'add', '--path', prog);
    expect(add.code, add.err).toBe(0);
    expect(add.err).toMatch(/applied to the exec guard: 1 marked file allowed by rules/);
    expect(run(prog)).toBe(0);
    expect(run(script)).toBe('EPERM'); // the rule names the program only
    // the origin record reached the store: the decision on the script names the server
    await waitFor(() => agent!.events().some((e) => e.category === 'exec_guard' && e.TargetFilename === script && e.vigil.origin), 15_000);
    expect(agent.events().find((e) => e.category === 'exec_guard' && e.TargetFilename === script && e.vigil.origin).vigil.origin).toMatchObject({ kind: 'network', remote: { address: '127.0.0.1', port } });
  });

  it('enforce, a rule on --exec-uid (the guard\'s prov_allow_uid, looked up with the real uid of the exec): that uid runs the file and ld.so maps it, root gets EPERM', async () => {
    const nobody = { uid: 65534, gid: 65534 };
    const byUid = await download('prog-uid', 'true');
    expect(run(byUid, nobody)).toBe('EPERM'); // marked: refused for every uid until a rule matches
    const addUid = vigil('allow', 'add', '--exec-uid', '65534', '--path', byUid);
    expect(addUid.code, addUid.err).toBe(0);
    expect(addUid.err).toMatch(/applied to the exec guard: \d+ marked files? allowed by rules, 1 for one exec uid/);
    expect(run(byUid, nobody)).toBe(0);
    expect(spawnSync('/lib64/ld-linux-x86-64.so.2', [byUid], nobody).status).toBe(0); // mmap_file decides by the same (inode, uid)
    expect(run(byUid)).toBe('EPERM'); // root: another uid
    expect(run(script, nobody)).toBe('EPERM'); // the rule names that file only
    await waitFor(() => agent!.events().some((e) => e.category === 'exec_guard' && e.TargetFilename === byUid && e.vigil.uid === 0), 15_000);
    expect(agent!.events().filter((e) => e.category === 'exec_guard' && e.TargetFilename === byUid).map((e) => `${e.vigil.uid} ${e.vigil.action}`).sort()).toEqual(['0 exec_blocked', '65534 exec_blocked']);
  });

  it(`in-kernel origin (${originInKernel ? 'Linux 6.15+: the guard reads security.bpf.vigil.mark' : 'not before Linux 6.15: marks come from the kernel map only'}): a mark the kernel map lost; the attribute set on a file already run unmarked`, async () => {
    const prog = await download('prog-lost', 'true');
    const st = statSync(prog, { bigint: true });
    const key = markKey(kernelDev(st.dev), st.ino);
    // the agent has written the origin record (and, where the kernel reads it, the mark attribute)
    await waitFor(() => (originInKernel ? getXattr(prog, MARK_XATTR) : getXattr(prog, 'trusted.vigil.origin')) !== null, 15_000);
    expect(getXattr(prog, MARK_XATTR) !== null).toBe(originInKernel);
    expect(run(prog)).toBe('EPERM');
    // the kernel's map loses the mark (a lost store, a full map, a file carried with its attributes)
    const marks = BpfMap.openPinned('/sys/fs/bpf/vigil/exec_guard/vigil_marks');
    try {
      expect(marks.delete(key)).toBe(true);
      // 6.15+: the origin program reads the attribute, puts the mark back (marked_ns 0: re-armed) and refuses;
      // before: nothing in the kernel knows the file is marked until the agent re-arms its store at start
      expect(run(prog)).toBe(originInKernel ? 'EPERM' : 0);
      const back = marks.lookup(key);
      expect(back !== null).toBe(originInKernel);
      if (back) expect(back.readBigUInt64LE(VigilMark.fields.marked_ns.offset)).toBe(0n);
    } finally {
      marks.close();
    }
    // a file executed unmarked (6.15+: the guard remembers it had no attribute, until its ctime changes),
    // then given the attribute alone (as `tar --xattrs` would bring it; vigil's own exemption from the
    // tamper hooks): 6.15+ refuses it at the next exec, the attribute's write having changed the ctime;
    // before 6.15 the kernel does not read the attribute
    expect(run(PLAIN)).toBe(0);
    withTamperExemption(() => setXattr(PLAIN, MARK_XATTR, encodeMarkXattr(0, TaintFlags.NET)));
    expect(run(PLAIN)).toBe(originInKernel ? 'EPERM' : 0);
  });

  it('tamper protection: while the agent runs neither the file\'s owner nor root (any process but vigil) can rewrite or remove the origin record or the mark attribute; root\'s attempts are refused by the hook and reported; after the agent stops root can', async () => {
    await waitFor(() => /provenance: tamper protection on/.test(agent!.err), 15_000);
    chownSync(script, 65534, 65534); // the owner: not root
    const tamper = (name = 'trusted.vigil.origin') => {
      const r = spawnSync(TAMPER, [script, name, '65534'], { encoding: 'utf8' });
      return r.error ? `exec: ${(r.error as NodeJS.ErrnoException).code}` : r.stdout.trim();
    };
    // the owner is refused by the trusted.* namespace (CAP_SYS_ADMIN) before any LSM; root only by vigil's hook
    expect(tamper()).toBe('owner_set=EPERM owner_remove=EPERM root_set=EPERM root_remove=EPERM');
    // the mark the exec guard reads (6.15+) is protected on every kernel. A security.* name is left to
    // the LSMs: from 6.10 the kernel checks CAP_SYS_ADMIN before the inode_*xattr hooks (the owner
    // never reaches vigil's), before 6.10 the hooks run first, so vigil's refuses the owner too
    expect(tamper(MARK_XATTR)).toBe('owner_set=EPERM owner_remove=EPERM root_set=EPERM root_remove=EPERM');
    const capFirst = kernelAtLeast(6, 10);
    const want = [
      ...['root'].concat(capFirst ? [] : ['owner']).flatMap((who) => [`xattr_set_refused ${MARK_XATTR} ${who}`, `xattr_remove_refused ${MARK_XATTR} ${who}`]),
      'xattr_set_refused trusted.vigil.origin root', 'xattr_remove_refused trusted.vigil.origin root',
    ].sort();
    await waitFor(() => agent!.events().filter((e) => e.category === 'provenance_tamper').length >= want.length, 15_000);
    const refused = agent.events().filter((e) => e.category === 'provenance_tamper');
    // who and what, so that an unexpected refusal names its process and file
    expect(refused.map((e) => `${e.vigil.action} ${e.vigil.attribute} ${e.vigil.uid === 0 ? 'root' : e.vigil.uid === 65534 ? 'owner' : e.vigil.uid}`).sort()).toEqual(want);
    for (const e of refused) {
      // on a mismatch: the event and what the agent reported of its process (exec, fork's image)
      const seen = agent.events().filter((x) => x.ProcessId === e.ProcessId && x.category.startsWith('process_'));
      expect(e, JSON.stringify({ event: e, process: seen })).toMatchObject({ TargetFilename: script, Image: expect.stringMatching(/xattr-tamper/), vigil: { owner: 65534 } });
    }
    await agent!.stop();
    expect(agent!.err).toMatch(new RegExp(`, ${want.length} tamper attempts refused`));
    // the hooks went with the agent: root can again (the kernel's mark stays in the pinned guard's map)
    expect(tamper()).toBe('owner_set=EPERM owner_remove=EPERM root_set=OK root_remove=OK');
    // with no hook refusing, a security.* name is capability-checked from 6.10 only: before, BPF LSM in
    // the LSM list makes the kernel skip that check (the default of its inode_*xattr hooks lets it
    // pass), so the owner can set and remove such a name; vigil's hook closes that for its own names
    // while it runs (above). Kernels before 6.15 do not read this attribute.
    expect(tamper(MARK_XATTR)).toBe(capFirst ? 'owner_set=EPERM owner_remove=EPERM root_set=OK root_remove=OK' : 'owner_set=OK owner_remove=OK root_set=OK root_remove=OK');
  });

  it('soak: a downloaded program runs and a pending rule for it appears; review accepts it', async () => {
    await agent!.stop();
    agent = await start('soak');
    const prog = await download('soaked', 'true');
    expect(run(prog)).toBe(0);
    let pending: Array<{ id: number; path: string | null; state: string }> = [];
    await waitFor(() => {
      const r = vigil('allow', 'review', '--json');
      pending = r.code === 0 ? JSON.parse(r.out).pending : [];
      return pending.some((p) => p.path === prog);
    }, 15_000);
    const rule = pending.find((p) => p.path === prog)!;
    expect(rule.state).toBe('pending');
    const acc = vigil('allow', 'review', '--accept', String(rule.id), '--json');
    expect(acc.code, acc.err).toBe(0);
    expect(JSON.parse(acc.out).accepted).toEqual([rule.id]);
    expect(vigil('allow', 'list', '--json').out).toContain(`"path":"${prog}"`);
  });
});
