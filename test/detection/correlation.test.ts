/**
 * Correlation rules (event_count, value_count, temporal, temporal_ordered) and meta filters.
 */
import { describe, expect, it } from 'vitest';
import { RuleSet } from '../../src/detection/index.js';

const base = (id: string, name: string, image: string): string => `title: base ${id}
id: ${id}
name: ${name}
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '${image}'
    condition: selection
`;

const t0 = Date.parse('2026-11-02T10:00:00Z');
const ev = (image: string, sec: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  category: 'process_creation',
  timestamp: new Date(t0 + sec * 1000).toISOString(),
  Image: image,
  User: 'alice',
  ...extra,
});

function load(...docs: string[]): RuleSet {
  const rs = RuleSet.fromSources([{ path: 'corr.yml', text: docs.join('---\n') }]);
  expect(rs.errors).toEqual([]);
  return rs;
}

describe('correlations', () => {
  it('event_count: N events per group within the timespan, then reset', () => {
    const rs = load(
      `title: many whoami
id: c1
level: high
correlation:
    type: event_count
    rules:
        - whoami_run
    group-by:
        - User
    timespan: 1m
    condition:
        gte: 3
`,
      base('b1', 'whoami_run', '/whoami'),
    );
    // the base rule does not alert on its own (generate: false by default)
    expect(rs.evaluate(ev('/usr/bin/whoami', 0))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/whoami', 10, { User: 'bob' }))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/whoami', 20))).toEqual([]);
    const a = rs.evaluate(ev('/usr/bin/whoami', 30));
    expect(a).toHaveLength(1);
    expect(a[0]!.rule_id).toBe('c1');
    expect(a[0]!.correlation).toMatchObject({ type: 'event_count', count: 3, group: { User: 'alice' }, rules: ['b1'] });
    expect(a[0]!.correlation!.first_timestamp).toBe(new Date(t0).toISOString());
    // state was reset: two more do not fire
    expect(rs.evaluate(ev('/usr/bin/whoami', 31))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/whoami', 32))).toEqual([]);
    // outside the window: old events expire
    expect(rs.evaluate(ev('/usr/bin/whoami', 200))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/whoami', 201))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/whoami', 202))).toHaveLength(1);
  });

  it('generate: true keeps the base rule alerts', () => {
    const rs = load(
      `title: c
id: c2
correlation:
    type: event_count
    rules: [b2]
    group-by: [User]
    timespan: 10s
    condition: { gte: 2 }
    generate: true
`,
      base('b2', 'x', '/id'),
    );
    expect(rs.evaluate(ev('/usr/bin/id', 0)).map((a) => a.rule_id)).toEqual(['b2']);
    expect(rs.evaluate(ev('/usr/bin/id', 1)).map((a) => a.rule_id)).toEqual(['b2', 'c2']);
  });

  it('value_count: distinct values of a field', () => {
    const rs = load(
      `title: many users
id: c3
correlation:
    type: value_count
    rules: [sudo_run]
    group-by: [ParentImage]
    timespan: 5m
    condition:
        field: User
        gt: 2
`,
      base('b3', 'sudo_run', '/sudo'),
    );
    const e = (u: string, s: number): Record<string, unknown> => ev('/usr/bin/sudo', s, { User: u, ParentImage: '/usr/sbin/sshd' });
    expect(rs.evaluate(e('a', 0))).toEqual([]);
    expect(rs.evaluate(e('a', 1))).toEqual([]);
    expect(rs.evaluate(e('b', 2))).toEqual([]);
    const a = rs.evaluate(e('c', 3));
    expect(a.map((x) => x.rule_id)).toEqual(['c3']);
    expect(a[0]!.correlation!.count).toBe(3);
  });

  it('temporal: all rules in any order within the timespan', () => {
    const rs = load(
      `title: recon
id: c4
correlation:
    type: temporal
    rules: [r_a, r_b]
    group-by: [User]
    timespan: 30s
`,
      base('ba', 'r_a', '/uname'),
      base('bb', 'r_b', '/hostname'),
    );
    expect(rs.evaluate(ev('/usr/bin/hostname', 0))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/uname', 40))).toEqual([]); // too late: hostname expired
    expect(rs.evaluate(ev('/usr/bin/hostname', 45)).map((a) => a.rule_id)).toEqual(['c4']);
  });

  it('temporal_ordered: rules in the listed order', () => {
    const rs = load(
      `title: download then run
id: c5
correlation:
    type: temporal_ordered
    rules: [r_dl, r_chmod]
    group-by: [User]
    timespan: 1m
`,
      base('bd', 'r_dl', '/wget'),
      base('bc', 'r_chmod', '/chmod'),
    );
    expect(rs.evaluate(ev('/usr/bin/chmod', 0))).toEqual([]); // wrong order
    expect(rs.evaluate(ev('/usr/bin/wget', 1))).toEqual([]);
    expect(rs.evaluate(ev('/usr/bin/chmod', 2, { User: 'bob' }))).toEqual([]); // other group
    expect(rs.evaluate(ev('/usr/bin/chmod', 3)).map((a) => a.rule_id)).toEqual(['c5']);
  });

  it('chains correlations and bounds group state', () => {
    const rs = RuleSet.fromSources(
      [
        {
          path: 'chain.yml',
          text: [
            `title: outer
id: outer
correlation:
    type: event_count
    rules: [inner]
    group-by: [User]
    timespan: 1h
    condition: { gte: 2 }
`,
            `title: inner
id: inner-id
name: inner
correlation:
    type: event_count
    rules: [b_ls]
    group-by: [User]
    timespan: 1h
    condition: { gte: 2 }
`,
            base('b_ls_id', 'b_ls', '/ls'),
          ].join('---\n'),
        },
      ],
      { correlationLimits: { maxGroups: 5 } },
    );
    expect(rs.errors).toEqual([]);
    const out: string[] = [];
    for (let i = 0; i < 4; i++) out.push(...rs.evaluate(ev('/bin/ls', i)).map((a) => a.rule_id));
    expect(out).toEqual(['outer']); // inner is silent (referenced by outer), fires twice → outer fires
    for (let u = 0; u < 50; u++) rs.evaluate(ev('/bin/ls', 10, { User: `u${u}` }));
    for (const n of Object.values(rs.correlationGroups())) expect(n).toBeLessThanOrEqual(5);
  });

  it('refuses what it cannot evaluate, with positions', () => {
    const rs = RuleSet.fromSources([
      {
        path: 'bad.yml',
        text: `title: lt only
id: bad1
correlation:
    type: event_count
    rules: [nope]
    group-by: [User]
    timespan: 1h
    condition:
        lt: 5
`,
      },
      { path: 'bad2.yml', text: `title: unknown ref\nid: bad2\ncorrelation:\n    type: temporal\n    rules: [missing]\n    timespan: 1h\n` },
      { path: 'bad3.yml', text: `title: p\nid: bad3\ncorrelation:\n    type: value_percentile\n    rules: [x]\n    timespan: 1h\n` },
      { path: 'bad4.yml', text: `title: ts\nid: bad4\ncorrelation:\n    type: temporal\n    rules: [x]\n    timespan: soon\n` },
    ]);
    const msgs = rs.errors.map((e) => `${e.path}:${e.line}: ${e.message}`);
    expect(msgs.find((m) => m.startsWith('bad.yml:9:'))).toMatch(/lower bound/);
    expect(msgs.find((m) => m.startsWith('bad2.yml'))).toMatch(/refers to rule 'missing', which is not loaded/);
    expect(msgs.find((m) => m.startsWith('bad3.yml:4:'))).toMatch(/value_percentile' is not supported/);
    expect(msgs.find((m) => m.startsWith('bad4.yml:6:'))).toMatch(/invalid timespan/);
  });
});

describe('meta filters', () => {
  it('a filter document suppresses matches of the rules it names', () => {
    const rs = load(
      base('r-curl', 'curl_run', '/curl'),
      base('r-wget', 'wget_run', '/wget'),
      `title: admins may download
id: f1
logsource:
    product: linux
    category: process_creation
filter:
    rules:
        - r-curl
    selection:
        User|startswith: 'adm_'
    condition: selection
`,
    );
    expect(rs.evaluate(ev('/usr/bin/curl', 0)).map((a) => a.rule_id)).toEqual(['r-curl']);
    expect(rs.evaluate(ev('/usr/bin/curl', 0, { User: 'adm_joe' }))).toEqual([]);
    // the filter names only r-curl
    expect(rs.evaluate(ev('/usr/bin/wget', 0, { User: 'adm_joe' })).map((a) => a.rule_id)).toEqual(['r-wget']);
  });
});
