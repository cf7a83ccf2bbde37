import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessTable } from '../../src/process/process-table.js';

const info = (pid: number, ppid: number, image: string) => ({ pid, ppid, startNs: BigInt(pid) * 1000n, image, commandLine: `${image} --x`, cwd: '/', uid: 0 });

describe('process table', () => {
  it('gives ancestors parent first', () => {
    const t = new ProcessTable();
    t.exec(info(1, 0, '/sbin/init'));
    t.exec(info(100, 1, '/usr/sbin/sshd'));
    t.exec(info(200, 100, '/bin/bash'));
    t.exec(info(300, 200, '/usr/bin/curl'));
    expect(t.ancestors(300).map((a) => a.Image)).toEqual(['/bin/bash', '/usr/sbin/sshd', '/sbin/init']);
  });

  it('fork copies the parent image until exec', () => {
    const t = new ProcessTable();
    t.exec(info(200, 1, '/bin/bash'));
    t.fork(201, 200, 5n, 0);
    expect(t.get(201)?.image).toBe('/bin/bash');
    t.exec(info(201, 200, '/bin/ls'));
    expect(t.get(201)?.image).toBe('/bin/ls');
  });

  it('stops at loops and at maxDepth', () => {
    const t = new ProcessTable({ maxDepth: 3 });
    t.exec(info(2, 3, 'a'));
    t.exec(info(3, 2, 'b'));
    expect(t.ancestors(2).map((a) => a.ProcessId)).toEqual([3]);
    for (let i = 10; i < 20; i++) t.exec(info(i, i - 1, `p${i}`));
    expect(t.ancestors(19)).toHaveLength(3);
  });

  it('reports an unknown parent by pid only', () => {
    const t = new ProcessTable();
    t.exec(info(50, 49, 'x'));
    expect(t.ancestors(50)).toEqual([{ ProcessId: 49, Image: '', CommandLine: '' }]);
  });

  it('is bounded: evicts the oldest beyond maxEntries and counts it', () => {
    const t = new ProcessTable({ maxEntries: 100 });
    for (let i = 1; i <= 250; i++) t.exec(info(i, 0, 'x'));
    expect(t.size).toBe(100);
    expect(t.stats().evicted).toBe(150);
    expect(t.get(1)).toBeUndefined();
    expect(t.get(250)).toBeDefined();
  });

  it('keeps exited processes for late children, then forgets them', () => {
    const t = new ProcessTable({ maxExited: 2 });
    t.exec(info(10, 1, 'parent'));
    t.exec(info(11, 10, 'child'));
    t.exit(10, 10_000n);
    expect(t.ancestors(11)[0]?.Image).toBe('parent');
    t.exec(info(20, 1, 'a'));
    t.exec(info(21, 1, 'b'));
    t.exit(20, 20_000n);
    t.exit(21, 21_000n);
    expect(t.get(10)).toBeUndefined();
    expect(t.stats().exited).toBe(2);
  });

  it('ignores an exit for a reused pid with another start time', () => {
    const t = new ProcessTable();
    t.exec(info(10, 1, 'new'));
    t.exit(10, 999n);
    expect(t.get(10)?.exited).toBe(false);
  });

  it('seeds from a /proc tree, skipping kernel threads and junk', () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-proc-'));
    const mk = (pid: number, ppid: number, comm: string, cmdline: string, exe?: string) => {
      const d = join(root, String(pid));
      mkdirSync(d);
      writeFileSync(join(d, 'stat'), `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${pid * 100} 0 0`);
      writeFileSync(join(d, 'cmdline'), cmdline);
      writeFileSync(join(d, 'status'), `Name:\t${comm}\nUid:\t1000\t1000\t1000\t1000\n`);
      if (exe) symlinkSync(exe, join(d, 'exe'));
      symlinkSync('/home', join(d, 'cwd'));
    };
    mk(1, 0, 'init', '/sbin/init\0splash\0', '/usr/lib/systemd/systemd');
    mk(2, 0, 'kthreadd', '');
    mk(77, 1, 'we ird) (name', 'bash\0-l\0', '/usr/bin/bash');
    mkdirSync(join(root, 'self'));
    const t = new ProcessTable();
    expect(t.seedFromProc(root)).toBe(2);
    expect(t.get(77)).toMatchObject({ ppid: 1, image: '/usr/bin/bash', commandLine: 'bash -l', uid: 1000, cwd: '/home', startNs: 77_000_000_000n });
    expect(t.get(1)?.commandLine).toBe('/sbin/init splash');
    expect(t.get(2)).toBeUndefined();
    expect(t.ancestors(77)[0]?.Image).toBe('/usr/lib/systemd/systemd');
  });
});
