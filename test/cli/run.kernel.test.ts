/**
 * `vigil run` end to end, as a user runs it: a separate process, real sensors,
 * a command started after it, SIGTERM, then `vigil events` on the store.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIGIL, waitFor } from './wait.js';

describe('vigil run', () => {
  it('records a later command with CommandLine, ParentImage and Ancestors; shuts down cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-run-'));
    const out = join(dir, 'events.jsonl');
    const db = join(dir, 'vigil.db');
    const agent = spawn(process.execPath, [VIGIL, 'run', '--events-out', out, '--db', db, '--stats-interval', '1s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    agent.stderr.on('data', (d) => (stderr += d));
    // an agent that exits first fails at once, with what it said
    await waitFor(() => stderr.includes('vigil running') || agent.exitCode !== null, 30_000);
    if (!stderr.includes('vigil running')) throw new Error(`vigil run exited (${agent.exitCode}) before running:\n${stderr}`);

    const marker = `vigil-e2e-${process.pid}`;
    spawnSync('/bin/sh', ['-c', `/bin/echo ${marker} "quoted arg" > /dev/null`]);
    await waitFor(() => stderr.includes('"events"') && readFileSync(out, 'utf8').includes(marker), 10_000);
    agent.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => agent.on('exit', r));
    expect(code).toBe(0);

    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    const ev = lines.map((l) => JSON.parse(l)).find((e) => e.category === 'process_creation' && e.vigil.argv[0] === '/bin/echo' && e.CommandLine.includes(marker));
    expect(ev).toMatchObject({
      CommandLine: `/bin/echo ${marker} quoted arg`,
      ParentImage: expect.stringMatching(/\/(dash|bash|sh)$/),
      ParentCommandLine: expect.stringContaining('/bin/sh -c /bin/echo'),
    });
    expect(ev.Ancestors.length).toBeGreaterThanOrEqual(2);
    expect(ev.Ancestors[1].ProcessId).toBe(process.pid);
    expect(stderr).toMatch(/events \d+ \([\d.]+\/s\)/);
    expect(stderr).toMatch(/final: events \d+ .* drops kernel=0 decode=0/);

    const q = spawnSync(process.execPath, [VIGIL, 'events', '--db', db, '--json', '-f', `CommandLine~/bin/echo ${marker}*`, '--category', 'process_creation'], { encoding: 'utf8' });
    expect(q.status).toBe(0);
    const found = q.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(found).toHaveLength(1);
    expect(found[0].ProcessId).toBe(ev.ProcessId);
  });

  it('refuses a bad config naming the key and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-cfg-'));
    const cfg = join(dir, 'vigil.yaml');
    writeFileSync(cfg, 'db: null\nstats_interval: often\n');
    const r = spawnSync(process.execPath, [VIGIL, 'run', '-c', cfg], { encoding: 'utf8' });
    // a configuration error: 4 (docs/cli.md, EXIT STATUS)
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`${cfg}:2:17: stats_interval:`);
  });
});
