/**
 * Live detection: `vigil run --rules DIR` with SigmaHQ's Linux rules, then a
 * command one of them targets → the alert is out within one second.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
      for (const line of stdout.split('\n')) {
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
});
