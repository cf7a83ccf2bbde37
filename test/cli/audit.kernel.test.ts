/**
 * The tamper-evident log with a real agent: `vigil run` with audit_log.chain on,
 * killed with SIGKILL while it records, started again, stopped with SIGTERM;
 * `vigil audit verify` with the verification key finds the log intact and
 * sealed to its end, then names a byte changed in a sealed line.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIGIL, waitFor } from './wait.js';

const read = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};

// format 1 (a link per line) names the line of any changed byte; format 2 (block seals, the default) the line of a
// changed length and the block's lines of an equal-length change
describe.each(['line', 'block'] as const)('vigil run with audit_log.chain, format %s', (format) => {
  it('SIGKILL mid-run, restart, SIGTERM: verify says intact and sealed to the end; a changed byte is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-run-'));
    try {
      const log = join(dir, 'events.jsonl');
      const cfg = join(dir, 'vigil.yaml');
      writeFileSync(cfg, `events_out: events.jsonl\ndb: null\naudit_log:\n  chain: { enabled: true, seal_every: 50, seal_interval: 500ms, key_dir: keys, format: ${format} }\n`);
      const start = async (): Promise<{ agent: ChildProcess; stderr: () => string }> => {
        const agent = spawn(process.execPath, [VIGIL, 'run', '-c', cfg, '--no-enforce', '--sensors', 'exec', '--stats-interval', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        agent.stderr!.on('data', (d) => (err += d));
        // an agent that exits first fails at once, with what it said
        await waitFor(() => err.includes('vigil running') || agent.exitCode !== null, 30_000);
        if (!err.includes('vigil running')) throw new Error(`vigil run exited (${agent.exitCode}) before running:\n${err}`);
        return { agent, stderr: () => err };
      };
      const execs = (marker: string) => {
        for (let i = 0; i < 30; i++) spawnSync('/bin/true', [marker, String(i)]);
      };

      const first = await start();
      expect(first.stderr()).toContain(`move its verification key ${join(dir, 'keys', 'events.jsonl.verify-key')} off this host`);
      execs(`audit-a-${process.pid}`);
      // a seal on time, then more lines after it: killed with an unsealed tail
      await waitFor(() => read(log).includes('{"vigil.seal":') && read(log).includes(`audit-a-${process.pid}`), 15_000);
      execs(`audit-b-${process.pid}`);
      await waitFor(() => read(log).includes(`audit-b-${process.pid}`), 10_000);
      first.agent.kill('SIGKILL');
      await new Promise((r) => first.agent.once('exit', r));

      const second = await start();
      expect(second.stderr()).toContain('verification key is still on this host');
      execs(`audit-c-${process.pid}`);
      await waitFor(() => read(log).includes(`audit-c-${process.pid}`), 10_000);
      second.agent.kill('SIGTERM');
      expect(await new Promise((r) => second.agent.once('exit', r))).toBe(0);

      const key = join(dir, 'keys', 'events.jsonl.verify-key');
      const v = spawnSync(process.execPath, [VIGIL, 'audit', 'verify', log, '--key', key, '--json'], { encoding: 'utf8' });
      expect(v.stderr).toBe('');
      expect(v.status).toBe(0);
      const r = JSON.parse(v.stdout) as { ok: boolean; format: number; seals: number; seals_checked: number; unsealed: number; records: number; notes: Array<{ kind: string }> };
      expect(r.ok).toBe(true);
      expect(r.format).toBe(format === 'line' ? 1 : 2);
      expect(r.notes.filter((n) => n.kind === 'start')).toHaveLength(2);
      expect(r.seals).toBeGreaterThanOrEqual(2);
      expect(r.seals_checked).toBe(r.seals);
      expect(r.unsealed).toBe(0); // SIGTERM sealed what was left
      expect(r.records).toBeGreaterThanOrEqual(90);

      // one byte of a sealed record changed
      const lines = read(log).split('\n');
      const at = lines.findIndex((l) => l.includes(`audit-a-${process.pid}`));
      const orig = lines[at]!;
      lines[at] = orig.replace(`audit-a-${process.pid}`, `audit-A-${process.pid}`);
      writeFileSync(log, lines.join('\n'));
      const t = spawnSync(process.execPath, [VIGIL, 'audit', 'verify', log, '--key', key], { encoding: 'utf8' });
      expect(t.status).toBe(1);
      expect(t.stderr).toContain('[failed.tampered]');
      if (format === 'line') {
        expect(t.stderr).toContain(`${log}:${at + 1}: changed:`);
      } else {
        // the block's lines: from the line after the seal before it (or a start line, which begins a block) to the line before its seal
        let first = at;
        while (first > 0 && !lines[first - 1]!.startsWith('{"vigil.seal"') && !lines[first]!.startsWith('{"vigil.audit"')) first--;
        let last = at;
        while (!lines[last + 1]!.startsWith('{"vigil.seal"')) last++;
        expect(t.stdout).toContain(`NOT INTACT: ${log}:${first + 1}-${last + 1}: changed:`);
        expect(t.stderr).toContain(`${log}:${first + 1}: changed: the bytes of lines ${log}:${first + 1}..${last + 1} do not match seal`);
        // a byte added: the line itself
        lines[at] = orig.replace(`audit-a-${process.pid}`, `audit-aa-${process.pid}`);
        writeFileSync(log, lines.join('\n'));
        const u = spawnSync(process.execPath, [VIGIL, 'audit', 'verify', log, '--key', key], { encoding: 'utf8' });
        expect(u.status).toBe(1);
        expect(u.stderr).toContain(`${log}:${at + 1}: changed: this line is ${Buffer.byteLength(orig) + 1} bytes, sealed as ${Buffer.byteLength(orig)}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
