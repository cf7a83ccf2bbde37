/** Allow rules of the exec policy on marked files: the store, matching, soak's narrowest rules. */
import { describe, expect, it } from 'vitest';
import { AllowStore, checkConditions, firstMatch, globRegExp, narrowest, ruleMatches, type AllowSubject } from '../../src/provenance/index.js';

const subject: AllowSubject = {
  path: '/home/ann/bin/tool',
  record: { path: '/home/ann/Downloads/tool', exe: '/usr/bin/curl', comm: 'curl', uid: 1000, remote: { address: '198.51.100.7' } },
};

describe('allow rules', () => {
  it('globs: * and ? stay in one component, ** crosses them, the rest is literal', () => {
    expect(globRegExp('/home/*/bin/*').test('/home/ann/bin/tool')).toBe(true);
    expect(globRegExp('/home/*').test('/home/ann/bin/tool')).toBe(false);
    expect(globRegExp('/home/**').test('/home/ann/bin/tool')).toBe(true);
    expect(globRegExp('/a/b.c').test('/a/bxc')).toBe(false);
    expect(globRegExp('/a/t??l').test('/a/tool')).toBe(true);
  });

  it('every condition of a rule must hold; remote takes an address or a CIDR', () => {
    expect(ruleMatches({ path: '/home/*/bin/*' }, subject)).toBe(true);
    expect(ruleMatches({ path: '/home/*/bin/*', exe: '/usr/bin/wget' }, subject)).toBe(false);
    expect(ruleMatches({ exe: '/usr/bin/curl', uid: 1000 }, subject)).toBe(true);
    expect(ruleMatches({ uid: 0 }, subject)).toBe(false);
    expect(ruleMatches({ landing: '/home/ann/Downloads/*' }, subject)).toBe(true);
    expect(ruleMatches({ remote: '198.51.100.0/24' }, subject)).toBe(true);
    expect(ruleMatches({ remote: '198.51.101.0/24' }, subject)).toBe(false);
    expect(ruleMatches({ remote: '2001:db8::/32' }, subject)).toBe(false);
    // unknown facts never match: a file whose path is not known now, a mark without a record
    expect(ruleMatches({ path: '/**' }, { path: null, record: subject.record })).toBe(false);
    expect(ruleMatches({ exe: '/**' }, { path: '/x', record: null })).toBe(false);
  });

  it('bad conditions are refused with a reason naming the option', () => {
    expect(checkConditions({})).toMatch(/at least one condition/);
    expect(checkConditions({ path: 'rel/x' })).toMatch(/^--path rel\/x/);
    expect(checkConditions({ remote: '10.0.0.0/33' })).toMatch(/^--remote/);
    expect(checkConditions({ remote: 'example.org' })).toMatch(/^--remote/);
    expect(checkConditions({ exe: '/usr/bin/curl', remote: '::1' })).toBeNull();
  });

  it('soak learns the narrowest rule per dimension; the store keeps one per set of conditions; pending rules do not match until accepted', () => {
    const s = AllowStore.open(':memory:');
    try {
      expect(narrowest('path', subject)).toEqual({ path: '/home/ann/bin/tool' });
      expect(narrowest('exe', subject)).toEqual({ exe: '/usr/bin/curl' });
      expect(narrowest('remote', subject)).toEqual({ remote: '198.51.100.7' });
      expect(narrowest('path', { path: '/odd/na*me', record: null })).toEqual({ path: '/odd/na?me' });
      expect(narrowest('exe', { path: '/x', record: null })).toBeNull();
      const a = s.add(narrowest('path', subject)!, { state: 'pending', source: 'soak' });
      const b = s.add(narrowest('path', subject)!, { state: 'pending', source: 'soak' });
      expect(a.added).toBe(true);
      expect(b).toMatchObject({ added: false, rule: { id: a.rule.id } });
      expect(firstMatch(s.list(), subject)).toBeNull();
      const sig = s.signature();
      expect(s.setState([a.rule.id], 'active')).toEqual([a.rule.id]);
      expect(s.signature()).not.toBe(sig);
      expect(firstMatch(s.list(), subject)?.id).toBe(a.rule.id);
      // a manual add of the same conditions is the same rule
      expect(s.add({ path: '/home/ann/bin/tool' }, { state: 'active', source: 'manual' })).toMatchObject({ added: false, rule: { id: a.rule.id } });
      expect(s.remove([a.rule.id, 999])).toEqual([a.rule.id]);
      expect(s.list()).toEqual([]);
    } finally {
      s.close();
    }
  });
});
