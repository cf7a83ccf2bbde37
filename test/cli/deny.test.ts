/**
 * `vigil deny` without BPF (issue 9, items 7, 12, 13): what each command says
 * about enforcement, rules kept once, messages that name the right thing,
 * escaped output, the configured store. Loading the guard: deny.kernel.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { STACK, vigil } from './harness.js';
import { RulesStore } from '../../src/enforcement/rules-store.js';

let dir: string;
let db: string;
const rule = (path: string, comment: string | null = null) => ({ kind: 'path' as const, path, resolvedPath: path, sha256: null, mode: 'enforce' as const, comment });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-deny-'));
  db = join(dir, 'vigil.db');
});

describe('the rule store keeps a rule once', () => {
  it('addOrKeep: the same target again keeps one rule; a new mode or comment updates it', () => {
    const st = RulesStore.open(db);
    const a = st.addOrKeep(rule('/usr/bin/nc'));
    const b = st.addOrKeep(rule('/usr/bin/nc'));
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, changed: false, rule: { id: a.rule.id } });
    const c = st.addOrKeep({ ...rule('/usr/bin/nc', 'why'), mode: 'monitor' });
    expect(c).toMatchObject({ created: false, changed: true, rule: { id: a.rule.id, mode: 'monitor', comment: 'why' } });
    st.addOrKeep(rule('/usr/bin/ncat'));
    expect(st.list().map((r) => r.path)).toEqual(['/usr/bin/nc', '/usr/bin/ncat']);
    st.close();
  });
});

describe('vigil deny says whether rules are enforced here', () => {
  it('deny list and deny mode: a host where the guard could not load says so, and why', async () => {
    const st = RulesStore.open(db);
    st.add(rule('/usr/bin/nc'));
    st.setArmFailure({ reason: 'bpf_object__load(exec_guard.bpf.o [lsm/bprm_check_security]): EPERM', by: 'vigil deny add' });
    st.close();
    const list = await vigil(['deny', 'list', '--db', db]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/enforcement: rules are stored only, the exec guard cannot load on this host: .*EPERM \(when `vigil deny add` tried, /);
    expect(list.out).not.toMatch(/deny apply` .*arms it/);
    const json = JSON.parse((await vigil(['deny', 'list', '--db', db, '--json'])).out);
    expect(json.enforcement).toMatchObject({ state: 'cannot-load', reason: expect.stringContaining('EPERM') });
    const mode = await vigil(['deny', 'mode', '--db', db]);
    expect(mode.out).toBe('enforce\n');
    expect(mode.err).toMatch(/enforcement: rules are stored only, the exec guard cannot load on this host/);
  });

  it('a store where nothing failed: stored only, and how to arm', async () => {
    RulesStore.open(db).close();
    const list = await vigil(['deny', 'list', '--db', db]);
    expect(list.out).toMatch(/enforcement: rules are stored only, the exec guard is not armed \(`vigil deny apply` or `vigil run` arms it\)|cannot load on this host: bpf is not in the active LSM list/);
  });
});

describe('messages name the right thing', () => {
  it('deny mode bogus names the MODE argument, not a --mode flag', async () => {
    RulesStore.open(db).close();
    const r = await vigil(['deny', 'mode', 'bogus', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/value 'bogus' is invalid for argument 'mode'\. Allowed choices are enforce, monitor/);
    expect(r.err).not.toContain('--mode');
  });

  it('deny rm of a rule that does not exist: 1 (failed), one line', async () => {
    RulesStore.open(db).close();
    const r = await vigil(['deny', 'rm', '99', '--db', db]);
    expect(r.code).toBe(1);
    expect(r.err).toBe('vigil deny rm: ID: no rule 99; see vigil deny list [failed.not_found]\n');
  });

  it('an explicit --db that does not exist is an error for list and rm (not "no deny rules")', async () => {
    const missing = join(dir, 'missing.db');
    for (const cmd of [['list'], ['rm', '1'], ['mode']]) {
      const r = await vigil(['deny', ...cmd, '--db', missing]);
      expect(r.code, cmd.join(' ')).toBe(4);
      expect(r.err).toContain(`--db ${missing}: no rule store there`);
      expect(r.err).not.toMatch(STACK);
    }
    expect(existsSync(missing)).toBe(false);
  });

  it('--db on a file that is not a database, or a directory: 4, one line', async () => {
    writeFileSync(join(dir, 'notes'), 'hello\n');
    const a = await vigil(['deny', 'list', '--db', join(dir, 'notes')]);
    expect(a.code).toBe(4);
    expect(a.err).toMatch(/--db .*notes: not an SQLite database/);
    const b = await vigil(['deny', 'add', '/usr/bin/nc', '--db', dir]);
    expect(b.code).toBe(4);
    expect(b.err).toMatch(/--db .*: a directory/);
  });
});

describe('the configured store (item 12)', () => {
  it('deny list reads the db of $VIGIL_CONFIG (relative to the file), $VIGIL_DB over it', async () => {
    mkdirSync(join(dir, 'etc'));
    const st = RulesStore.open(join(dir, 'etc', 'rules.db'));
    st.add(rule('/usr/bin/from-config'));
    st.close();
    writeFileSync(join(dir, 'etc', 'vigil.yaml'), 'db: rules.db\n');
    const r = await vigil(['deny', 'list', '--json'], { VIGIL_CONFIG: join(dir, 'etc', 'vigil.yaml'), VIGIL_DB: undefined });
    expect(JSON.parse(r.out).rules.map((x: { path: string }) => x.path)).toEqual(['/usr/bin/from-config']);
    RulesStore.open(db).close();
    const e = await vigil(['deny', 'list', '--json'], { VIGIL_CONFIG: join(dir, 'etc', 'vigil.yaml'), VIGIL_DB: db });
    expect(JSON.parse(e.out).rules).toEqual([]);
  });
});

describe('terminal injection (item 13)', () => {
  it('deny list escapes control characters of paths and comments', async () => {
    const st = RulesStore.open(db);
    st.add(rule('/tmp/\x1b[2J\x1b]0;owned\x07', 'by \x1b[31mred\x1b[0m \u202eexe.txt'));
    st.close();
    const r = await vigil(['deny', 'list', '--db', db]);
    expect(r.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    expect(r.out).toContain('/tmp/\\x1b[2J\\x1b]0;owned\\x07  # by \\x1b[31mred\\x1b[0m \\u202eexe.txt');
  });
});

describe('--pin-dir outside bpffs is refused (disarm would empty it)', () => {
  it('vigil disarm --pin-dir on an ordinary directory: refused, its files untouched', async () => {
    const victim = join(dir, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'important.txt'), 'keep me\n');
    const r = await vigil(['disarm', '--pin-dir', victim]);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/--pin-dir .*victim: not on a bpf file system/);
    expect(readdirSync(victim)).toEqual(['important.txt']);
    const a = await vigil(['deny', 'apply', '--db', db, '--pin-dir', victim]);
    expect(a.code).toBe(4);
    expect(readdirSync(victim)).toEqual(['important.txt']);
  });
});

describe('vigil deny events, human output (item 13)', () => {
  it('escapes the image, the file and the comment of a decision', async () => {
    const { humanDecision } = await import('../../src/cli/commands/deny.js');
    const { decisionEvent } = await import('../../src/enforcement/decision.js');
    const task = { pid: 7, tgid: 7, ppid: 1, uid: 0, gid: 0, euid: 0, loginuid: 0, sessionid: 1, startNs: 5n, parentStartNs: 0n, cgroupId: 1n, comm: 'x\x1b[2J' };
    const ev = decisionEvent(
      { type: 'exec_decision', ktimeNs: 9n, task, ruleId: 4, fileIno: 1n, fileDev: 1, match: 1, action: 2, mode: 2, flags: 0, ancestors: [], path: Buffer.from('/tmp/\x1b]0;owned\x07') },
      { rules: new Map([[4, { id: 4, kind: 'path', path: '/tmp/x', resolvedPath: null, sha256: null, mode: 'enforce', comment: 'c\x1b[31m', createdMs: 0 }]]) },
    );
    const line = humanDecision(ev);
    expect(line).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(line).toMatch(/ exec_blocked rule 4 \(inode\) pid 7 \[x\\x1b\[2J\] -> \/tmp\/\\x1b\]0;owned\\x07 {2}# c\\x1b\[31m$/);
  });
});
