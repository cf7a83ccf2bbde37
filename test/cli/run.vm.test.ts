/**
 * `vigil run` on the Debian kernels of the VM suite (node test/vm/suite.mjs):
 * the exec sensor (CO-RE, tp_btf, bpf_loop) on 6.1/6.12/6.18, and the exec
 * guard adopted by the agent, its decisions flowing through the agent's sinks
 * with ancestors from the process table; enforcement outlives the agent.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, realpathSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventSchema } from '../../src/sensors/index.js';
import { jsonLines } from './wait.js';

const inVm = process.env.VIGIL_IN_VM === '1';
const REPO = resolve(new URL('.', import.meta.url).pathname, '../..');
const VIGIL = join(REPO, 'bin/vigil');
const T = '/tmp/vigil-run-vm';

const vigil = (...args: string[]) => spawnSync(process.execPath, [VIGIL, ...args], { encoding: 'utf8' });

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = jsonLines;

describe.skipIf(!inVm)('vigil run in the VM', () => {
  it('records execs and blocked execs through its sinks; the deny outlives it', async () => {
    rmSync(T, { recursive: true, force: true });
    mkdirSync(T, { recursive: true });
    const db = join(T, 'vigil.db');
    const out = join(T, 'events.jsonl');
    const denied = join(T, 'denied');
    copyFileSync('/bin/true', denied);
    appendFileSync(denied, randomBytes(32));
    chmodSync(denied, 0o755);

    const add = vigil('deny', 'add', denied, '--db', db, '--comment', 'vm run test');
    expect(add.status, add.stderr).toBe(0);

    const agent = spawn(process.execPath, [VIGIL, 'run', '--db', db, '--events-out', out, '--stats-interval', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    agent.stderr.on('data', (d) => (stderr += d));
    await waitFor(() => stderr.includes('vigil running'), 60_000, 'the agent to start');
    expect(stderr).toMatch(/enforcement: exec guard adopted from bpffs/);
    // one agent per pinned guard (issue 9): a second enforcing agent, with its own store and log, is refused naming this one
    const second = spawnSync(process.execPath, [VIGIL, 'run', '--no-db', '--events-out', join(T, 'second.jsonl'), '--stats-interval', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(second.status, second.stderr).toBe(3);
    expect(second.stderr).toContain(`exec guard /sys/fs/bpf/vigil/exec_guard: in use by another vigil process (pid ${agent.pid})`);

    const marker = `vm-marker-${process.pid}`;
    spawnSync('/bin/sh', ['-c', `/bin/echo ${marker} >/dev/null`]);
    const r = spawnSync(denied, ['blocked-arg']);
    expect((r.error as NodeJS.ErrnoException | undefined)?.code).toBe('EPERM');

    await waitFor(() => lines(out).some((e) => e.category === 'exec_guard') && lines(out).some((e) => e.vigil?.argv?.[1] === marker), 20_000, 'events in the JSONL log');
    agent.kill('SIGTERM');
    expect(await new Promise((res) => agent.on('exit', res))).toBe(0);

    const evs = lines(out);
    const exec = evs.find((e) => e.category === 'process_creation' && e.vigil.argv[1] === marker);
    expect(exec).toMatchObject({ Image: realpathSync('/bin/echo'), CommandLine: `/bin/echo ${marker}`, ParentImage: realpathSync('/bin/sh') });
    expect(exec.Ancestors[1].ProcessId).toBe(process.pid);

    const blocked = evs.find((e) => e.category === 'exec_guard');
    expect(blocked).toMatchObject({ TargetFilename: realpathSync(denied), vigil: { action: 'exec_blocked', rule: { mode: 'enforce', comment: 'vm run test' } } });
    expect(Date.parse(blocked.timestamp)).toBeGreaterThan(Date.now() - 120_000);
    // ancestors come from the agent's process table: images are known
    expect(blocked.Ancestors[0]).toMatchObject({ ProcessId: process.pid, Image: realpathSync(process.execPath) });
    // every event the agent wrote validates against the published schema (exec guard decisions too)
    for (const e of evs) expect(EventSchema.safeParse(e).error, JSON.stringify(e)).toBeUndefined();

    // the agent is gone; the kernel still says no, until disarmed
    expect((spawnSync(denied).error as NodeJS.ErrnoException | undefined)?.code).toBe('EPERM');
    expect(vigil('disarm').status).toBe(0);
    expect(spawnSync(denied).status).toBe(0);
    // four CLI starts under TCG (10-20 s each on 5.10) and up to two agent loads: 100-125 s on a busy host
  }, 300_000);

  it('vigil doctor reports enforce where BPF LSM is active', () => {
    const r = vigil('doctor', '--json');
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const check = (id: string) => rep.checks.find((c: { id: string }) => c.id === id);
    expect(check('lsm_list').detail).toMatch(/\bbpf\b/);
    expect(check('bpf_lsm').status).toBe('ok');
    expect(check('exec_guard').status).toBe('ok');
    expect(rep.enforcement.level).toBe('enforce');
  });
});
