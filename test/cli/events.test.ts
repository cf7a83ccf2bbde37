/**
 * `vigil events`: time bounds (issue 9, item 8) and the store it reads (item 12).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vigil } from './harness.js';
import { EventStore, toRow } from '../../src/store/store.js';

let dir: string;
let db: string;

function ev(pid: number, timestamp: string): Record<string, unknown> {
  return { category: 'process_creation', timestamp, ProcessId: pid, Image: `/bin/p${pid}`, CommandLine: `p${pid}` };
}

function makeStore(path: string, events: Record<string, unknown>[]): void {
  const st = EventStore.open(path);
  st.insertBatch(events.map((e) => toRow('event', e, JSON.stringify(e))));
  st.close();
}

const pids = (out: string) => out.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { ProcessId: number }).ProcessId).sort((a, b) => a - b);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-events-'));
  db = join(dir, 'vigil.db');
  const now = Date.now();
  makeStore(db, [
    // four records within one millisecond, microseconds apart
    ev(1, '2025-11-29T10:00:00.123100Z'),
    ev(2, '2025-11-29T10:00:00.123400Z'),
    ev(3, '2025-11-29T10:00:00.123600Z'),
    ev(4, '2025-11-29T10:00:00.123900Z'),
    ev(5, '2025-11-29T10:00:01.000000Z'),
    // recent ones
    ev(10, new Date(now - 3 * 60_000).toISOString()),
    ev(11, new Date(now - 30_000).toISOString()),
  ]);
});

describe('vigil events --since/--until (item 8)', () => {
  it.each(['5', '0', '2001-05-01', 'yesterday', '10 minutes', '1y', '', '2026-02-30T00:00:00Z', '2026-11-29T25:00:00Z', '1.5h', '-5m'])(
    'refuses %j as a usage error naming the option',
    async (v) => {
      const r = await vigil(['events', '--db', db, '--since', v, '--json']);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/--since: not a time: .* \(use a duration ago \(30s, 5m, 1h, 2d\) or an RFC 3339 time/);
    },
  );

  it('takes durations ago: 1m, 5m, 2d', async () => {
    expect(pids((await vigil(['events', '--db', db, '--since', '1m', '--json'])).out)).toEqual([11]);
    expect(pids((await vigil(['events', '--db', db, '--since', '5m', '--json'])).out)).toEqual([10, 11]);
    expect(pids((await vigil(['events', '--db', db, '--since', '2d', '--until', '60s', '--json'])).out)).toEqual([10]);
  });

  it('bounds are exact to the record\'s own timestamp, below the millisecond', async () => {
    const q = async (...a: string[]) => pids((await vigil(['events', '--db', db, '--json', ...a])).out);
    expect(await q('--until', '2025-11-29T10:00:00.1235Z')).toEqual([1, 2]);
    expect(await q('--since', '2025-11-29T10:00:00.1235Z', '--until', '2025-11-29T10:00:00.999Z')).toEqual([3, 4]);
    expect(await q('--since', '2025-11-29T10:00:00.123400Z', '--until', '2025-11-29T10:00:00.123600Z')).toEqual([2, 3]);
    expect(await q('--since', '2025-11-29T10:00:00.123400001Z', '--until', '2025-11-29T10:00:00.123599999Z')).toEqual([]);
    // another offset, the same instants
    expect(await q('--since', '2025-11-29T11:00:00.1235+01:00', '--until', '2025-11-29T11:00:00.999+01:00')).toEqual([3, 4]);
    // with a limit, newest first: the limit counts records inside the bounds only
    expect(await q('--since', '2025-11-29T10:00:00.1232Z', '--until', '2025-11-29T10:00:00.1237Z', '-n', '1')).toEqual([3]);
    expect(await q('--since', '2025-11-29T10:00:00.1232Z', '--until', '2025-11-29T10:00:00.1237Z', '-n', '1', '--reverse')).toEqual([2]);
  });
});

describe('the store vigil events reads (item 12)', () => {
  it('the config file\'s db (relative to the file), $VIGIL_DB over it, --db over both', async () => {
    const cdir = join(dir, 'etc');
    mkdirSync(cdir);
    makeStore(join(cdir, 'other.db'), [ev(42, '2025-11-29T12:00:00.000000Z')]);
    writeFileSync(join(cdir, 'vigil.yaml'), 'db: other.db\n');
    const env = { VIGIL_CONFIG: join(cdir, 'vigil.yaml'), VIGIL_DB: undefined };
    expect(pids((await vigil(['events', '--json'], env)).out)).toEqual([42]);
    expect(pids((await vigil(['events', '-c', join(cdir, 'vigil.yaml'), '--json'], { VIGIL_DB: undefined })).out)).toEqual([42]);
    expect(pids((await vigil(['events', '--json', '--since', '1h'], { ...env, VIGIL_DB: db })).out)).toEqual([10, 11]);
    expect(pids((await vigil(['events', '--json', '--db', db, '--since', '1h'], { ...env, VIGIL_DB: join(cdir, 'other.db') })).out)).toEqual([10, 11]);
  });

  it('a named config file that does not exist is an error, also from $VIGIL_CONFIG', async () => {
    const r = await vigil(['events'], { VIGIL_CONFIG: join(dir, 'nope.yaml') });
    expect(r.code).toBe(4);
    expect(r.err).toContain(`${join(dir, 'nope.yaml')}: cannot read the config file: no such file [config.not_found]`);
  });
});

describe('human output', () => {
  it('escapes control characters from the record', async () => {
    const p = join(dir, 'esc.db');
    makeStore(p, [{ ...ev(7, '2025-11-29T12:00:00.000001Z'), Image: '/tmp/\x1b[2J', CommandLine: 'echo \x1b]0;owned\x07 \u202ecod.exe' }]);
    const r = await vigil(['events', '--db', p]);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
    expect(r.out).toContain('2025-11-29T12:00:00.000001Z process_creation pid=7 /tmp/\\x1b[2J echo \\x1b]0;owned\\x07 \\u202ecod.exe');
  });
});
