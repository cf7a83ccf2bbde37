/**
 * `vigil fleet ...` as the operator runs it (node bin/vigil after tsc), against a
 * real nats-server on loopback that requires a password (from a credentials
 * file), with two agents' fleet sides (FleetAgent: publisher, policy, heartbeat)
 * running in this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { RulesStore } from '../../src/enforcement/index.js';
import { FleetAgent } from '../../src/fleet/index.js';
import { buildProgram, main } from '../../src/cli/main.js';
import { startNats, type NatsServer } from './nats.js';

let srv: NatsServer;
let dir: string;
let creds: string;
const agents: Array<{ fleet: FleetAgent; db: string; logs: Array<{ level: number; msg: string }> }> = [];

/**
 * The CLI in this process (src/cli/main.ts, as bin/vigil runs it, with stdout and
 * stderr captured): the agents here keep running meanwhile, and no build or
 * process start per call is needed. The kernel test runs the built CLI.
 */
async function vigil(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += String(c)), true)) as typeof process.stderr.write;
  process.exitCode = 0;
  try {
    await main(['node', 'vigil', ...args]);
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}

/** --help text of a command (commander would exit the process). */
function help(path: string[]): string {
  let cmd: Command = buildProgram();
  for (const n of path) cmd = cmd.commands.find((c) => c.name() === n)!;
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}
const fleet = (...args: string[]) => vigil(['fleet', ...args, '--server', srv.url, '--creds', creds]);

async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function localRules(db: string) {
  const st = RulesStore.open(db);
  try {
    return st.list();
  } finally {
    st.close();
  }
}

beforeAll(async () => {
  srv = await startNats({ config: 'authorization {\n  user: vigil\n  password: "fleet-test-secret"\n}\n' });
  dir = mkdtempSync(join(tmpdir(), 'vigil-fleet-cli-'));
  creds = join(dir, 'fleet.creds');
  writeFileSync(creds, 'user: vigil\npassword: fleet-test-secret\n', { mode: 0o600 });
  for (const host of ['web-01', 'db-01']) {
    const logs: Array<{ level: number; msg: string }> = [];
    const state = join(dir, host);
    const db = join(state, 'vigil.db');
    const f = new FleetAgent({
      url: srv.url, creds, hostId: host, stateDir: state, rulesDb: db,
      log: pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s)) }),
      heartbeatMs: 300, lingerMs: 20, reconnectTimeWaitMs: 100, version: '0.1.0',
    });
    await f.start({ enforcement: () => 'detect-only', counters: () => ({ events: 3, alerts: 1, drops: { kernel: 0, decode: 0, sinks: 0 } }) });
    agents.push({ fleet: f, db, logs });
  }
  await until(() => agents.every((a) => a.fleet.publisher.stats().connected), 10_000, 'agents connected');
}, 60_000);

afterAll(async () => {
  for (const a of agents) await a.fleet.stop().catch(() => undefined);
  await srv?.stop();
});

describe('vigil fleet', () => {
  it('takes credentials from a file only: none → refused by the server, a file others can read → refused here', async () => {
    const none = await vigil(['fleet', 'hosts', '--server', srv.url]);
    // the server refuses: unavailable (3, docs/cli.md)
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/cannot connect to nats:\/\/127\.0\.0\.1:\d+: .*(Authorization|auth)/i);
    const open = join(dir, 'open.creds');
    writeFileSync(open, 'user: vigil\npassword: fleet-test-secret\n');
    chmodSync(open, 0o644);
    const r = await vigil(['fleet', 'hosts', '--server', srv.url, '--creds', open]);
    // a credentials file that is wrong: input (4, docs/cli.md)
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`credentials file ${open} is readable by others (mode 644): chmod 600`);
    const url = await vigil(['fleet', 'hosts', '--server', `nats://vigil:pw@127.0.0.1:${srv.port}`]);
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('put credentials in a file');
  });

  it('hosts: both agents with their policy revision and enforcement level', async () => {
    const rows = await until(async () => {
      const r = await fleet('hosts', '--json');
      const v = r.code === 0 ? JSON.parse(r.stdout) : [];
      return v.length === 2 ? v : false;
    }, 10_000, 'two hosts');
    expect(rows.map((r: { host: string }) => r.host).sort()).toEqual(['db-01', 'web-01']);
    for (const r of rows) {
      expect(r.state).toBe('running');
      expect(r.status).toMatchObject({ enforcement: 'detect-only', version: '0.1.0', counters: { events: 3 }, fleet: { connected: true } });
      expect(typeof r.status.policy.revision).toBe('number');
    }
    const text = await fleet('hosts');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^web-01\s+running\s+\S+( ago)?\s+rev \d+ current\s+detect-only/m);
  });

  it('alerts and events: both hosts, filtered by host and category; terminal escapes in alerts are shown escaped', async () => {
    for (const [k, a] of agents.entries()) {
      const host = a.fleet.hostId;
      const ev = { category: 'process_creation', UtcTime: '2026-11-29 10:00:00.000', ProcessId: 100 + k, Image: '/usr/bin/curl', CommandLine: `curl http://x/${host}` };
      a.fleet.sink.write({ kind: 'event', value: ev, json: JSON.stringify(ev) });
      const fe = { category: 'file_event', UtcTime: '2026-11-29 10:00:01.000', TargetFilename: `/tmp/${host}` };
      a.fleet.sink.write({ kind: 'event', value: fe, json: JSON.stringify(fe) });
      const alert = { rule_id: 'r-1', rule_title: `Curl on ${host} \x1b[31mRED\x1b[0m`, level: 'high', timestamp: '2026-11-29T10:00:00.000Z', event: ev };
      a.fleet.sink.write({ kind: 'alert', value: alert, json: JSON.stringify(alert) });
    }
    await until(() => agents.every((a) => a.fleet.publisher.stats().pending === 0), 10_000, 'published');

    const r = await fleet('alerts', '--since', '10m', '--json');
    expect(r.code).toBe(0);
    const alerts = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(alerts.map((a) => a.host).sort()).toEqual(['db-01', 'web-01']);
    expect(alerts.find((a) => a.host === 'db-01').alert).toMatchObject({ rule_id: 'r-1', level: 'high', event: { CommandLine: 'curl http://x/db-01' } });

    const human = await fleet('alerts', '--since', '10m', '--host', 'web-01');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('web-01  [high] Curl on web-01 \\x1b[31mRED\\x1b[0m (r-1)');
    expect(human.stdout).not.toContain('\x1b');
    expect(human.stdout).not.toContain('db-01');

    const evs = await fleet('events', '--host', 'db-01', '--category', 'file_event', '--json');
    expect(evs.code).toBe(0);
    expect(evs.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ host: 'db-01', event: expect.objectContaining({ TargetFilename: '/tmp/db-01' }) }]);
    expect((await fleet('alerts', '--host', 'a.b')).code).toBe(2);
    expect((await fleet('alerts', '--since', 'yesterday')).code).toBe(2);
  });

  it('deny add → in every agent\'s rule store within 5 s, in force on 2/2 hosts; rm removes it; bad input refused', async () => {
    const t0 = Date.now();
    const add = await fleet('deny', 'add', '/usr/bin/fleet-test-evil', '--id', 'evil', '--comment', 'from the fleet', '--json');
    expect(add.code).toBe(0);
    const { revision } = JSON.parse(add.stdout);
    for (const a of agents) {
      await until(() => localRules(a.db).find((r) => r.path === '/usr/bin/fleet-test-evil' && r.comment === '[fleet evil] from the fleet'), 5000, `rule on ${a.fleet.hostId}`);
    }
    expect(Date.now() - t0).toBeLessThan(5000 + 2000);
    const list = await until(async () => {
      const v = JSON.parse((await fleet('deny', 'list', '--json')).stdout);
      return v.rules[0]?.applied_on.length === 2 ? v : false;
    }, 5000, 'in force on both hosts');
    expect(list.rules).toEqual([{ id: 'evil', revision, rule: expect.objectContaining({ path: '/usr/bin/fleet-test-evil', mode: 'enforce' }), applied_on: expect.arrayContaining(['web-01', 'db-01']) }]);
    expect((await fleet('deny', 'list')).stdout).toMatch(/^evil\s+enforce\s+\/usr\/bin\/fleet-test-evil\s+rev \d+\s+# from the fleet\s+\(2\/2 hosts\)/m);

    const dup = await fleet('deny', 'add', '/usr/bin/other', '--id', 'evil');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('rule evil exists (--replace to overwrite it)');
    const rel = await fleet('deny', 'add', 'bin/evil');
    expect(rel.code).toBe(2);
    expect(rel.stderr).toContain('an absolute path');
    const hex = await fleet('deny', 'add', '--sha256', 'xyz');
    expect(hex.code).toBe(2);
    expect(hex.stderr).toContain('sha256 digest');

    const file = join(dir, 'miner');
    writeFileSync(file, 'not really a miner');
    const byHash = await fleet('deny', 'add', '--hash-file', file, '--id', 'miner', '--mode', 'monitor', '--json');
    expect(byHash.code).toBe(0);
    const digest = createHash('sha256').update('not really a miner').digest('hex');
    for (const a of agents) await until(() => localRules(a.db).find((r) => r.sha256 === digest && r.mode === 'monitor'), 5000, 'hash rule');

    expect((await fleet('deny', 'rm', 'evil')).code).toBe(0);
    expect((await fleet('deny', 'rm', 'miner')).code).toBe(0);
    for (const a of agents) await until(() => localRules(a.db).length === 0, 5000, 'rules removed');
    const gone = await fleet('deny', 'rm', 'evil');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no fleet deny rule evil');
  });

  it('rules push: lints first and refuses a set with errors; a good set reaches every agent', async () => {
    const bad = join(dir, 'bad-rules');
    mkdirSync(bad);
    writeFileSync(join(bad, 'typo.yml'), 'title: t\nid: 1b5a8bfa-1111-4111-8111-111111111111\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endwith: x\n  condition: sel\n');
    const r = await fleet('rules', 'push', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/typo\.yml:\d+:\d+: error: .*endwith/);
    expect(r.stderr).toContain('refused: 1 error(s) in the rule set; nothing pushed');
    expect(JSON.parse((await fleet('rules', 'list', '--json')).stdout)).toBeNull();

    const good = join(dir, 'good-rules');
    mkdirSync(join(good, 'linux'), { recursive: true });
    writeFileSync(join(good, 'linux', 'curl.yml'), 'title: Curl\nid: 2b5a8bfa-2222-4222-8222-222222222222\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: /curl\n  condition: sel\nlevel: low\n');
    const dry = await fleet('rules', 'push', good, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would push 1 file\(s\), 1 rule\(s\) \(1 active\)/);
    const push = await fleet('rules', 'push', good, '--json');
    expect(push.code).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ pushed: true, files: 1, rules: 1, active: 1 });
    for (const a of agents) await until(() => existsSync(join(a.fleet.sigmaDir, 'linux', 'curl.yml')), 5000, 'set on the agent');
    expect(JSON.parse((await fleet('rules', 'list', '--json')).stdout)).toMatchObject({ files: ['linux/curl.yml'] });
    expect((await fleet('rules', 'clear')).code).toBe(0);
    for (const a of agents) await until(() => !existsSync(join(a.fleet.sigmaDir, 'linux', 'curl.yml')), 5000, 'set removed');
  });

  it('help teaches: subcommands, examples, where credentials come from', () => {
    const h = help(['fleet']);
    for (const s of ['hosts', 'alerts', 'events', 'deny', 'rules', 'init', 'Examples:', '--creds FILE', 'docs/fleet.md']) expect(h).toContain(s);
    expect(help(['fleet', 'hosts'])).toContain('stale (no heartbeat for 3 periods)');
    expect(help(['fleet', 'deny'])).toContain('vigil fleet deny add --hash-file ./miner');
    const run = help(['run']);
    expect(run).toContain('--fleet <url>');
    expect(run).toContain('--fleet-creds <file>');
    expect(run).toContain('--fleet-host <id>');
  });
});
