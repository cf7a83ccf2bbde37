/**
 * `vigil run` with its sensors chosen by flag or config: the file sensor end to
 * end (the "done means"), the per-sensor stats line, bad sensor input.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonLines } from './wait.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runAgent(args: string[], act: (dir: string) => void, until: (lines: Array<Record<string, any>>) => boolean) {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'vigil-sensors-')));
  const out = join(dir, 'events.jsonl');
  const agent = spawn(process.execPath, [VIGIL, 'run', '--no-db', '--no-enforce', '--events-out', out, '--stats-interval', '1s', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  agent.stderr.on('data', (d) => (stderr += d));
  await waitFor(() => stderr.includes('vigil running') || agent.exitCode !== null, 30_000);
  if (agent.exitCode !== null) throw new Error(`agent exited: ${stderr}`);
  act(dir);
  const read = () => jsonLines(out);
  await waitFor(() => until(read()), 15_000).catch(() => {});
  agent.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => agent.on('exit', r));
  return { code, stderr, events: read(), dir };
}

describe('vigil run --sensors', () => {
  it("records sh -c 'echo x > f; mv f g; rm g' as three file events with the right paths", async () => {
    let d = '';
    const r = await runAgent(
      ['--sensors', 'exec,file'],
      (dir) => {
        d = dir;
        spawnSync('/bin/sh', ['-c', `echo x > ${dir}/f; mv ${dir}/f ${dir}/g; rm ${dir}/g`]);
      },
      (evs) => evs.some((e) => e.category === 'file_delete'),
    );
    expect(r.code).toBe(0);
    const files = r.events.filter((e) => String(e.category).startsWith('file_') && String(e.TargetFilename).startsWith(d) && !String(e.TargetFilename).endsWith('.jsonl'));
    expect(files.map((e) => [e.category, e.SourceFilename ?? null, e.TargetFilename])).toEqual([
      ['file_event', null, `${d}/f`],
      ['file_rename', `${d}/f`, `${d}/g`],
      ['file_delete', null, `${d}/g`],
    ]);
    // the agent's own audit log writes are not in it
    expect(r.events.some((e) => String(e.TargetFilename).endsWith('events.jsonl'))).toBe(false);
    expect(r.stderr).toMatch(/vigil running: sensors exec, file attached/);
    expect(r.stderr).toMatch(/records exec \d+ file \d+/);
  });

  it('--sensors exec: no file events; a sensor off in the config stays off', async () => {
    const r = await runAgent(['--sensors', 'exec'], (dir) => spawnSync('/bin/sh', ['-c', `echo x > ${dir}/f`]), (evs) => evs.some((e) => e.category === 'process_creation'));
    expect(r.events.filter((e) => String(e.category).startsWith('file_'))).toEqual([]);
    const cfgDir = mkdtempSync(join(tmpdir(), 'vigil-cfg-'));
    const cfg = join(cfgDir, 'vigil.yaml');
    writeFileSync(cfg, 'sensors:\n  file:\n    enabled: false\n');
    const r2 = await runAgent(['-c', cfg], (dir) => spawnSync('/bin/sh', ['-c', `echo x > ${dir}/f`]), (evs) => evs.some((e) => e.category === 'process_creation'));
    expect(r2.events.filter((e) => String(e.category).startsWith('file_'))).toEqual([]);
    expect(r2.stderr).not.toMatch(/sensors exec, file/);
  });

  it('bad sensor input: an unknown sensor is a usage error, a bad sensor key a configuration error, each naming the place', () => {
    const r = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec,bogus'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--sensors: unknown sensor "bogus" \(known: exec, .*file/);
    const dir = mkdtempSync(join(tmpdir(), 'vigil-cfg-'));
    const cfg = join(dir, 'vigil.yaml');
    writeFileSync(cfg, 'sensors:\n  file:\n    read: [etc/]\n');
    const c = spawnSync(process.execPath, [VIGIL, 'run', '-c', cfg], { encoding: 'utf8' });
    // a configuration error: 4 (docs/cli.md, EXIT STATUS)
    expect(c.status).toBe(4);
    expect(c.stderr).toContain(`${cfg}:3:12: sensors.file.read.0: an absolute path prefix`);
  });
});
