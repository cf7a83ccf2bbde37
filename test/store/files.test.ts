/**
 * Who can read the records (src/store/files.ts): the modes and the group of
 * the files and directories vigil creates, and what counts as too open.
 * (The whole run, under umask 000, with a real group: test/faults/agents.kernel.test.ts.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateFile, inspectRecordFiles, lookupGroup, makePrivateDir, setRecordGroup, tooOpen } from '../../src/store/files.js';

const dirs: string[] = [];
afterAll(() => {
  setRecordGroup(null);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'vigil-files-'));
  dirs.push(d);
  return d;
};
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('record files', () => {
  it('without a group: 0600 files in 0700 directories; with one: 0640 and 0750, the group set', () => {
    const d = scratch();
    setRecordGroup(null);
    expect(ensurePrivateFile(join(d, 'a', 'b', 'x.jsonl'))).toBe(true);
    expect([mode(join(d, 'a')), mode(join(d, 'a', 'b')), mode(join(d, 'a', 'b', 'x.jsonl'))]).toEqual(['700', '700', '600']);
    const gid = process.getgid!();
    setRecordGroup({ name: String(gid), gid });
    expect(ensurePrivateFile(join(d, 'c', 'y.db'))).toBe(true);
    expect([mode(join(d, 'c')), mode(join(d, 'c', 'y.db'))]).toEqual(['750', '640']);
    expect(statSync(join(d, 'c', 'y.db')).gid).toBe(gid);
    // an existing file keeps its mode
    expect(ensurePrivateFile(join(d, 'a', 'b', 'x.jsonl'))).toBe(false);
    expect(mode(join(d, 'a', 'b', 'x.jsonl'))).toBe('600');
    makePrivateDir(join(d, 'e', 'f'));
    expect([mode(join(d, 'e')), mode(join(d, 'e', 'f'))]).toEqual(['750', '750']);
    setRecordGroup(null);
  });

  it('too open: anything for others; for the group, reading only and only the configured group', () => {
    expect(tooOpen(0o600, 5, null)).toBe(false);
    expect(tooOpen(0o640, 5, null)).toBe(true);
    expect(tooOpen(0o640, 5, 5)).toBe(false);
    expect(tooOpen(0o640, 6, 5)).toBe(true);
    expect(tooOpen(0o660, 5, 5)).toBe(true);
    expect(tooOpen(0o644, 5, 5)).toBe(true);
    expect(tooOpen(0o604, 5, null)).toBe(true);
    const d = scratch();
    const f = join(d, 'log');
    writeFileSync(f, '');
    chmodSync(f, 0o640);
    const gid = statSync(f).gid;
    expect(inspectRecordFiles([f], gid).exposed).toEqual([]);
    expect(inspectRecordFiles([f], null).exposed).toEqual([{ path: f, mode: 0o640, gid }]);
  });

  it('a group by name, by number, or none', () => {
    expect(lookupGroup('root')).toBe(0);
    expect(lookupGroup('4242')).toBe(4242);
    expect(lookupGroup('no-such-group-vigil-test')).toBeNull();
  });
});
