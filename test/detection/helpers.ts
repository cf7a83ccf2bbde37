import { expect } from 'vitest';
import { NaiveEvaluator, RuleSet, type ParsedFilter, type ParsedRule } from '../../src/detection/index.js';
import { parseRuleFile } from '../../src/detection/parser.js';
import type { RuleSetOptions } from '../../src/detection/ruleset.js';

/** Build a one-rule YAML document around a detection block (indented 4 spaces below `detection:`). */
export function ruleYaml(detection: string, opts: { id?: string; category?: string; extra?: string } = {}): string {
  const body = detection
    .trim()
    .split('\n')
    .map((l) => '    ' + l)
    .join('\n');
  return `title: Test rule ${opts.id ?? 't1'}
id: ${opts.id ?? 't1'}
level: high
${opts.extra ?? ''}
logsource:
    product: linux
    category: ${opts.category ?? 'process_creation'}
detection:
${body}
`;
}

export function load(yaml: string, opts: RuleSetOptions = {}): RuleSet {
  const rs = RuleSet.fromSources([{ path: 'test.yml', text: yaml }], opts);
  return rs;
}

/** Compile one rule; fail the test if it does not load. */
export function compile(detection: string, opts: RuleSetOptions & { category?: string } = {}): (ev: Record<string, unknown>) => boolean {
  const yaml = ruleYaml(detection, opts.category ? { category: opts.category } : {});
  const rs = load(yaml, opts);
  expect(rs.errors, JSON.stringify(rs.errors)).toEqual([]);
  const parsed = parseRuleFile('test.yml', yaml, { placeholders: opts.placeholders ?? {} });
  const naive = new NaiveEvaluator(parsed.docs.filter((d): d is ParsedRule => d.kind === 'rule'), opts.mapping, parsed.docs.filter((d): d is ParsedFilter => d.kind === 'filter'));
  const cat = opts.category ?? 'process_creation';
  return (ev) => {
    const e = { category: cat, ...ev };
    const fast = rs.evaluate(e).length > 0;
    const slow = naive.evaluate(e).length > 0;
    expect(fast, `compiled and naive evaluators disagree on ${JSON.stringify(e)}`).toBe(slow);
    return fast;
  };
}

/** The load error messages of a detection block. */
export function loadErrors(detection: string, opts: RuleSetOptions = {}): string[] {
  return load(ruleYaml(detection), opts).errors.map((e) => e.message);
}

/**
 * The CPU time (ms) this process spent in `f`: the work it did. A bound on the work of an
 * evaluation (a runaway regex burns CPU) that a busy machine does not break: wall-clock time
 * also counts the time the scheduler gave to other processes.
 */
export function cpuMs(f: () => void): number {
  const c = process.cpuUsage();
  f();
  const d = process.cpuUsage(c);
  return (d.user + d.system) / 1000;
}
