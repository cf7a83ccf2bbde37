/**
 * Fault suite, whole agents (`vigil run` as separate processes, real sensors):
 * a second agent on the same store or log, an agent killed with SIGKILL in the
 * middle of its writes and started again, a read-only store, a directory or a
 * corrupt file where the store belongs, and the modes of every file a run
 * writes under a umask of 0. No whole record may be lost or altered beyond what
 * is counted and reported; every refusal is one line naming the path and the
 * reason, with its documented exit status (docs/cli.md).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));
const dirs: string[] = [];
const mounts: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'vigil-fault-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Agent {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** `vigil run` (exec sensor only, no enforcement: quick to start), optionally under a shell umask. */
function agent(args: string[], umask?: string): Agent {
  const argv = ['run', '--sensors', 'exec', '--no-enforce', '--stats-interval', '0', ...args];
  const proc =
    umask === undefined
      ? spawn(process.execPath, [VIGIL, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('/bin/sh', ['-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, VIGIL, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, stderr: () => err, exit };
}

async function waitFor(pred: () => boolean, ms: number, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Until it says it runs; an agent that exits first, or is not running within 30 s, fails with what it said. */
const running = async (a: Agent) => {
  await waitFor(() => a.stderr().includes('vigil running') || a.proc.exitCode !== null || a.proc.signalCode !== null, 30_000, 'vigil running').catch((e: Error) => {
    throw new Error(`${e.message}; its stderr:\n${a.stderr()}`);
  });
  if (!a.stderr().includes('vigil running')) throw new Error(`vigil run exited (${a.proc.exitCode ?? a.proc.signalCode}) before running:\n${a.stderr()}`);
};

/** Run a command a few times so the agent has records to write. */
function execs(marker: string, n: number): void {
  for (let i = 0; i < n; i++) spawnSync('/bin/true', [marker, String(i)]);
}

/** The JSONL log's records: each line whole JSON, the file ends with a newline. */
function jsonl(path: string): Array<Record<string, unknown>> {
  const text = readFileSync(path, 'utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** stderr without pino's JSON lines: what the user reads on a refusal */
const oneLine = (s: string) => s.trimEnd().split('\n');

describe('two agents, one store', () => {
  it('the second refuses to start naming the pid that holds the store and the log; a SIGKILLed holder does not block a restart, whose repair leaves only whole records', async () => {
    const d = scratch();
    const db = join(d, 'vigil.db');
    const log = join(d, 'events.jsonl');
    const a = agent(['--db', db, '--events-out', log]);
    await running(a);
    expect(readFileSync(`${db}.lock`, 'utf8')).toBe(`${a.proc.pid}\n`);

    // same store: refused before anything starts, naming the holder
    const b = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '--db', db], { encoding: 'utf8', timeout: 20_000 });
    expect(b.status).toBe(3);
    expect(oneLine(b.stderr)).toHaveLength(1);
    expect(b.stderr).toContain(`--db ${db}: in use by another vigil process (pid ${a.proc.pid})`);
    expect(b.stderr).toContain('[unavailable.locked]');
    // same log, another store
    const c = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '--no-db', '--events-out', log], { encoding: 'utf8', timeout: 20_000 });
    expect(c.status).toBe(3);
    expect(c.stderr).toContain(`--events-out ${log}: in use by another vigil process (pid ${a.proc.pid})`);

    // SIGKILL in the middle of writing: execs under way while it dies
    const marker = `vigil-kill-${process.pid}`;
    await waitFor(() => {
      execs(marker, 20);
      return existsSync(log) && readFileSync(log, 'utf8').includes(marker);
    }, 15_000, 'records in the log');
    const storm = spawn('/bin/sh', ['-c', `i=0; while [ $i -lt 400 ]; do /bin/true ${marker}-storm; i=$((i+1)); done`]);
    const stormDone = new Promise((r) => storm.on('exit', r));
    // killed once the storm's records are being written (not after a fixed time: on a busy machine the storm may not have begun)
    await waitFor(() => storm.exitCode !== null || readFileSync(log, 'utf8').includes(`${marker}-storm`), 15_000, 'the storm in the log');
    a.proc.kill('SIGKILL');
    await a.exit;
    await stormDone;
    const before = readFileSync(log);
    // the lock file still names the dead agent: it must not block
    expect(existsSync(`${db}.lock`)).toBe(true);

    const r = agent(['--db', db, '--events-out', log]);
    await running(r);
    expect(readFileSync(`${db}.lock`, 'utf8')).toBe(`${r.proc.pid}\n`);
    const after = `vigil-restart-${process.pid}`;
    await waitFor(() => {
      execs(after, 5);
      return readFileSync(log, 'utf8').includes(after);
    }, 15_000, 'records after the restart');
    r.proc.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    expect(r.stderr()).toMatch(/final: events \d+ .*drops kernel=0 decode=0 jsonl=0 sqlite=0/);

    // every record whole; every whole line the killed agent had written is still there, unchanged
    const recs = jsonl(log);
    const cut = before.lastIndexOf(0x0a) + 1;
    expect(readFileSync(log).subarray(0, cut).equals(before.subarray(0, cut))).toBe(true);
    expect(recs.some((e) => String(e.CommandLine).includes(after))).toBe(true);
    // the store survived the kill: intact, and holds the new agent's records
    const s = new Database(db, { readonly: true });
    expect(s.pragma('integrity_check', { simple: true })).toBe('ok');
    // (a process's command line is kept once, in its process row)
    const n = (s.prepare('SELECT COUNT(*) AS n FROM records r JOIN processes p ON p.id = r.proc WHERE p.command_line LIKE ?').get(`%${after}%`) as { n: number }).n;
    s.close();
    expect(n).toBeGreaterThan(0);
    // a clean stop removes the lock files
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(existsSync(`${log}.lock`)).toBe(false);
  });
});

describe('a disk that fills under a running agent', () => {
  it('vigil run logs the episode once when it starts and once when it ends, the loss it reports is the loss it counts, the log holds only whole records', async () => {
    const d = scratch();
    const mnt = join(d, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'vigil-small', mnt]);
    mounts.push(mnt);
    const log = join(mnt, 'events.jsonl');
    const cfg = join(d, 'vigil.yaml');
    // the bound holds any one batch the agent reads in a healthy moment (the 20 records of one turn of
    // the loop that waits for the failure arrive together, before the sink's first write can fail), so the only loss is the
    // episode's; the episode itself queues several times the bound
    writeFileSync(cfg, 'sinks:\n  max_pending_bytes: 64KiB\n');
    const a = agent(['-c', cfg, '--no-db', '--events-out', log]);
    await running(a);
    execs(`vigil-before-${process.pid}`, 5);
    await waitFor(() => readFileSync(log, 'utf8').includes(`vigil-before-${process.pid}`), 10_000, 'records before');
    // fill the disk
    const filler = join(mnt, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(1024 * 1024));
    } catch {
      /* ENOSPC: the disk is full now */
    }
    const failing = () => (a.stderr().match(/writes failing/g) ?? []).length;
    await waitFor(() => {
      execs(`vigil-full-${process.pid}`, 10);
      return failing() > 0;
    }, 15_000, 'the failing report');
    // more records than the bound holds, over several retries
    for (let i = 0; i < 4; i++) {
      execs(`vigil-full-${process.pid}`, 50);
      await new Promise((r) => setTimeout(r, 300));
    }
    rmSync(filler);
    const after = `vigil-after-${process.pid}`;
    await waitFor(() => {
      execs(after, 2);
      return readFileSync(log, 'utf8').includes(after);
    }, 15_000, 'writing to resume');
    a.proc.kill('SIGTERM');
    expect(await a.exit).toBe(0);
    const err = a.stderr();
    expect(failing()).toBe(1);
    const resumed = [...err.matchAll(/writes resumed after \d+ ms; (\d+) record\(s\) lost meanwhile/g)];
    expect(resumed).toHaveLength(1);
    const lost = Number(resumed[0]![1]);
    expect(lost).toBeGreaterThan(0);
    // the final stats count the same loss for this sink, and nothing else was lost
    expect(err).toMatch(new RegExp(`final: events \\d+ .*drops kernel=0 decode=0 jsonl=${lost}( |$)`, 'm'));
    const recs = jsonl(log);
    expect(recs.length).toBeGreaterThan(0);
  });
});

describe('where the store cannot be', () => {
  it('a read-only store is refused with one line naming the path and the reason (exit 4), not run with nothing stored', () => {
    const d = scratch();
    const rw = join(d, 'rw');
    const ro = join(d, 'ro');
    mkdirSync(rw);
    mkdirSync(ro);
    // a store in WAL mode whose -wal and -shm exist (another reader holds it open): SQLite opens it read-only without a word
    const holder = new Database(join(rw, 'vigil.db'));
    holder.pragma('journal_mode = WAL');
    holder.exec('CREATE TABLE x (a)');
    holder.pragma('user_version = 2');
    execFileSync('mount', ['--bind', '-o', 'ro', rw, ro]);
    mounts.push(ro);
    try {
      const r = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '--db', join(ro, 'vigil.db')], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(4);
      expect(oneLine(r.stderr)).toHaveLength(1);
      expect(r.stderr).toContain(`--db ${join(ro, 'vigil.db')}`);
      expect(r.stderr).toMatch(/read-only/);
      expect(r.stderr).toContain('[input.read_only]');
    } finally {
      holder.close();
    }
  });

  it('a directory, or a file that is not a database, where the store belongs: refused (exit 4), the file left unchanged', () => {
    const d = scratch();
    const dir = join(d, 'store.db');
    mkdirSync(dir);
    const r1 = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '--db', dir], { encoding: 'utf8', timeout: 20_000 });
    expect(r1.status).toBe(4);
    expect(oneLine(r1.stderr)).toHaveLength(1);
    expect(r1.stderr).toContain(`--db ${dir}`);

    const bad = join(d, 'corrupt.db');
    const bytes = Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080, 0x5a)]);
    writeFileSync(bad, bytes);
    const r2 = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '--db', bad], { encoding: 'utf8', timeout: 20_000 });
    expect(r2.status).toBe(4);
    expect(oneLine(r2.stderr)).toHaveLength(1);
    expect(r2.stderr).toContain(`--db ${bad}`);
    expect(r2.stderr).toMatch(/\[input\.(not_a_database|corrupt_database)\]/);
    expect(readFileSync(bad).equals(bytes)).toBe(true);
    expect(existsSync(`${bad}.lock`)).toBe(false);
  });

  it('a log on a read-only mount is refused with one line naming it (exit 4)', () => {
    const d = scratch();
    const ro = join(d, 'ro');
    mkdirSync(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'vigil-ro', ro]);
    mounts.push(ro);
    const r = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '--no-db', '--events-out', join(ro, 'ev.jsonl')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(4);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(`--events-out ${join(ro, 'ev.jsonl')}`);
    expect(r.stderr).toContain('read-only file system');
  });
});

describe('who can read the records', () => {
  it('under umask 000 every file a run writes is 0600 and every directory it makes 0700: store, -wal, -shm, logs, rotated logs, locks', async () => {
    const d = scratch();
    const db = join(d, 'state', 'deep', 'vigil.db');
    const log = join(d, 'logs', 'events.jsonl');
    const alerts = join(d, 'logs', 'alerts', 'alerts.jsonl');
    const cfg = join(d, 'vigil.yaml');
    writeFileSync(cfg, 'audit_log:\n  max_bytes: 4KiB\n  keep: 2\n');
    const a = agent(['-c', cfg, '--db', db, '--events-out', log, '--alerts-out', alerts], '000');
    await running(a);
    const marker = `vigil-modes-${process.pid}`;
    await waitFor(() => {
      execs(marker, 10);
      return existsSync(`${log}.1`) && existsSync(`${db}-wal`);
    }, 20_000, 'a rotated log and the WAL');
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    const files = [db, `${db}-wal`, `${db}-shm`, `${db}.lock`, log, `${log}.1`, `${log}.lock`, alerts, `${alerts}.lock`];
    const dirsMade = [join(d, 'state'), join(d, 'state', 'deep'), join(d, 'logs'), join(d, 'logs', 'alerts')];
    expect(Object.fromEntries(files.map((f) => [f, mode(f)]))).toEqual(Object.fromEntries(files.map((f) => [f, '600'])));
    expect(Object.fromEntries(dirsMade.map((f) => [f, mode(f)]))).toEqual(Object.fromEntries(dirsMade.map((f) => [f, '700'])));
    a.proc.kill('SIGTERM');
    expect(await a.exit).toBe(0);
    for (const f of [db, log, `${log}.1`, alerts]) expect(mode(f)).toBe('600');
  });

  it('with files.group, under umask 000 the records are 0640 and that group, directories 0750; doctor accepts them and flags a wrong group or a group that can write; an unknown group is a config error', async () => {
    const group = `vigil-t${process.pid}`.slice(0, 30);
    execFileSync('groupadd', [group]);
    try {
      const gid = Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]);
      const d = scratch();
      const db = join(d, 'state', 'deep', 'vigil.db');
      const log = join(d, 'logs', 'events.jsonl');
      const alerts = join(d, 'logs', 'alerts', 'alerts.jsonl');
      const cfg = join(d, 'vigil.yaml');
      writeFileSync(cfg, `files:\n  group: ${group}\naudit_log:\n  max_bytes: 4KiB\n  keep: 2\n`);
      const a = agent(['-c', cfg, '--db', db, '--events-out', log, '--alerts-out', alerts], '000');
      await running(a);
      const marker = `vigil-group-${process.pid}`;
      await waitFor(() => {
        execs(marker, 10);
        return existsSync(`${log}.1`) && existsSync(`${db}-wal`);
      }, 20_000, 'a rotated log and the WAL');
      const st = (p: string) => {
        const s = statSync(p);
        return `${(s.mode & 0o777).toString(8)} ${s.gid}`;
      };
      // while it runs (a clean stop removes -wal and -shm)
      const records = [db, `${db}-wal`, `${db}-shm`, log, `${log}.1`, alerts];
      const dirsMade = [join(d, 'state'), join(d, 'state', 'deep'), join(d, 'logs'), join(d, 'logs', 'alerts')];
      expect(Object.fromEntries(records.map((f) => [f, st(f)]))).toEqual(Object.fromEntries(records.map((f) => [f, `640 ${gid}`])));
      expect(Object.fromEntries(dirsMade.map((f) => [f, st(f)]))).toEqual(Object.fromEntries(dirsMade.map((f) => [f, `750 ${gid}`])));
      // locks hold no records: the owner's only
      for (const f of [`${db}.lock`, `${log}.lock`]) expect(st(f).split(' ')[0]).toBe('600');
      a.proc.kill('SIGTERM');
      expect(await a.exit).toBe(0);
      for (const f of [db, log, `${log}.1`, alerts]) expect(st(f)).toBe(`640 ${gid}`);

      // doctor with the same config: the group's files pass; a file of another group, or one the group can write, does not
      const doctor = () => {
        const r = spawnSync(process.execPath, [VIGIL, 'doctor', '--json'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, VIGIL_CONFIG: cfg } });
        return (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; detail: string; hint?: string }> }).checks.find((c) => c.id === 'records')!;
      };
      writeFileSync(cfg, `files:\n  group: ${group}\ndb: ${db}\nevents_out: ${log}\n`);
      expect(doctor()).toMatchObject({ status: 'ok' });
      execFileSync('chgrp', ['0', log]);
      chmodSync(`${log}.1`, 0o660);
      const c = doctor();
      expect(c.status).toBe('error');
      expect(c.detail).toContain(`${log} is 0640: group 0 can read it, not files.group ${group}`);
      expect(c.detail).toContain(`${log}.1 is 0660: group ${group} can write it`);
      expect(c.detail).not.toContain(`${db} is`);
      expect(c.hint).toContain(`chgrp ${group}`);

      // a group this host does not have: one line naming the key, exit 4, nothing started
      writeFileSync(cfg, 'files:\n  group: no-such-group-vigil\n');
      const bad = spawnSync(process.execPath, [VIGIL, 'run', '--sensors', 'exec', '--no-enforce', '-c', cfg, '--no-db'], { encoding: 'utf8', timeout: 20_000 });
      expect(bad.status).toBe(4);
      expect(oneLine(bad.stderr)).toHaveLength(1);
      expect(bad.stderr).toContain('files.group');
      expect(bad.stderr).toContain('no group no-such-group-vigil on this host');
    } finally {
      spawnSync('groupdel', [group]);
    }
  }, 300_000);

  it('vigil doctor warns about an existing store or log that others can read (the modes older versions created)', () => {
    const d = scratch();
    const db = join(d, 'vigil.db');
    const log = join(d, 'events.jsonl');
    writeFileSync(db, '');
    writeFileSync(log, '');
    writeFileSync(`${log}.1`, '');
    chmodSync(db, 0o644);
    chmodSync(log, 0o640);
    chmodSync(`${log}.1`, 0o600);
    const cfg = join(d, 'vigil.yaml');
    writeFileSync(cfg, `db: ${db}\nevents_out: ${log}\n`);
    const r = spawnSync(process.execPath, [VIGIL, 'doctor', '--json'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, VIGIL_CONFIG: cfg } });
    const check = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; detail: string; hint?: string }> }).checks.find((c) => c.id === 'records');
    expect(check).toMatchObject({ status: 'error' });
    expect(check!.detail).toContain(`${db} is 0644: others can read it`);
    expect(check!.detail).toContain(`${log} is 0640: others can read it`);
    expect(check!.detail).not.toContain(`${log}.1`);
    expect(check!.hint).toBe(`chmod 600 ${db} ${log} (they hold every command line recorded)`);
  }, 120_000);
});
