/**
 * vigil run --listen: a non-loopback address is refused before anything loads
 * (exit 2, usage.not_loopback, one line naming the flag or the config key);
 * allowed with --listen-allow-remote, with a warning, and then served.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../ports.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

describe('vigil run --listen', () => {
  it('refuses a non-loopback address before loading anything, from the flag and from the config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-listen-'));
    try {
      const r = spawnSync(process.execPath, [VIGIL, 'run', '--no-db', '--sensors', 'exec', '--no-enforce', '--listen', '0.0.0.0:7070'], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^vigil run: --listen: 0\.0\.0\.0:7070 is not a loopback address.*\[usage\.not_loopback\]/);
      expect(r.stderr).not.toMatch(/vigil running|sensors/);
      const cfg = join(dir, 'vigil.yaml');
      writeFileSync(cfg, 'db: null\napi:\n  listen: 10.9.8.7:7070\n');
      const c = spawnSync(process.execPath, [VIGIL, 'run', '-c', cfg, '--sensors', 'exec', '--no-enforce'], { encoding: 'utf8', timeout: 20_000 });
      expect(c.status).toBe(2);
      expect(c.stderr).toContain(`api.listen (${cfg})`);
      writeFileSync(cfg, 'db: null\napi:\n  listen: "not an address"\n');
      const d = spawnSync(process.execPath, [VIGIL, 'run', '-c', cfg, '--sensors', 'exec', '--no-enforce'], { encoding: 'utf8', timeout: 20_000 });
      expect(d.status).toBe(2);
      expect(d.stderr).toMatch(/expected ADDR:PORT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('binds a non-loopback address with --listen-allow-remote, warns, and still wants the token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-listen-'));
    // outside the ephemeral range: no connect() on the host takes it before the agent binds it (test/ports.ts)
    const port = await freePort('0.0.0.0');
    const agent = spawn(process.execPath, [VIGIL, 'run', '--db', join(dir, 'vigil.db'), '--sensors', 'exec', '--no-enforce', '--stats-interval', '0', '--listen', `0.0.0.0:${port}`, '--listen-allow-remote'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    agent.stderr.on('data', (d) => (stderr += d));
    try {
      const t0 = Date.now();
      while (!stderr.includes('api: listening on')) {
        if (agent.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`no API: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(stderr).toMatch(/api: 0\.0\.0\.0:\d+ is not a loopback address \(allowed.*plain HTTP/);
      expect((await fetch(`http://127.0.0.1:${port}/api/status`)).status).toBe(401);
    } finally {
      agent.kill('SIGINT');
      await new Promise((r) => agent.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
    expect(agent.exitCode).toBe(0);
  });
});
