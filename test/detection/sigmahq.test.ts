/**
 * The SigmaHQ Linux rules (copy in test/fixtures/sigma, DRL 1.1): all of them load, and
 * every process_creation / file_event / network_connection rule fires on its positive
 * event and not on its negative event (test/detection/fixtures/sigmahq-linux-cases.json;
 * each negative differs from its positive in one field, named in `changed`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NaiveEvaluator, RuleSet, listRuleFiles, parseRuleFile, type ParsedRule } from '../../src/detection/index.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const copy = `${repo}test/fixtures/sigma/rules/linux`;
const shared = `${repo}../shared/sigma/rules/linux`;
const RULES = existsSync(copy) ? copy : shared;

interface Case {
  rule: string;
  rule_id: string;
  title: string;
  changed: string;
  positive: Record<string, unknown>;
  negative: Record<string, unknown>;
}
const cases: Case[] = JSON.parse(readFileSync(new URL('./fixtures/sigmahq-linux-cases.json', import.meta.url), 'utf8')).cases;

const rs = RuleSet.fromDirs([RULES]);
const parsed = listRuleFiles(RULES).flatMap((f) => parseRuleFile(f, readFileSync(f, 'utf8')).docs);
const naive = new NaiveEvaluator(parsed.filter((d): d is ParsedRule => d.kind === 'rule'));

describe('SigmaHQ rules/linux', () => {
  it('loads all 210 files without error', () => {
    expect(listRuleFiles(RULES)).toHaveLength(210);
    expect(rs.errors).toEqual([]);
    expect(rs.rules).toHaveLength(210);
    expect(rs.activeCount).toBe(135);
    // auditd / builtin services have no vigil event source: visibly inactive, not errors
    expect(rs.inactive).toHaveLength(75);
    for (const i of rs.inactive) expect(i.reason).toMatch(/^no vigil event source \(logsource product: linux/);
  });

  it('has a case for every process_creation, file_event and network_connection rule', () => {
    const active = rs.rules.filter((r) => r.active && r.kind === 'rule').map((r) => r.id).sort();
    expect(cases.map((c) => c.rule_id).sort()).toEqual(active);
  });

  for (const c of cases) {
    it(`${c.rule}: positive fires, negative does not`, () => {
      expect(c.positive[c.changed]).not.toEqual(c.negative[c.changed]);
      const diff = Object.keys({ ...c.positive, ...c.negative }).filter((k) => JSON.stringify(c.positive[k]) !== JSON.stringify(c.negative[k]));
      expect(diff).toEqual([c.changed]);
      const pos = rs.evaluate(c.positive);
      expect(pos.map((a) => a.rule_id)).toContain(c.rule_id);
      const alert = pos.find((a) => a.rule_id === c.rule_id)!;
      expect(alert.rule_title).toBe(c.title);
      expect(alert.matched.length).toBeGreaterThan(0);
      expect(rs.evaluate(c.negative).map((a) => a.rule_id)).not.toContain(c.rule_id);
      // the compiled engine and the naive interpreter agree on the whole rule set
      expect(pos.map((a) => a.rule_id)).toEqual(naive.evaluate(c.positive));
      expect(rs.evaluate(c.negative).map((a) => a.rule_id)).toEqual(naive.evaluate(c.negative));
    });
  }
});
