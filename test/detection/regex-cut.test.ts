/**
 * Regexes on long values (issue 9, item 9): no match may come from cutting the value.
 * Linear-engine regexes see the whole value; the others search a prefix and confirm each
 * candidate on the whole value. Alerts on fields the sensor cut short are flagged.
 */
import { describe, expect, it } from 'vitest';
import { MAX_RE_INPUT } from '../../src/detection/values.js';
import { compile, cpuMs, load, ruleYaml } from './helpers.js';

const KiB = 1024;
/** `x` padding so that `tail` starts exactly `at` characters into the value. */
const at = (pos: number, tail: string, total = 70 * KiB): string => {
  const head = 'x'.repeat(pos);
  const rest = total - pos - tail.length;
  return head + tail + (rest > 0 ? ' '.repeat(rest - 1) + 'z' : '');
};

describe('regex on values longer than the cut (64 KiB)', () => {
  it('a regex ending in $ does not match at the cut of a 70 KiB CommandLine', () => {
    expect(MAX_RE_INPUT).toBe(64 * KiB);
    const m = compile(`selection:\n    CommandLine|re: 'evil$'\ncondition: selection`);
    // "evil" ends exactly where a 64 KiB cut would fall; the value goes on for 6 KiB
    expect(m({ CommandLine: at(MAX_RE_INPUT - 4, 'evil') })).toBe(false);
    // "evil" really at the end of 70 KiB: matches (a cut would have lost it)
    expect(m({ CommandLine: 'x'.repeat(70 * KiB - 4) + 'evil' })).toBe(true);
    // short values unchanged
    expect(m({ CommandLine: 'run evil' })).toBe(true);
    expect(m({ CommandLine: 'evil run' })).toBe(false);
  });

  it('lookarounds and backreferences (not linear-engine regexes) never match because of the cut', () => {
    const neg = compile(`selection:\n    CommandLine|re: 'secret(?!-ok)'\ncondition: selection`);
    // "-ok" follows right after the cut: the full value does not match
    expect(neg({ CommandLine: at(MAX_RE_INPUT - 6, 'secret-ok') })).toBe(false);
    expect(neg({ CommandLine: at(MAX_RE_INPUT - 6, 'secret-no') })).toBe(true);
    expect(neg({ CommandLine: 'a secret here' })).toBe(true);

    const end = compile(`selection:\n    CommandLine|re: '(?<=/)sh$'\ncondition: selection`);
    expect(end({ CommandLine: at(MAX_RE_INPUT - 3, '/sh') })).toBe(false);
    expect(end({ CommandLine: 'x'.repeat(70 * KiB) + '/bin/sh' })).toBe(false); // beyond the cut: not searched
    expect(end({ CommandLine: '/bin/sh' })).toBe(true);

    const rep = compile(`selection:\n    CommandLine|re: '(ab)\\1\\b'\ncondition: selection`);
    expect(rep({ CommandLine: at(MAX_RE_INPUT - 4, 'ababab') })).toBe(false);
    expect(rep({ CommandLine: at(1000, 'abab ') })).toBe(true);
  });

  it('the whole value is searched in linear time', () => {
    const m = compile(`selection:\n    CommandLine|re: 'a.*b.*c$'\ncondition: selection`);
    const v = 'a'.repeat(64 * KiB);
    let hit: boolean | undefined;
    // the backtracking engine took 6-14 s on this input (quadratic); the linear one ~0.1 s (CPU time: the scheduler's pauses on a busy machine are not the search's)
    expect(cpuMs(() => (hit = m({ CommandLine: v })))).toBeLessThan(2000);
    expect(hit).toBe(false);
    expect(m({ CommandLine: v + 'bc' })).toBe(true);
  });
});

describe('alerts on fields the sensor cut short', () => {
  it('carry the truncated fields the rule reads', () => {
    const rs = load(
      [
        ruleYaml(`selection:\n    CommandLine|endswith: ' -i'\ncondition: selection`, { id: 'cmd' }),
        ruleYaml(`selection:\n    Image|endswith: /sh\ncondition: selection`, { id: 'img' }),
        ruleYaml(`keywords:\n    - 'nc -e'\ncondition: keywords`, { id: 'kw' }),
      ].join('---\n'),
    );
    expect(rs.errors).toEqual([]);
    const ev = { category: 'process_creation', Image: '/bin/sh', CommandLine: 'nc -e /bin/sh -i', vigil: { truncated: ['CommandLine'] } };
    const alerts = Object.fromEntries(rs.evaluate(ev).map((a) => [a.rule_id, a]));
    expect(alerts.cmd!.truncated).toEqual(['CommandLine']);
    expect(alerts.img!.truncated).toBeUndefined();
    expect(alerts.kw!.truncated).toEqual(['CommandLine']);
    const whole = rs.evaluate({ ...ev, vigil: {} });
    expect(whole.every((a) => a.truncated === undefined)).toBe(true);
  });
});
