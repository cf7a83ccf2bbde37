/**
 * Two `vigil run --fleet` agents (real sensors, separate processes, host ids from
 * their configs) and a real nats-server on loopback (JetStream, temp store):
 *   - `vigil fleet alerts` shows both hosts' alerts for one exec;
 *   - a rule pushed with `vigil fleet deny add` appears in each agent's `vigil deny list`
 *     within 5 s; a malformed value then is refused (logged) and the rule stays;
 *   - the server is killed, 1,000 execs happen, the server comes back: each host's
 *     1,000 events arrive, in order, exactly once (read without client-side de-dup).
 * Needs dist/ built (npm run build) and root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RulesStore } from '../../src/enforcement/index.js';
import { connectFleet, policyBucket, readBatches } from '../../src/fleet/index.js';
import { startNats, type NatsServer } from './nats.js';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));
const MARK = `vigil-fleet-${process.pid}`;
const HOSTS = ['kt-host-a', 'kt-host-b'];

let srv: NatsServer;
let dir: string;
const agents: Array<{ host: string; proc: ChildProcess; stderr: () => string; db: string; events: string }> = [];

const vigil = (...args: string[]) => spawnSync(process.execPath, [VIGIL, ...args], { encoding: 'utf8', timeout: 30_000 });

async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  srv = await startNats();
  dir = mkdtempSync(join(tmpdir(), 'vigil-fleet-kt-'));
  const rules = join(dir, 'rules');
  mkdirSync(rules);
  writeFileSync(join(rules, 'marker.yml'), `title: Fleet test marker
id: 6a1f0a52-7c3e-4e0b-9d55-${process.pid.toString(16).padStart(12, '0')}
logsource:
  product: linux
  category: process_creation
detection:
  sel:
    CommandLine|contains: '${MARK}-alert'
  condition: sel
level: high
`);
  for (const host of HOSTS) {
    const home = join(dir, host);
    mkdirSync(home);
    const cfg = join(home, 'vigil.yaml');
    const db = join(home, 'vigil.db');
    const events = join(home, 'events.jsonl');
    writeFileSync(cfg, `db: ${db}\nevents_out: ${events}\nstats_interval: 0\nfleet:\n  host_id: ${host}\n  state_dir: ${join(home, 'fleet')}\n  heartbeat: 500ms\n  batch_linger: 50ms\n`);
    const proc = spawn(process.execPath, [VIGIL, 'run', '-c', cfg, '--sensors', 'exec', '--no-enforce', '--rules', rules, '--fleet', srv.url], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    agents.push({ host, proc, stderr: () => err, db, events });
  }
  for (const a of agents) await until(() => a.stderr().includes('vigil running') && a.stderr().includes(`fleet: connected to ${srv.url} as host ${a.host}`), 60_000, `${a.host} running (${a.stderr().slice(-400)})`);
}, 120_000);

afterAll(async () => {
  for (const a of agents) {
    if (a.proc.exitCode === null) {
      a.proc.kill('SIGTERM');
      await new Promise((r) => a.proc.once('exit', r));
    }
  }
  await srv?.stop();
});

describe('vigil run --fleet: two agents, one nats-server', () => {
  it('a credentials file others can read stops vigil run at once (4); a URL with credentials in it too (2)', () => {
    const creds = join(dir, 'open.creds');
    writeFileSync(creds, 'user: vigil\npassword: x\n', { mode: 0o644 });
    chmodSync(creds, 0o644);
    const r = vigil('run', '--no-db', '--no-enforce', '--fleet', srv.url, '--fleet-creds', creds);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`credentials file ${creds} is readable by others (mode 644)`);
    const u = vigil('run', '--no-db', '--no-enforce', '--fleet', `nats://vigil:x@127.0.0.1:${srv.port}`);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain('put credentials in a file');
  });

  it('vigil fleet alerts shows the alerts of both hosts', async () => {
    spawnSync('/bin/true', [`${MARK}-alert`]);
    const alerts = await until(() => {
      const r = vigil('fleet', 'alerts', '--server', srv.url, '--since', '5m', '--json');
      if (r.status !== 0) return false;
      const list = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((a) => String(a.alert.event?.CommandLine).includes(`${MARK}-alert`));
      return new Set(list.map((a) => a.host)).size === 2 ? list : false;
    }, 15_000, 'alerts from both hosts');
    expect(alerts.map((a) => a.host).sort()).toEqual(HOSTS);
    for (const a of alerts) expect(a.alert).toMatchObject({ rule_title: 'Fleet test marker', level: 'high' });
    const text = vigil('fleet', 'alerts', '--server', srv.url, '--since', '5m', '--host', 'kt-host-b');
    expect(text.stdout).toMatch(/kt-host-b {2}\[high\] Fleet test marker/);
    expect(text.stdout).not.toContain('kt-host-a');
  });

  it('vigil fleet deny add reaches every agent\'s vigil deny list within 5 s; a malformed value is refused and the rule stays', async () => {
    const target = `/usr/local/bin/${MARK}-denied`;
    const add = vigil('fleet', 'deny', 'add', target, '--id', 'kt', '--server', srv.url, '--comment', 'kernel test');
    expect(add.status, add.stderr).toBe(0);
    // from the moment the rule is in the bucket, timed on the agents' rule stores directly
    // (50 ms polls; a `vigil` process start alone can take a second on a busy machine)
    const t0 = Date.now();
    const stored = (db: string) => {
      if (!existsSync(db)) return false;
      const st = RulesStore.open(db, { readonly: true });
      try {
        return st.list().some((r) => r.path === target);
      } finally {
        st.close();
      }
    };
    await Promise.all(agents.map((a) => until(() => stored(a.db), 5000, `${a.host}: rule stored within 5 s`)));
    expect(Date.now() - t0).toBeLessThan(5000);
    // and it is what `vigil deny list` shows on each host
    const list = (db: string) => JSON.parse(vigil('deny', 'list', '--db', db, '--json').stdout || '{"rules":[]}') as { rules: Array<{ path: string; comment: string }> };
    for (const a of agents) expect(list(a.db).rules.find((r) => r.path === target)?.comment).toBe('[fleet kt] kernel test');

    const nc = await connectFleet({ url: srv.url });
    const kv = await policyBucket(nc);
    const rev = await kv.put('deny.kt', '{"path": 42, "mode": "enforce"');
    await nc.close();
    for (const a of agents) {
      await until(() => a.stderr().includes(`policy value deny.kt (revision ${rev}) rejected`), 5000, `${a.host} logs the refusal`);
      expect(a.stderr()).toContain('the previous policy stays in force');
      expect(list(a.db).rules.filter((r) => r.path === target)).toHaveLength(1);
    }
    const hosts = JSON.parse(vigil('fleet', 'hosts', '--server', srv.url, '--json').stdout) as Array<{ host: string; status: { policy: { rejected: Array<{ key: string; revision: number }> }; enforcement: string } }>;
    for (const h of hosts.filter((x) => HOSTS.includes(x.host))) {
      expect(h.status.enforcement).toBe('off');
      await until(() => {
        const now = JSON.parse(vigil('fleet', 'hosts', '--server', srv.url, '--json').stdout).find((x: { host: string }) => x.host === h.host);
        return now.status.policy.rejected.some((r: { key: string; revision: number }) => r.key === 'deny.kt' && r.revision === rev);
      }, 5000, `${h.host} reports the rejection`);
    }
  });

  it('server killed, 1,000 execs, server back: each host\'s 1,000 events arrive in order, exactly once', async () => {
    await srv.kill();
    for (const a of agents) await until(() => a.stderr().includes('fleet: disconnected'), 10_000, `${a.host} notices`);
    const run = `${MARK}-outage`;
    const sh = spawnSync('/bin/sh', ['-c', `i=0; while [ $i -lt 1000 ]; do /bin/true ${run} $i; i=$((i+1)); done`]);
    expect(sh.status).toBe(0);
    const seen = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split(`/bin/true ${run} `).length - 1 : 0);
    for (const a of agents) await until(() => seen(a.events) >= 1000, 20_000, `${a.host} recorded the 1,000 execs`);
    await new Promise((r) => setTimeout(r, 300)); // the last batch seals (linger 50 ms)
    await srv.restart();

    const nc = await connectFleet({ url: srv.url });
    try {
      for (const host of HOSTS) {
        const got = await until(async () => {
          const out: number[] = [];
          for await (const b of readBatches(nc, 'event', { host, sub: 'process_creation', dedup: false })) {
            for (const l of b.records) {
              const e = JSON.parse(l);
              const m = typeof e.CommandLine === 'string' && e.CommandLine.startsWith(`/bin/true ${run} `) ? Number(e.CommandLine.slice(`/bin/true ${run} `.length)) : null;
              if (m !== null) out.push(m);
            }
          }
          return out.length >= 1000 ? out : false;
        }, 30_000, `${host}: 1,000 events in the stream`);
        expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      }
    } finally {
      await nc.close();
    }
  });

  it('stops cleanly and says so: vigil fleet hosts shows both hosts stopped', async () => {
    for (const a of agents) {
      a.proc.kill('SIGTERM');
      expect(await new Promise((r) => a.proc.once('exit', r))).toBe(0);
      expect(a.stderr()).toMatch(/final: .*drops kernel=0 decode=0/);
    }
    const hosts = JSON.parse(vigil('fleet', 'hosts', '--server', srv.url, '--json').stdout) as Array<{ host: string; state: string; status: { fleet: { spool_backlog: number; dropped: number } } }>;
    for (const h of HOSTS) expect(hosts.find((x) => x.host === h)).toMatchObject({ state: 'stopped', status: { fleet: { spool_backlog: 0, dropped: 0 } } });
  });
});
