/**
 * The store keeps each process once: events written through the agent's emit
 * path (the exec builder's own JSON and store split, and the generic split for
 * other events) come back from `vigil events`' query exactly as emitted, with
 * the whole lineage rebuilt; the process fields live in one row per process.
 */
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import type { TaskIds } from '../../src/events/records.js';
import type { ExecRecord, ProcessRecord } from '../../src/sensors/exec/decode.js';
import { ProcessEventBuilder } from '../../src/sensors/exec/events.js';
import { sensorNames } from '../../src/sensors/index.js';
import { JsonlSink } from '../../src/sinks/jsonl.js';
import { SqliteSink } from '../../src/sinks/sqlite.js';
import { EventStore, argvDerivable, packBatch, unpackBatch, type ProcessRow, type StoreRow } from '../../src/store/store.js';

const ALL_OFF = Object.fromEntries(sensorNames().map((n) => [n, { enabled: false }]));
const LONG = `/bin/bash --rcfile /etc/profile.d/very/long/path/to/an/rc/file.sh -i ${'x'.repeat(200)}`;

function task(pid: number, ppid: number, comm: string, uid = 0): TaskIds {
  return { pid, tgid: pid, ppid, uid, gid: 0, euid: uid, loginuid: 1000, sessionid: 3, startNs: BigInt(pid) * 1_000_000_000n, parentStartNs: BigInt(ppid) * 1_000_000_000n, cgroupId: 77n, comm };
}

let t = 1_000_000_000_000n;
function exec(pid: number, ppid: number, exe: string, argv: string[], cwd = '/home/u'): ExecRecord {
  return { type: 'exec', ktimeNs: (t += 1000n), task: task(pid, ppid, exe.split('/').pop()!.slice(0, 15)), flags: 0, argc: argv.length, exeDev: 0x800001, exeIno: 4242n, exe: Buffer.from(exe), cwd: Buffer.from(cwd), args: Buffer.from(argv.map((a) => `${a}\0`).join('')) };
}
const fork = (pid: number, ppid: number): ProcessRecord => ({ type: 'fork', ktimeNs: (t += 1000n), task: task(pid, ppid, 'bash') });
const exit = (pid: number, ppid: number, code = 0): ProcessRecord => ({ type: 'exit', ktimeNs: (t += 1000n), task: task(pid, ppid, 'x'), exitCode: code << 8 });

interface Run {
  dir: string;
  agent: Agent;
  jsonl: string;
  db: string;
  sqlite: SqliteSink;
}

const runs: Agent[] = [];
afterEach(async () => {
  for (const a of runs.splice(0)) await a.stop();
});

/** Process records through the exec builder into JSONL and SQLite, as the agent does. */
async function run(
  bounds: { maxDepth: number; maxCommandLine: number },
  records: ProcessRecord[],
  extra: Array<Record<string, unknown>> = [],
  opts: { maxExited?: number } = {},
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-store-'));
  const jsonl = join(dir, 'events.jsonl');
  const db = join(dir, 'vigil.db');
  const sqlite = new SqliteSink({ path: db, batchMs: 5, ...(opts.maxExited !== undefined ? { tableMaxExited: opts.maxExited } : {}) });
  const agent = new Agent({
    sinks: [new JsonlSink({ path: jsonl }), sqlite],
    sensors: ALL_OFF,
    ancestors: bounds,
    ...(opts.maxExited !== undefined ? { processTable: { maxExited: opts.maxExited } } : {}),
  });
  agent.table.seed([
    { pid: 1, ppid: 0, startNs: 1_000_000_000n, image: '/sbin/init', commandLine: '/sbin/init splash', cwd: '/', uid: 0 },
    { pid: 100, ppid: 1, startNs: 100_000_000_000n, image: '/usr/sbin/sshd', commandLine: 'sshd: u [priv]', cwd: '/', uid: 0 },
    { pid: 200, ppid: 100, startNs: 200_000_000_000n, image: '/usr/bin/bash', commandLine: LONG, cwd: '/home/u', uid: 1000 },
  ]);
  const b = new ProcessEventBuilder(agent.process);
  for (const r of records) {
    const ev = b.handle(r);
    if (ev) agent.emit(ev as unknown as Record<string, unknown>, b.lastProcess, { json: b.lastJson, stored: b.lastStored });
  }
  // an event of another sensor: the agent finds its process and the generic split applies
  for (const e of extra) agent.emit(e);
  await agent.stop();
  return { dir, agent, jsonl, db, sqlite };
}

const WORKLOAD: ProcessRecord[] = [
  fork(300, 200),
  exec(300, 200, '/usr/bin/curl', ['curl', '-s', 'https://example.org/x?a=1&b="2"']),
  exit(300, 200),
  fork(301, 200),
  exec(301, 200, '/bin/echo', ['echo', 'a b', '', 'ünïcødé \u2028 \\ "q"']),
  exit(301, 200, 3),
  fork(302, 200),
  exit(302, 200), // forked, never exec'd
  exec(400, 350, '/usr/bin/orphan', ['orphan']), // parent unknown to the table
  exit(400, 350),
  exit(999, 1), // never seen
];

const lines = (p: string) => readFileSync(p, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

function stored(db: string, q: Parameters<EventStore['query']>[0] = {}) {
  const st = EventStore.open(db, { readonly: true });
  try {
    return st.query({ limit: 1000, order: 'asc', ...q }).map((r) => JSON.parse(r.json) as Record<string, unknown>);
  } finally {
    st.close();
  }
}

describe('store: each process once', () => {
  it('gives back every event exactly as emitted (bounds wide enough that JSONL carries the whole lineage)', async () => {
    const file = { category: 'file_event', timestamp: '2026-11-29T10:00:00.000001Z', Hostname: 'h', ProcessId: 200, ProcessGuid: '', Image: '/usr/bin/bash', User: 'u', TargetFilename: '/tmp/x', vigil: { schema: 1, operation: 'create' } };
    const r = await run({ maxDepth: 16, maxCommandLine: 100_000 }, WORKLOAD, []);
    const emitted = lines(r.jsonl);
    expect(emitted.filter((e) => e.category === 'process_creation')).toHaveLength(3);
    expect(emitted.filter((e) => e.category === 'process_termination')).toHaveLength(5);
    expect(stored(r.db)).toEqual(emitted);
    // a generic event (no builder split) about a known process
    file.ProcessGuid = r.agent.process.procGuid(r.agent.table.get(200)!);
    const r2 = await run({ maxDepth: 16, maxCommandLine: 100_000 }, WORKLOAD, [file]);
    const e2 = lines(r2.jsonl);
    expect(stored(r2.db)).toEqual(e2);
    expect(e2.at(-1)).toEqual(file);
    const raw = new Database(r2.db, { readonly: true });
    const row = raw.prepare("SELECT json, pmask FROM records WHERE category = 'file_event'").get() as { json: string; pmask: number };
    raw.close();
    expect(JSON.parse(row.json)).not.toHaveProperty('Image');
    expect(JSON.parse(row.json)).not.toHaveProperty('ProcessGuid');
    expect(row.pmask).toBeGreaterThan(0);
  });

  it('with bounded JSONL ancestors, the store still has the whole lineage (cuts flagged in JSONL only)', async () => {
    const r = await run({ maxDepth: 1, maxCommandLine: 20 }, WORKLOAD);
    const emitted = lines(r.jsonl);
    const back = stored(r.db);
    expect(back).toHaveLength(emitted.length);
    const curl = emitted.find((e) => e.Image === '/usr/bin/curl' && e.category === 'process_creation')!;
    expect(curl.Ancestors).toEqual([{ ProcessId: 200, Image: '/usr/bin/bash', CommandLine: LONG.slice(0, 20), truncated: true }]);
    expect((curl.vigil as Record<string, unknown>).ancestors_truncated).toBe(true);
    expect(curl.ParentCommandLine).toBe(LONG); // never cut
    const curlBack = back.find((e) => e.Image === '/usr/bin/curl' && e.category === 'process_creation')!;
    expect(curlBack.Ancestors).toEqual([
      { ProcessId: 200, Image: '/usr/bin/bash', CommandLine: LONG },
      { ProcessId: 100, Image: '/usr/sbin/sshd', CommandLine: 'sshd: u [priv]' },
      { ProcessId: 1, Image: '/sbin/init', CommandLine: '/sbin/init splash' },
    ]);
    expect(curlBack.vigil).not.toHaveProperty('ancestors_truncated');
    // everything but the lineage is the same
    const strip = (e: Record<string, unknown>) => {
      const { Ancestors: _a, vigil, ...rest } = e;
      const { ancestors_truncated: _t, ...v } = vigil as Record<string, unknown>;
      return { ...rest, vigil: v };
    };
    expect(back.map(strip)).toEqual(emitted.map(strip));
    const orphan = back.find((e) => e.Image === '/usr/bin/orphan' && e.category === 'process_creation')!;
    expect(orphan.Ancestors).toEqual([{ ProcessId: 350, Image: '', CommandLine: '' }]);
  });

  it('keeps a process in one row: the parent command line is stored once, not per child', async () => {
    const many: ProcessRecord[] = [];
    for (let i = 0; i < 50; i++) many.push(fork(1000 + i, 200), exec(1000 + i, 200, '/usr/bin/true', ['true', String(i)]), exit(1000 + i, 200));
    const r = await run({ maxDepth: 4, maxCommandLine: 128 }, many);
    const db = new Database(r.db, { readonly: true });
    const n = (sql: string, ...a: unknown[]) => (db.prepare(sql).get(...a) as { n: number }).n;
    expect(n('SELECT COUNT(*) AS n FROM records')).toBe(100);
    expect(n('SELECT COUNT(*) AS n FROM processes WHERE command_line = ?', LONG)).toBe(1);
    expect(n("SELECT COUNT(*) AS n FROM records WHERE json LIKE '%rcfile%' OR json LIKE '%/usr/bin/true%'")).toBe(0);
    // 50 children (their fork entries have no event of their own) + bash, sshd, init
    expect(n('SELECT COUNT(*) AS n FROM processes')).toBe(53);
    db.close();
    expect(stored(r.db, { category: 'process_creation' }).map((e) => e.CommandLine)).toEqual(Array.from({ length: 50 }, (_, i) => `true ${i}`));
  });

  it('remembers an exited process as written while the process table keeps it, then forgets it', async () => {
    const recs: ProcessRecord[] = [
      fork(500, 200),
      exec(500, 200, '/usr/bin/make', ['make']),
      fork(501, 500),
      exec(501, 500, '/usr/bin/cc', ['cc', 'a.c']),
      exit(500, 200), // make exits first; its child goes on
      exec(501, 500, '/usr/bin/ld', ['ld', 'a.o']), // its parent: make's row, not a second one
    ];
    for (let i = 0; i < 40; i++) recs.push(fork(1000 + i, 200), exec(1000 + i, 200, '/usr/bin/true', ['true', String(i)]), exit(1000 + i, 200));
    // make has left the table by now (it keeps 4 exited entries), and the sink (8) forgot it
    recs.push(exec(501, 500, '/usr/bin/as', ['as', 'a.s']), exit(501, 500));
    const r = await run({ maxDepth: 16, maxCommandLine: 100_000 }, recs, [], { maxExited: 4 });
    // bash, sshd, init; make; cc, ld, as (each exec an entry of its own); 40 children of bash
    expect(r.sqlite.rememberedProcesses).toBeLessThanOrEqual(3 + 8 + 3);
    const db = new Database(r.db, { readonly: true });
    const n = (sql: string, ...a: unknown[]) => (db.prepare(sql).get(...a) as { n: number }).n;
    expect(n('SELECT COUNT(*) AS n FROM processes WHERE image = ?', '/usr/bin/make')).toBe(1);
    expect(n('SELECT COUNT(*) AS n FROM processes WHERE image = ?', '/usr/bin/bash')).toBe(1);
    db.close();
    const back = stored(r.db);
    expect(back).toEqual(lines(r.jsonl));
    expect(back.find((e) => e.Image === '/usr/bin/ld')!.ParentImage).toBe('/usr/bin/make');
  });

  it('answers field queries on process fields, the parent, ancestors and argv', async () => {
    const r = await run({ maxDepth: 1, maxCommandLine: 20 }, WORKLOAD);
    const q = (field: string, op: '=' | '~', value: string) => stored(r.db, { fields: [{ field, op, value }] });
    expect(q('Image', '=', '/usr/bin/curl').map((e) => e.category)).toEqual(['process_creation', 'process_termination']);
    expect(q('CommandLine', '~', '*EXAMPLE.ORG*').map((e) => e.category)).toEqual(['process_creation']);
    expect(q('ParentImage', '=', '/usr/bin/bash').map((e) => e.Image)).toEqual(['/usr/bin/curl', '/bin/echo']);
    expect(q('ParentCommandLine', '~', '/bin/bash --rcfile*')).toHaveLength(2);
    expect(q('Ancestors.2.Image', '=', '/sbin/init').map((e) => e.Image)).toEqual(['/usr/bin/curl', '/bin/echo']);
    expect(q('vigil.argv.1', '=', 'a b').map((e) => e.Image)).toEqual(['/bin/echo']);
    expect(q('vigil.argv.2', '=', 'https://example.org/x?a=1&b="2"').map((e) => e.Image)).toEqual(['/usr/bin/curl']);
    expect(q('vigil.argc', '=', '3').map((e) => e.Image)).toEqual(['/usr/bin/curl']);
    const guid = q('Image', '=', '/bin/echo')[0]!.ProcessGuid as string;
    expect(q('ProcessGuid', '=', guid).map((e) => e.category)).toEqual(['process_creation', 'process_termination']);
    expect(q('vigil.exit_code', '=', '3').map((e) => e.Image)).toEqual(['/bin/echo']);
  });

  it('prunes process rows no kept event needs, keeping the ancestors of those it keeps', async () => {
    const many: ProcessRecord[] = [];
    for (let i = 0; i < 20; i++) many.push(fork(1000 + i, 200), exec(1000 + i, 200, '/usr/bin/true', ['true', String(i)]), exit(1000 + i, 200));
    const r = await run({ maxDepth: 4, maxCommandLine: 128 }, many);
    const st = EventStore.open(r.db);
    expect(st.prune(4)).toBe(36);
    expect(st.count()).toBe(4);
    // the two kept children, and bash, sshd, init above them
    expect(st.countProcesses()).toBe(5);
    const back = st.query({ order: 'asc' }).map((x) => JSON.parse(x.json) as Record<string, unknown>);
    st.close();
    expect(back.map((e) => e.CommandLine ?? e.category)).toEqual(['true 18', 'process_termination', 'true 19', 'process_termination']);
    expect((back[0]!.Ancestors as unknown[]).length).toBe(3);
  });

  it('reads a version 1 store (full JSON per row) and writes to it after migrating', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-store-v1-'));
    const path = join(dir, 'v1.db');
    const v1 = new Database(path);
    v1.exec(`CREATE TABLE records (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ts INTEGER NOT NULL, category TEXT NOT NULL, pid INTEGER, image TEXT, command_line TEXT, rule_id TEXT, level TEXT, json TEXT NOT NULL);
      CREATE INDEX records_kind_ts ON records (kind, ts); CREATE INDEX records_category ON records (category, ts);
      CREATE INDEX records_rule ON records (rule_id) WHERE rule_id IS NOT NULL; PRAGMA user_version = 1;`);
    const old = { category: 'process_creation', Image: '/bin/old', CommandLine: 'old', Ancestors: [{ ProcessId: 1, Image: '/sbin/init', CommandLine: 'init' }] };
    v1.prepare('INSERT INTO records (kind, ts, category, pid, image, command_line, json) VALUES (?, ?, ?, ?, ?, ?, ?)').run('event', 1, 'process_creation', 5, '/bin/old', 'old', JSON.stringify(old));
    v1.close();
    const s = new SqliteSink({ path, batchMs: 5 });
    s.write({ kind: 'event', value: { category: 'process_creation', Image: '/bin/new' }, json: '{"category":"process_creation","Image":"/bin/new"}' });
    await s.close();
    expect(stored(path, { fields: [{ field: 'Image', op: '~', value: '/bin/*' }] })).toEqual([old, { category: 'process_creation', Image: '/bin/new' }]);
  });

  it('packs a batch for the worker into one string and back, and refuses to when a text field holds a separator', () => {
    const procs: ProcessRow[] = [
      [7, '{g}', 10, 1, null, '/bin/x y', 'x y "z" \\ ü', '/', 0, null],
      [8, '{h}', 11, 10, 7, '/bin/sh', 'sh', '/tmp', 1000, '{"argc":1}'],
    ];
    const rows: StoreRow[] = [
      ['event', 1795981531806, 'process_creation', 8, 2047, null, null, '{"category":"process_creation","x":"\\u001f"}'],
      ['alert', 1795981531807, 'process_creation', null, 0, 'rule-1', 'high', '{}'],
    ];
    const packed = packBatch(rows, procs);
    expect(packed).not.toBeNull();
    expect(unpackBatch(packed!)).toEqual({ rows, procs });
    expect(unpackBatch(packBatch([], [])!)).toEqual({ rows: [], procs: [] });
    expect(packBatch(rows, [[9, '{i}', 12, 1, null, '/tmp/a\x1fb', 'a', '/', 0, null]])).toBeNull();
    expect(packBatch([['event', 1, 'c', null, 0, 'r\x1e', null, '{}']], [])).toBeNull();
  });

  it('keeps argv only when CommandLine does not split back into it', () => {
    expect(argvDerivable(['ls', '-la', '/tmp'], 'ls -la /tmp')).toBe(true);
    expect(argvDerivable(['echo', 'a b'], 'echo a b')).toBe(false);
    expect(argvDerivable(['echo', ''], 'echo ')).toBe(false);
    expect(argvDerivable([], '')).toBe(true);
    expect(argvDerivable([''], '')).toBe(false);
  });
});
