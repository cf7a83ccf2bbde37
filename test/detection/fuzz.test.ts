/**
 * Property tests: random rules and random events never crash or hang the engine, and the
 * compiled engine always agrees with the naive interpreter. Seeded: failures reproduce.
 */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { NaiveEvaluator, RuleSet, parseRuleFile, type ParsedRule } from '../../src/detection/index.js';
import { cpuMs } from './helpers.js';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIELDS = ['Image', 'CommandLine', 'ParentImage', 'User', 'LogonId', 'vigil.argv', 'CurrentDirectory'];
const CHARS = ['a', 'b', 'A', '/', '-', ' ', '*', '?', '\\', '.', '%', 'é', '1'];
const MODS = [
  [], ['contains'], ['startswith'], ['endswith'], ['contains', 'all'], ['cased'], ['contains', 'cased'], ['re'], ['re', 'i'],
  ['windash', 'contains'], ['base64offset', 'contains'], ['base64'], ['utf16le', 'base64offset', 'contains'], ['gt'], ['lte'],
  ['neq'], ['exists'], ['cidr'], ['fieldref'], ['hour'], ['expand'], ['contains', 'neq'], ['bogus'], ['startswith', 'endswith'],
];
const REGEXES = ['a+', '(a+)+$', '^(a|aa)+$', '(.*a){12}', '[ab]*b$', '\\d+', '(?i)AB', 'a(?i)b', '(', 'a{2,}', '(x+x+)+y', '((a+)\\2)+'];

function randStr(r: () => number, max = 8): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(r() * CHARS.length)];
  return s;
}

function randValue(r: () => number, mods: string[]): unknown {
  if (mods.includes('re')) return REGEXES[Math.floor(r() * REGEXES.length)];
  if (mods.includes('exists')) return r() < 0.5;
  if (mods.includes('cidr')) return ['10.0.0.0/8', '::1/128', 'fd00::/8', 'bad'][Math.floor(r() * 4)];
  if (mods.includes('fieldref')) return FIELDS[Math.floor(r() * FIELDS.length)];
  if (mods.some((m) => ['gt', 'lte', 'hour'].includes(m))) return Math.floor(r() * 30);
  if (mods.includes('expand')) return '%p%' + randStr(r, 3);
  const k = r();
  if (k < 0.08) return null;
  if (k < 0.16) return Math.floor(r() * 3);
  return randStr(r);
}

function randSelection(r: () => number): unknown {
  if (r() < 0.1) return [randStr(r), randStr(r)]; // keywords
  const m: Record<string, unknown> = {};
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const mods = MODS[Math.floor(r() * MODS.length)]!;
    const key = [FIELDS[Math.floor(r() * FIELDS.length)], ...mods].join('|');
    m[key] = r() < 0.4 ? [randValue(r, mods), randValue(r, mods)] : randValue(r, mods);
  }
  return r() < 0.15 ? [m, { [FIELDS[0]!]: randStr(r) }] : m;
}

function randCond(r: () => number, names: string[], depth = 0): string {
  const k = r();
  if (depth > 3 || k < 0.35) return names[Math.floor(r() * names.length)]!;
  if (k < 0.5) return `not ${randCond(r, names, depth + 1)}`;
  if (k < 0.65) return `(${randCond(r, names, depth + 1)} or ${randCond(r, names, depth + 1)})`;
  if (k < 0.8) return `${randCond(r, names, depth + 1)} and ${randCond(r, names, depth + 1)}`;
  if (k < 0.9) return `${r() < 0.5 ? '1' : 'all'} of sel*`;
  return r() < 0.5 ? '1 of them' : 'all of them';
}

function randRule(r: () => number, i: number): string {
  const names = ['sel', 'sel_a', 'sel_b', '_x'].slice(0, 1 + Math.floor(r() * 4));
  const detection: Record<string, unknown> = {};
  for (const n of names) detection[n] = randSelection(r);
  detection.condition = randCond(r, names);
  return stringify({ title: `fuzz ${i}`, id: `fuzz-${i}`, logsource: { product: 'linux', category: 'process_creation' }, detection });
}

function randEvent(r: () => number): Record<string, unknown> {
  const ev: Record<string, unknown> = { category: 'process_creation', timestamp: new Date(1.7e12 + Math.floor(r() * 1e10)).toISOString() };
  for (const f of FIELDS) {
    const k = r();
    if (k < 0.15) continue;
    if (f === 'vigil.argv') ev.vigil = { argv: [randStr(r), randStr(r)] };
    else if (k < 0.25) ev[f] = Math.floor(r() * 5);
    else if (k < 0.3) ev[f] = null;
    else if (k < 0.33) ev[f] = [randStr(r), 1];
    else if (k < 0.35) ev[f] = { nested: randStr(r) };
    else ev[f] = randStr(r, 12) + (r() < 0.3 ? Buffer.from(randStr(r)).toString('base64') : '');
  }
  return ev;
}

describe('fuzz: random rules and events', () => {
  it('never throws, never hangs, and agrees with the naive evaluator', async () => {
    const r = prng(0xc0ffee);
    let loaded = 0;
    let refused = 0;
    let matches = 0;
    for (let round = 0; round < 60; round++) {
      const texts = Array.from({ length: 20 }, (_, i) => randRule(r, round * 100 + i));
      const sources = texts.map((text, i) => ({ path: `fuzz${i}.yml`, text }));
      // one parse feeds both evaluators (regex acceptance probes are time-bounded)
      const results = sources.map((s) => parseRuleFile(s.path, s.text, { placeholders: { p: ['x', 'a*'] } }));
      const parsed = results.flatMap((r) => r.docs);
      const rs = new RuleSet(parsed, results.flatMap((r) => r.errors));
      const naive = new NaiveEvaluator(parsed.filter((d): d is ParsedRule => d.kind === 'rule'));
      loaded += rs.activeCount;
      refused += rs.errors.length;
      for (const e of rs.errors) {
        expect(e.line).toBeGreaterThan(0);
        expect(e.message.length).toBeGreaterThan(5);
      }
      for (let k = 0; k < 100; k++) {
        const ev = randEvent(r);
        let got: string[] = [];
        // CPU time, not wall-clock: the scheduler's pauses on a busy machine are not the evaluation's
        expect(cpuMs(() => (got = rs.evaluate(ev).map((a) => a.rule_id)))).toBeLessThan(250);
        const want = naive.evaluate(ev);
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          const diff = [...got, ...want].filter((id) => !got.includes(id) || !want.includes(id));
          if (process.env.FUZZ_DUMP) (await import('node:fs')).writeFileSync(process.env.FUZZ_DUMP, JSON.stringify({ sources, ev }));
          const src = sources.find((s) => diff.some((d) => s.text.includes(`id: ${d}`)));
          expect.fail(`compiled ${JSON.stringify(got)} vs naive ${JSON.stringify(want)}\nevent: ${JSON.stringify(ev)}\nrule:\n${src?.text}`);
        }
        matches += got.length;
      }
      expect(rs.stats.evalErrors).toBe(0);
    }
    // the generator must exercise both paths
    expect(loaded).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(50);
    expect(matches).toBeGreaterThan(100);
  });

  it('mangled YAML never throws out of the loader', () => {
    const r = prng(42);
    for (let i = 0; i < 300; i++) {
      let t = randRule(r, i);
      const n = 1 + Math.floor(r() * 4);
      for (let k = 0; k < n; k++) {
        const p = Math.floor(r() * t.length);
        const op = r();
        t = op < 0.4 ? t.slice(0, p) + t.slice(p + 1) : op < 0.8 ? t.slice(0, p) + ['"', ':', '\n', '  ', '[', '|', '- '][Math.floor(r() * 7)] + t.slice(p) : t.slice(0, p);
      }
      const rs = RuleSet.fromSources([{ path: 'm.yml', text: t }]);
      for (const e of rs.errors) expect(e.line).toBeGreaterThanOrEqual(0);
      rs.evaluate(randEvent(r));
      expect(rs.stats.evalErrors).toBe(0);
    }
  });

  it('catastrophic regexes and wildcards are bounded', () => {
    const rule = (re: string): string =>
      stringify({ title: 'redos', id: 'redos', logsource: { product: 'linux', category: 'process_creation' }, detection: { sel: { 'CommandLine|re': re }, condition: 'sel' } });
    for (const re of ['(a+)+$', '^(a|aa)+$', '(x+x+)+y', '(.*a){20}$', '^(\\w+\\s?)*$']) {
      const rs = RuleSet.fromSources([{ path: 'r.yml', text: rule(re) }]);
      // either refused at load as catastrophic, or bounded at run time
      for (const e of rs.errors) expect(e.message).toMatch(/catastroph/);
      const ms = cpuMs(() => {
        rs.evaluate({ category: 'process_creation', CommandLine: 'a'.repeat(30_000) + '!' });
        rs.evaluate({ category: 'process_creation', CommandLine: 'x'.repeat(30_000) });
      });
      expect(ms, re).toBeLessThan(1000);
    }
    // backreferences cannot use the linear engine: nested quantifiers there are refused
    const bad = RuleSet.fromSources([{ path: 'r.yml', text: rule('((a+)\\2)+$') }]);
    expect(bad.errors[0]!.message).toMatch(/catastrophic/);
    const wild = RuleSet.fromSources([
      { path: 'w.yml', text: stringify({ title: 'w', id: 'w', logsource: { product: 'linux', category: 'process_creation' }, detection: { sel: { CommandLine: '*a*a*a*a*a*a*a*a*b' }, condition: 'sel' } }) },
    ]);
    let hits = -1;
    expect(cpuMs(() => (hits = wild.evaluate({ category: 'process_creation', CommandLine: 'a'.repeat(50_000) }).length))).toBeLessThan(1000);
    expect(hits).toBe(0);
  });
});
