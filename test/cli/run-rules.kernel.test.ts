/**
 * Live detection: `vigil run --rules DIR` with SigmaHQ's Linux rules, then a
 * command one of them targets → the alert is out within one second.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { completeLines } from './wait.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));
const RULES = fileURLToPath(new URL('../fixtures/sigma/rules/linux/process_creation', import.meta.url));

describe('vigil run --rules', () => {
  it('alerts on a live exec within one second', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-rules-'));
    const rules = join(dir, 'rules');
    cpSync(RULES, rules, { recursive: true });
    const alertsOut = join(dir, 'alerts.jsonl');
    const agent = spawn(process.execPath, [VIGIL, 'run', '--no-db', '--rules', rules, '--alerts-out', alertsOut, '--stdout', '--stats-interval', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    agent.stdout.on('data', (d) => (stdout += d));
    agent.stderr.on('data', (d) => (stderr += d));
    const t0 = Date.now();
    while (!stderr.includes('vigil running')) {
      if (Date.now() - t0 > 30_000) throw new Error(`agent did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(stderr).toMatch(/Sigma rules loaded: \d+ active/);

    // proc_creation_lnx_base64_decode: Image|endswith /base64, CommandLine|contains -d
    const start = Date.now();
    spawnSync('/bin/sh', ['-c', 'echo aGVsbG8K | base64 -d > /dev/null']);
    let alert: Record<string, unknown> | undefined;
    while (!alert && Date.now() - start < 5000) {
      // the agent is still writing: a line caught part-way is read at the next poll
      for (const line of completeLines(stdout)) {
        if (!line.startsWith('{"alert"')) continue;
        const a = JSON.parse(line).alert;
        if (a.rule_title && String(a.event?.CommandLine).startsWith('base64 -d')) alert = a;
      }
      if (!alert) await new Promise((r) => setTimeout(r, 10));
    }
    const latency = Date.now() - start;
    agent.kill('SIGINT');
    await new Promise((r) => agent.on('exit', r));
    expect(alert, stderr).toBeDefined();
    expect(alert).toMatchObject({ rule_id: 'e2072cab-8c9a-459b-b63c-40ae79e27031', level: 'low' });
    expect(String(alert!.rule_title)).toMatch(/base64/i);
    expect(latency).toBeLessThan(1000);
    expect(existsSync(alertsOut)).toBe(true);
    expect(readFileSync(alertsOut, 'utf8')).toContain(String(alert!.rule_id));
  });

  it('follows rule files replaced by rename and deleted while running (worker-thread reloads)', async () => {
    const dir = mkdtempSync(join('/dev/shm', 'vigil-reload-'));
    const rules = join(dir, 'rules');
    mkdirSync(rules);
    // a marker command no other rule cares about: /bin/true with a unique argument
    const marker = `vigil-reload-${process.pid}`;
    const rule = (id: string, word: string): string =>
      `title: live ${id}\nid: ${id}\nlevel: high\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    sel:\n        Image|endswith: /true\n        CommandLine|contains: '${marker}-${word}'\n    condition: sel\n`;
    const f = join(rules, 'live.yml');
    writeFileSync(f, rule('live-a', 'one'));
    const agent = spawn(process.execPath, [VIGIL, 'run', '--no-db', '--rules', rules, '--stdout', '--stats-interval', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    agent.stdout.on('data', (d) => (stdout += d));
    agent.stderr.on('data', (d) => (stderr += d));
    try {
      const t0 = Date.now();
      while (!stderr.includes('vigil running')) {
        if (Date.now() - t0 > 30_000) throw new Error(`agent did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(stderr).toMatch(/"scans":"worker thread"/);
      /**
       * run /bin/true WORD until an alert for it appears (or `ms` pass); the rule ids that fired.
       * Each call's execs carry a tag of their own: an alert for an exec of an earlier call
       * (one it ran before it saw its first alert) may come late, and is not this call's.
       */
      let calls = 0;
      const fire = async (word: string, ms: number): Promise<string[]> => {
        const arg = `${marker}-${word}`;
        const tag = `call-${++calls}`;
        const end = Date.now() + ms;
        for (;;) {
          spawnSync('/bin/true', [arg, tag]);
          await new Promise((r) => setTimeout(r, 100));
          // the agent is still writing: a line caught part-way is read at the next poll
          const ids = completeLines(stdout)
            .filter((l) => l.startsWith('{"alert"'))
            .map((l) => JSON.parse(l).alert as { rule_id: string; event?: { CommandLine?: string } })
            .filter((a) => a.event?.CommandLine === `/bin/true ${arg} ${tag}`)
            .map((a) => a.rule_id);
          if (ids.length || Date.now() > end) return [...new Set(ids)];
        }
      };
      /** the number of 'rules reloaded' lines so far that leave `rules` rules in force */
      const reloadsTo = (rules: number) =>
        completeLines(stderr)
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { msg?: string; reload?: { rules: number } })
          .filter((r) => r.msg === 'rules reloaded' && r.reload?.rules === rules).length;
      expect(await fire('one', 3000)).toEqual(['live-a']);
      // sed -i style: a new file renamed over the old one
      writeFileSync(join(rules, '.live.tmp'), rule('live-b', 'two'));
      renameSync(join(rules, '.live.tmp'), f);
      expect(await fire('two', 5000)).toEqual(['live-b']);
      expect(await fire('one', 1000)).toEqual([]);
      // a later edit of the replaced file, then its deletion
      writeFileSync(f, rule('live-c', 'three'));
      expect(await fire('three', 5000)).toEqual(['live-c']);
      const emptied = reloadsTo(0);
      rmSync(f);
      // the agent says when the deletion is in force (not a fixed wait: a reload takes longer on a busy machine)
      const t1 = Date.now();
      while (reloadsTo(0) === emptied) {
        if (Date.now() - t1 > 15_000) throw new Error(`no reload after the deletion: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await fire('three', 1000)).toEqual([]);
      expect(stderr).toMatch(/rules reloaded/);
    } finally {
      agent.kill('SIGINT');
      await new Promise((r) => agent.on('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

