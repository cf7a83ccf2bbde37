/**
 * Fault suite, locks (src/kernel/lock.ts): a lock held by another process is
 * refused naming its pid, one held by a process killed with SIGKILL is free at
 * once (the kernel drops a flock with its holder), and the pinned exec guard
 * has one agent: a second `vigil run` that would enforce is refused before it
 * touches the pins, naming the holder.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock, LockHeldError } from '../../src/kernel/lock.js';
import { DEFAULT_PIN_DIR } from '../../src/enforcement/abi.js';
import { guardLockPath } from '../../src/enforcement/service.js';
import { firstLine } from '../cli/wait.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));
const LOCK_JS = fileURLToPath(new URL('../../dist/kernel/lock.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vigil-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Another process that takes the lock and holds it until killed. */
async function holder(target: string, lockPath?: string): Promise<ChildProcess> {
  const code = `import(${JSON.stringify(LOCK_JS)}).then((m) => { m.acquireLock(${JSON.stringify(target)}${lockPath ? `, ${JSON.stringify(lockPath)}` : ''}); process.stdout.write('held\\n'); setInterval(() => {}, 1000); })`;
  const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    firstLine(p.stdout!).then((l) => (l === 'held' ? resolve() : reject(new Error(`the holder said ${JSON.stringify(l)}`))), reject);
    p.on('exit', () => reject(new Error('the holder exited')));
  });
  return p;
}

const kill9 = async (p: ChildProcess) => {
  p.kill('SIGKILL');
  await new Promise((r) => p.on('exit', r));
};

describe('locks', () => {
  it('refused while another process holds it (naming its pid), free at once after that process is SIGKILLed', async () => {
    const target = join(dir, 'store.db');
    const h = await holder(target);
    try {
      let err: unknown;
      try {
        acquireLock(target);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as LockHeldError).holder).toBe(h.pid);
      expect((err as LockHeldError).message).toContain(`pid ${h.pid}`);
    } finally {
      await kill9(h);
    }
    // the dead holder's file is still there, naming it; it does not block
    expect(readFileSync(`${target}.lock`, 'utf8')).toBe(`${h.pid}\n`);
    const mine = acquireLock(target);
    expect(readFileSync(`${target}.lock`, 'utf8')).toBe(`${process.pid}\n`);
    // a second lock from this very process is refused too (flock is per open file)
    expect(() => acquireLock(target)).toThrow(LockHeldError);
    mine.release();
    expect(existsSync(`${target}.lock`)).toBe(false);
  });

  it('a second agent that would enforce is refused naming the agent that holds the exec guard (exit 3), before it loads anything', async () => {
    const h = await holder(DEFAULT_PIN_DIR, guardLockPath(DEFAULT_PIN_DIR));
    try {
      const r = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-db', '--stats-interval', '0'], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(3);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`exec guard ${DEFAULT_PIN_DIR}: in use by another vigil process (pid ${h.pid})`);
      expect(r.stderr).toContain('[unavailable.locked]');
    } finally {
      await kill9(h);
    }
  });
});
