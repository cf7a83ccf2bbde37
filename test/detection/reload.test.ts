/**
 * The live rule set equals what is on disk, for every way a rule file is written,
 * replaced, moved or deleted, and for symlinked rule directories and files (issue 9,
 * item 4). Every case runs the real tools (sed -i, mv, vim, git, ln) on tmpfs and then
 * checks the active rule set and what fires, and that it stays that way.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDetector, RuleSet, treeStamp, walkRules, type Detector } from '../../src/detection/index.js';
import { buildDetection } from './build.js';

const TMP = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';

let workerPath = '';
let built = '';
beforeAll(() => {
  // the store's worker thread runs compiled JavaScript
  built = buildDetection();
  workerPath = join(built, 'detection/rule-worker.js');
}, 180_000);
afterAll(() => {
  if (built) rmSync(built, { recursive: true, force: true });
});

/** A rule that fires on an Image ending in `/<marker>`. */
const rule = (id: string, marker: string): string => `title: rule ${id}
id: ${id}
level: high
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '/${marker}'
    condition: selection
`;

const ev = (marker: string): Record<string, unknown> => ({ category: 'process_creation', timestamp: '2026-11-02T10:00:00Z', Image: `/usr/bin/${marker}` });

let det: Detector | undefined;
afterEach(() => {
  det?.close();
  det = undefined;
});

/** scans in the worker thread, or in this thread */
let threaded = true;
function start(dirs: string[], rescanMs?: number): Detector {
  det = createDetector({ ruleDirs: dirs, watch: true, debounceMs: 30, worker: threaded, workerPath, ...(rescanMs !== undefined ? { rescanMs } : {}) });
  expect(det.store.threaded).toBe(threaded);
  return det;
}

/** id → marker of the active rules, sorted by id. */
function live(d: Detector): string[] {
  return d.ruleSet.rules.filter((r) => r.active).map((r) => `${r.id}=${r.title}`).sort();
}

/** What a fresh load of the same paths gives. */
function disk(dirs: string[]): string[] {
  const rs = RuleSet.fromPaths(dirs);
  return rs.rules.filter((r) => r.active).map((r) => `${r.id}=${r.title}`).sort();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Wait until the live rule set equals `want` (and what is on disk), then check it still
 * does a while later (a late reload must not lose anything).
 */
// up to 10 s: a reload scans in a worker thread, which waits its turn on a busy machine
async function settle(d: Detector, dirs: string[], want: string[], ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms && JSON.stringify(live(d)) !== JSON.stringify(want)) await sleep(20);
  expect(live(d)).toEqual(want);
  expect(disk(dirs)).toEqual(want);
  await sleep(300);
  expect(live(d)).toEqual(want);
}

/** Point a symlink elsewhere atomically, as releases switch it: a new link renamed over the old one. */
function switchLink(link: string, to: string): void {
  symlinkSync(to, `${link}.tmp`);
  execFileSync('mv', ['-T', `${link}.tmp`, link]);
}

/** Every store test runs with scans in the worker thread and in this thread. */
const MODES = [
  ['scans in a worker thread', true],
  ['scans in the main thread', false],
] as const;

const fires = (d: Detector, marker: string): string[] => d.evaluate(ev(marker)).map((a) => a.rule_id).sort();

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
function tmp(name: string): string {
  const d = mkdtempSync(join(TMP, `vigil-reload-${name}-`));
  made.push(d);
  return d;
}

describe.each(MODES)('rule store (%s): the live rule set equals the disk', (_name, mode) => {
  beforeAll(() => {
    threaded = mode;
  });

  it('in-place writes, then sed -i (rename over), then later edits and the deletion', async () => {
    const dir = tmp('sed');
    const f = join(dir, 'a.yml');
    writeFileSync(f, rule('a', 'one'));
    const d = start([dir]);
    expect(fires(d, 'one')).toEqual(['a']);

    writeFileSync(f, rule('a', 'two'));
    await settle(d, [dir], ['a=rule a']);
    await waitFires(d, 'two', ['a']);
    expect(fires(d, 'one')).toEqual([]);

    execFileSync('sed', ['-i', 's/two/three/', f]);
    await waitFires(d, 'three', ['a']);
    expect(fires(d, 'two')).toEqual([]);

    // the issue: after a rename over the file, later edits were ignored
    writeFileSync(f, rule('a', 'four'));
    await waitFires(d, 'four', ['a']);
    execFileSync('sed', ['-i', 's/four/five/', f]);
    await waitFires(d, 'five', ['a']);

    // ... and so was its deletion: the old rule kept firing
    rmSync(f);
    await settle(d, [dir], []);
    expect(fires(d, 'five')).toEqual([]);
  });

  it('mv over an existing file, mv in from outside, mv out, rename within, rename to a non-rule name', async () => {
    const dir = tmp('mv');
    const outside = tmp('mv-out');
    writeFileSync(join(dir, 'a.yml'), rule('a', 'one'));
    const d = start([dir]);

    writeFileSync(join(outside, 'new.yml'), rule('a', 'two'));
    execFileSync('mv', [join(outside, 'new.yml'), join(dir, 'a.yml')]);
    await waitFires(d, 'two', ['a']);
    expect(fires(d, 'one')).toEqual([]);

    writeFileSync(join(outside, 'b.yml'), rule('b', 'bee'));
    execFileSync('mv', [join(outside, 'b.yml'), join(dir, 'b.yml')]);
    await settle(d, [dir], ['a=rule a', 'b=rule b']);
    expect(fires(d, 'bee')).toEqual(['b']);

    execFileSync('mv', [join(dir, 'b.yml'), join(outside, 'b.yml')]);
    await settle(d, [dir], ['a=rule a']);
    expect(fires(d, 'bee')).toEqual([]);

    execFileSync('mv', [join(dir, 'a.yml'), join(dir, 'renamed.yaml')]);
    await settle(d, [dir], ['a=rule a']);
    writeFileSync(join(dir, 'renamed.yaml'), rule('a', 'three'));
    await waitFires(d, 'three', ['a']);

    execFileSync('mv', [join(dir, 'renamed.yaml'), join(dir, 'renamed.yaml.disabled')]);
    await settle(d, [dir], []);
    expect(fires(d, 'three')).toEqual([]);
  });

  it("an editor's atomic save (write a temporary file, fsync, rename over)", async () => {
    const dir = tmp('atomic');
    const f = join(dir, 'a.yml');
    writeFileSync(f, rule('a', 'one'));
    const d = start([dir]);
    for (const [i, m] of ['two', 'three', 'four'].entries()) {
      const t = join(dir, `.a.yml.${i}.tmp`);
      writeFileSync(t, rule('a', m));
      renameSync(t, f);
      await waitFires(d, m, ['a']);
    }
    expect(fires(d, 'one')).toEqual([]);
    rmSync(f);
    await settle(d, [dir], []);
  });

  it("vim's backup-rename dance (backupcopy=no, writebackup), real vim", async () => {
    const dir = tmp('vim');
    const f = join(dir, 'a.yml');
    writeFileSync(f, rule('a', 'one'));
    const d = start([dir]);
    for (const [from, to] of [['one', 'two'], ['two', 'three']]) {
      execFileSync('vim', ['-u', 'NONE', '-N', '-n', '-es', '-c', 'set backupcopy=no writebackup backup', '-c', `%s/${from}/${to}/`, '-c', 'wq', f], { stdio: 'ignore', timeout: 10_000 });
      expect(readFileSync(f, 'utf8')).toContain(`/${to}'`);
      await waitFires(d, to, ['a']);
    }
    // vim left a.yml~ (not a rule file): the set is a alone
    expect(existsSync(f + '~')).toBe(true);
    await settle(d, [dir], ['a=rule a']);
    rmSync(f);
    await settle(d, [dir], []);
  });

  it('git checkout between branches adds, replaces and removes files', async () => {
    const dir = tmp('git');
    const git = (...a: string[]): void => {
      execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { stdio: 'ignore' });
    };
    git('init', '-q', '-b', 'main');
    writeFileSync(join(dir, 'a.yml'), rule('a', 'one'));
    writeFileSync(join(dir, 'b.yml'), rule('b', 'bee'));
    git('add', '.');
    git('commit', '-q', '-m', 'one');
    git('checkout', '-q', '-b', 'two');
    writeFileSync(join(dir, 'a.yml'), rule('a', 'two'));
    rmSync(join(dir, 'b.yml'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'c.yml'), rule('c', 'see'));
    git('add', '-A');
    git('commit', '-q', '-m', 'two');
    git('checkout', '-q', 'main');

    const d = start([dir]);
    await settle(d, [dir], ['a=rule a', 'b=rule b']);
    expect(fires(d, 'one')).toEqual(['a']);

    git('checkout', '-q', 'two');
    await settle(d, [dir], ['a=rule a', 'c=rule c']);
    await waitFires(d, 'two', ['a']);
    expect(fires(d, 'bee')).toEqual([]);
    expect(fires(d, 'see')).toEqual(['c']);

    git('checkout', '-q', 'main');
    await settle(d, [dir], ['a=rule a', 'b=rule b']);
    await waitFires(d, 'one', ['a']);
    expect(fires(d, 'see')).toEqual([]);

    // edits after the checkouts still apply
    writeFileSync(join(dir, 'a.yml'), rule('a', 'three'));
    await waitFires(d, 'three', ['a']);
  });

  it('directories moved in and out, and a removed subtree', async () => {
    const dir = tmp('dirs');
    const outside = tmp('dirs-out');
    const d = start([dir]);
    mkdirSync(join(outside, 'pack', 'deep'), { recursive: true });
    writeFileSync(join(outside, 'pack', 'x.yml'), rule('x', 'ex'));
    writeFileSync(join(outside, 'pack', 'deep', 'y.yml'), rule('y', 'why'));
    execFileSync('mv', [join(outside, 'pack'), join(dir, 'pack')]);
    await settle(d, [dir], ['x=rule x', 'y=rule y']);

    // a file written later deep inside the moved-in tree
    writeFileSync(join(dir, 'pack', 'deep', 'z.yml'), rule('z', 'zed'));
    await settle(d, [dir], ['x=rule x', 'y=rule y', 'z=rule z']);

    execFileSync('mv', [join(dir, 'pack', 'deep'), join(outside, 'deep')]);
    await settle(d, [dir], ['x=rule x']);
    // edits in the moved-out tree are not ours any more
    writeFileSync(join(outside, 'deep', 'w.yml'), rule('w', 'dub'));
    await sleep(200);
    expect(live(d)).toEqual(['x=rule x']);

    rmSync(join(dir, 'pack'), { recursive: true });
    await settle(d, [dir], []);
    expect(fires(d, 'ex')).toEqual([]);
  });

  it('the rules directory itself replaced (mv over, rm -rf and re-created)', async () => {
    const base = tmp('root');
    const dir = join(base, 'rules');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yml'), rule('a', 'one'));
    const d = start([dir]);
    expect(fires(d, 'one')).toEqual(['a']);

    const next = join(base, 'rules.new');
    mkdirSync(next);
    writeFileSync(join(next, 'b.yml'), rule('b', 'bee'));
    execFileSync('mv', ['-T', join(base, 'rules'), join(base, 'rules.old')]);
    execFileSync('mv', ['-T', next, dir]);
    await settle(d, [dir], ['b=rule b']);
    // the old directory, now elsewhere, is no longer watched; the new one is
    writeFileSync(join(base, 'rules.old', 'a.yml'), rule('a', 'old-edit'));
    writeFileSync(join(dir, 'c.yml'), rule('c', 'see'));
    await settle(d, [dir], ['b=rule b', 'c=rule c']);

    rmSync(dir, { recursive: true });
    await settle(d, [dir], []);
    mkdirSync(dir);
    writeFileSync(join(dir, 'd.yml'), rule('d', 'dee'));
    await settle(d, [dir], ['d=rule d']);
    expect(fires(d, 'dee')).toEqual(['d']);
  });

  it('a symlinked rules directory: edits in the target, and the link switched atomically', async () => {
    const base = tmp('symdir');
    mkdirSync(join(base, 'v1'));
    mkdirSync(join(base, 'v2'));
    writeFileSync(join(base, 'v1', 'a.yml'), rule('a', 'one'));
    writeFileSync(join(base, 'v2', 'b.yml'), rule('b', 'bee'));
    const link = join(base, 'current');
    symlinkSync('v1', link);
    const d = start([link]);
    expect(live(d)).toEqual(['a=rule a']);

    writeFileSync(join(base, 'v1', 'a.yml'), rule('a', 'two'));
    await waitFires(d, 'two', ['a']);
    execFileSync('sed', ['-i', 's/two/three/', join(base, 'v1', 'a.yml')]);
    await waitFires(d, 'three', ['a']);

    // the usual release switch: a new link renamed over the old one
    switchLink(link, 'v2');
    await settle(d, [link], ['b=rule b']);
    // v1 is not the rule set any more; v2 is
    writeFileSync(join(base, 'v1', 'c.yml'), rule('c', 'see'));
    writeFileSync(join(base, 'v2', 'b.yml'), rule('b', 'bee2'));
    await waitFires(d, 'bee2', ['b']);
    expect(live(d)).toEqual(['b=rule b']);
    expect(fires(d, 'see')).toEqual([]);

    // link removed: no rules; link back: rules again
    unlinkSync(link);
    await settle(d, [link], []);
    symlinkSync('v1', link);
    await settle(d, [link], ['a=rule a', 'c=rule c']);
  });

  it('a symlinked rule file: edits of its target, retargeting, a dangling link', async () => {
    const dir = tmp('symfile');
    const elsewhere = tmp('symfile-target');
    writeFileSync(join(elsewhere, 't1.yml'), rule('t', 'one'));
    writeFileSync(join(elsewhere, 't2.yml'), rule('t', 'two'));
    symlinkSync(join(elsewhere, 't1.yml'), join(dir, 't.yml'));
    const d = start([dir]);
    expect(fires(d, 'one')).toEqual(['t']);

    writeFileSync(join(elsewhere, 't1.yml'), rule('t', 'edited'));
    await waitFires(d, 'edited', ['t']);
    execFileSync('sed', ['-i', 's/edited/sedded/', join(elsewhere, 't1.yml')]);
    await waitFires(d, 'sedded', ['t']);

    execFileSync('ln', ['-sfn', join(elsewhere, 't2.yml'), join(dir, 't.yml')]);
    await waitFires(d, 'two', ['t']);
    expect(fires(d, 'sedded')).toEqual([]);

    rmSync(join(elsewhere, 't2.yml'));
    await settle(d, [dir], []);
    expect(fires(d, 'two')).toEqual([]);
  });

  it('a burst of 200 replacements ends on the last version', async () => {
    const dir = tmp('burst');
    const f = join(dir, 'a.yml');
    writeFileSync(f, rule('a', 'v0'));
    const d = start([dir]);
    for (let i = 1; i <= 200; i++) {
      const t = join(dir, `.tmp${i}`);
      writeFileSync(t, rule('a', `v${i}`));
      renameSync(t, f);
      if (i % 50 === 0) await sleep(5);
    }
    await waitFires(d, 'v200', ['a']);
    await sleep(300);
    expect(fires(d, 'v200')).toEqual(['a']);
    expect(fires(d, 'v199')).toEqual([]);
  });
});

async function waitFires(d: Detector, marker: string, want: string[], ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms && JSON.stringify(fires(d, marker)) !== JSON.stringify(want)) await sleep(20);
  expect(fires(d, marker), `rules firing on /usr/bin/${marker}`).toEqual(want);
}

describe.each(MODES)('rule store (%s): the periodic check', (_name, mode) => {
  beforeAll(() => {
    threaded = mode;
  });

  it('an unchanged tree is not scanned again (before, every check read and hashed every file, in a fresh worker thread)', async () => {
    const dir = tmp('quiet');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'a.yml'), rule('a', 'one'));
    writeFileSync(join(dir, 'sub', 'b.yml'), rule('b', 'bee'));
    const d = start([dir], 40);
    // the first load, the scan watch() starts with, and at most one more that settles the stamp
    await sleep(400);
    const n = d.store.scans;
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(3);
    await sleep(800); // ~20 checks
    expect(d.store.scans).toBe(n);
    // a change is still seen (inotify, or the next check)
    writeFileSync(join(dir, 'sub', 'b.yml'), rule('b', 'bee2'));
    await waitFires(d, 'bee2', ['b']);
    expect(d.store.scans).toBeGreaterThan(n);
  });

  it('a root re-pointed through an intermediate symlink (no watched directory changes) is found by the check, and only by it', async () => {
    const base = tmp('midlink');
    for (const [v, id, m] of [['A', 'a', 'one'], ['B', 'b', 'bee']] as const) {
      mkdirSync(join(base, v, 'rules'), { recursive: true });
      writeFileSync(join(base, v, 'rules', `${id}.yml`), rule(id, m));
    }
    const link = join(base, 'current');
    symlinkSync('A', link);
    const root = join(link, 'rules');
    // without the check (rescanMs 0) the switch goes unseen: what the check is for
    const off = start([root], 0);
    await sleep(300);
    switchLink(link, 'B');
    await sleep(1000);
    expect(live(off)).toEqual(['a=rule a']);
    off.close();
    det = undefined;
    switchLink(link, 'A');
    const d = start([root], 100);
    expect(live(d)).toEqual(['a=rule a']);
    await sleep(300);
    switchLink(link, 'B');
    await settle(d, [root], ['b=rule b']);
  });
});

describe('treeStamp', () => {
  it('changes with a same-size rewrite whose mtime is set back, a new file, a replaced file and a re-pointed root; not otherwise', async () => {
    const base = tmp('stamp');
    mkdirSync(join(base, 'v1'));
    mkdirSync(join(base, 'v2'));
    const f = join(base, 'v1', 'a.yml');
    writeFileSync(f, rule('a', 'one'));
    writeFileSync(join(base, 'v2', 'a.yml'), rule('a', 'two'));
    const link = join(base, 'cur');
    symlinkSync('v1', link);
    const stampOf = async (): Promise<string> => {
      const w = walkRules([link]);
      return treeStamp([link], w.watch, w.files);
    };
    const s0 = await stampOf();
    expect(await stampOf()).toBe(s0);
    // the files as an iterator (the store passes its Map's keys): the same stamp, names included
    const w0 = walkRules([link]);
    expect(await treeStamp([link], w0.watch, new Map(w0.files.map((x) => [x, 0])).keys())).toBe(s0);
    expect(s0).toContain(`${join(link, 'a.yml')}\0`);

    // same size, mtime restored exactly (touch -r, as cp -p and tar do): the change time still moves
    const before = statSync(f);
    const ref = join(base, 'ref');
    writeFileSync(ref, '');
    execFileSync('touch', ['-r', f, ref]);
    await sleep(20);
    writeFileSync(f, rule('a', 'owe'));
    execFileSync('touch', ['-r', ref, f]);
    expect(statSync(f).size).toBe(before.size);
    expect(statSync(f).mtimeMs).toBe(before.mtimeMs);
    const s1 = await stampOf();
    expect(s1).not.toBe(s0);

    writeFileSync(join(base, 'v1', 'b.yml'), rule('b', 'bee'));
    const s2 = await stampOf();
    expect(s2).not.toBe(s1);

    writeFileSync(join(base, 'v1', '.a.tmp'), rule('a', 'one'));
    renameSync(join(base, 'v1', '.a.tmp'), f);
    const s3 = await stampOf();
    expect(s3).not.toBe(s2);

    // the same paths, the root now elsewhere: stamped with the lists of before
    const w = walkRules([link]);
    const s4 = await treeStamp([link], w.watch, w.files);
    switchLink(link, 'v2');
    expect(await treeStamp([link], w.watch, w.files)).not.toBe(s4);

    // a path that is gone stamps as gone, not as an error
    expect(await treeStamp([join(base, 'nope')], [], [join(base, 'nope.yml')])).toContain('-ENOENT');
  });
});
