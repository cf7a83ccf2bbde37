/** Allow rules of the exec policy on marked files: the store, matching, soak's narrowest rules. */
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDev } from '../../src/enforcement/index.js';
import { markKey, markUidKey } from '../../src/events/taint.js';
import {
  AllowStore, ProvenanceStore, checkConditions, showMark, firstMatch, globRegExp, hostGlobRegExp, narrowest, needsExecUid, resolveAllowed, ruleMatches, type AllowRule, type AllowSubject,
} from '../../src/provenance/index.js';

const subject: AllowSubject = {
  path: '/home/ann/bin/tool',
  record: { path: '/home/ann/Downloads/tool', exe: '/usr/bin/curl', comm: 'curl', uid: 1000, remote: { address: '198.51.100.7', host: 'dl.Example.org.' } },
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

  it('remote host: a glob on the origin\'s host name (* and ? within one label, ** across labels, case-insensitive, trailing dot ignored); no name known never matches', () => {
    expect(hostGlobRegExp('*.example.org').test('dl.example.org')).toBe(true);
    expect(hostGlobRegExp('*.example.org').test('a.b.example.org')).toBe(false);
    expect(hostGlobRegExp('**.example.org').test('a.b.example.org')).toBe(true);
    expect(hostGlobRegExp('*.example.org').test('dl.example.org.evil.net')).toBe(false);
    expect(hostGlobRegExp('dl?.example.org').test('dl1.example.org')).toBe(true);
    expect(ruleMatches({ remote_host: '*.example.org' }, subject)).toBe(true);
    expect(ruleMatches({ remote_host: 'DL.EXAMPLE.ORG.' }, subject)).toBe(true);
    expect(ruleMatches({ remote_host: '*.example.com' }, subject)).toBe(false);
    expect(ruleMatches({ remote_host: '**' }, { path: '/x', record: { ...subject.record!, remote: { address: '198.51.100.7' } } })).toBe(false);
    expect(ruleMatches({ remote_host: '*.example.org', remote: '198.51.100.0/24', exe: '/usr/bin/curl' }, subject)).toBe(true);
    expect(narrowest('remote_host', subject)).toEqual({ remote_host: 'dl.Example.org' });
    expect(checkConditions({ remote_host: 'ex ample.org' })).toMatch(/^--remote-host /);
    expect(checkConditions({ remote_host: '*.example.org' })).toBeNull();
  });

  it('exec uid: matches only an exec by that uid, is learned from the decision, and goes into the kernel\'s (inode, uid) map, never into the inode map (that would allow every uid)', () => {
    expect(ruleMatches({ exec_uid: 1000 }, { ...subject, execUid: 1000 })).toBe(true);
    expect(ruleMatches({ exec_uid: 1000 }, { ...subject, execUid: 0 })).toBe(false);
    expect(ruleMatches({ exec_uid: 1000 }, subject)).toBe(false); // no exec known
    expect(narrowest('exec_uid', { ...subject, execUid: 0 })).toEqual({ exec_uid: 0 });
    expect(narrowest('exec_uid', subject)).toBeNull();
    expect(checkConditions({ exec_uid: -1 })).toMatch(/^--exec-uid /);
    expect(needsExecUid({ exec_uid: 0, path: '/x' })).toBe(true);

    const dir = mkdtempSync(join(tmpdir(), 'vigil-allow-'));
    const marks = ProvenanceStore.open(':memory:');
    try {
      const file = join(dir, 'tool');
      writeFileSync(file, 'x');
      const st = statSync(file, { bigint: true });
      marks.put({ dev: kernelDev(st.dev), ino: st.ino.toString(), path: file, depth: 0, record: { v: 1, kind: 'network', time: '2026-11-30T00:00:00Z', path: file, exe: '/usr/bin/curl', comm: 'curl', pid: 1, uid: 1000, host: 'h', depth: 0 } });
      const rule = (id: number, c: Partial<AllowRule>): AllowRule => ({ id, state: 'active', source: 'manual', comment: null, createdMs: 0, ...c });
      const dev = kernelDev(st.dev);
      const entries = (m: Map<string, [Buffer, number]>) => [...m.values()].map(([k, id]) => [k.toString('hex'), id]);
      // prov_allow_uid: (dev, ino, exec uid) -> rule id; the inode map stays empty
      const one = resolveAllowed([rule(1, { path: file, exec_uid: 1000 })], marks, null);
      expect(one.inode.size).toBe(0);
      expect(entries(one.uid)).toEqual([[markUidKey(dev, st.ino, 1000).toString('hex'), 1]]);
      // the key is struct vigil_mark_uid_key: dev, uid, ino (little-endian)
      expect(markUidKey(0x800001, 7n, 1000).toString('hex')).toBe('01008000' + 'e8030000' + '0700000000000000');
      // one entry per exec uid whose rules match (lowest id first); a rule whose other conditions fail, or pending, adds none
      const many = resolveAllowed([
        rule(3, { path: `${dir}/*`, exec_uid: 1001 }),
        rule(4, { exe: '/usr/bin/curl', exec_uid: 1000 }),
        rule(5, { landing: file, exec_uid: 1000 }),
        rule(6, { exe: '/usr/bin/wget', exec_uid: 1002 }),
        { ...rule(7, { path: file, exec_uid: 1003 }), state: 'pending' },
      ], marks, null);
      expect(many.inode.size).toBe(0);
      expect(entries(many.uid).sort()).toEqual([[markUidKey(dev, st.ino, 1000).toString('hex'), 4], [markUidKey(dev, st.ino, 1001).toString('hex'), 3]].sort());
      // an inode a rule allows for every uid needs no (inode, uid) entry: prov_allow is looked up first
      const both = resolveAllowed([rule(1, { path: file, exec_uid: 1000 }), rule(2, { exe: '/usr/bin/curl' })], marks, null);
      expect(entries(both.inode)).toEqual([[markKey(dev, st.ino).toString('hex'), 2]]);
      expect(both.uid.size).toBe(0);
      // `vigil provenance show` (no exec, no uid): refused for the others, the uids that may run it named
      const shown = showMark(file, marks, 'enforce', [rule(5, { path: file, exec_uid: 1000 })]);
      expect(shown.verdict).toMatchObject({ exec: 'refused', uids: [{ uid: 1000, rule: 5 }] });
      expect(shown.verdict.reason).toMatch(/no allow rule matches every uid: refused .*; allowed for uid 1000 \(rule 5\) only$/);
      expect(showMark(file, marks, 'enforce', [rule(2, { exe: '/usr/bin/curl' }), rule(5, { path: file, exec_uid: 1000 })]).verdict).toEqual({ exec: 'allowed', reason: 'marked, allowed by rule 2 (vigil allow list)', rule: 2 });
    } finally {
      marks.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a store made before exec_uid and remote_host gets the columns when opened for writing; its rules keep their conditions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-allow-'));
    try {
      const file = join(dir, 'old.db');
      const old = new Database(file);
      old.exec(`CREATE TABLE provenance_allow (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, source TEXT NOT NULL,
        path TEXT, landing TEXT, exe TEXT, comm TEXT, uid INTEGER, remote TEXT, comment TEXT, created_ms INTEGER NOT NULL)`);
      old.prepare("INSERT INTO provenance_allow (state, source, exe, created_ms) VALUES ('active', 'manual', '/usr/bin/curl', 1)").run();
      old.close();
      const s = AllowStore.open(file);
      try {
        expect(s.list()).toMatchObject([{ id: 1, exe: '/usr/bin/curl', exec_uid: null, remote_host: null }]);
        const { rule } = s.add({ remote_host: '*.example.org', exec_uid: 1000 }, { state: 'active', source: 'manual' });
        expect(s.list().find((r) => r.id === rule.id)).toMatchObject({ remote_host: '*.example.org', exec_uid: 1000 });
      } finally {
        s.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
