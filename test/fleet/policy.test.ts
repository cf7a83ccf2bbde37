/**
 * Policy from the fleet, against a real nats-server on loopback: deny rules put
 * in the vigil-policy bucket reach the agent's deny rule store within seconds
 * and leave it when deleted; malformed values are refused with a logged error
 * while the previous policy stays in force; Sigma sets land in the watched
 * directory; the last good policy is applied again by a start without the server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import pino from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { RulesStore } from '../../src/enforcement/index.js';
import { connectFleet, encodeSigmaSet, PolicyAgent, policyBucket } from '../../src/fleet/index.js';
import { startNats, type NatsServer } from './nats.js';

let srv: NatsServer;
let admin: NatsConnection;
let kv: KV;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  srv = await startNats();
  admin = await connectFleet({ url: srv.url, reconnectTimeWaitMs: 100 });
  kv = await policyBucket(admin);
});
afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await admin?.close().catch(() => undefined);
  await srv?.stop();
});

interface LogLine {
  level: number;
  msg: string;
  policy_key?: string;
}

function setup(stateDir = mkdtempSync(join(tmpdir(), 'vigil-pol-')), rulesDb = join(stateDir, 'vigil.db')) {
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  let changes = 0;
  const agent = new PolicyAgent({ stateDir, rulesDb, log, onDenyChanged: () => changes++ });
  const rules = () => {
    const st = RulesStore.open(rulesDb);
    try {
      return st.list();
    } finally {
      st.close();
    }
  };
  return { agent, logs, rules, stateDir, rulesDb, changes: () => changes };
}

async function until<T>(f: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const RULE = (title: string, image: string) => `title: ${title}
id: 0e3c0a5e-0000-4000-8000-${createHash('sha256').update(title).digest('hex').slice(0, 12)}
logsource:
  product: linux
  category: process_creation
detection:
  sel:
    Image|endswith: '${image}'
  condition: sel
level: high
`;

describe('fleet policy agent', () => {
  it('applies deny rules from the bucket within seconds, removes them when deleted, leaves local rules alone', async () => {
    const s = setup();
    const local = RulesStore.open(s.rulesDb);
    local.add({ kind: 'path', path: '/usr/bin/local-only', resolvedPath: null, sha256: null, mode: 'enforce', comment: 'added here' });
    local.close();
    const nc = await connectFleet({ url: srv.url });
    conns.push(nc);
    s.agent.attach(nc);

    const t0 = Date.now();
    const rev = await kv.put('deny.nc-ban', JSON.stringify({ path: '/usr/bin/nc.fleet-test', mode: 'enforce', comment: 'no netcat' }));
    const r = await until(() => s.rules().find((x) => x.path === '/usr/bin/nc.fleet-test'), 5000, 'fleet rule in the local store');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r).toMatchObject({ kind: 'path', mode: 'enforce', comment: '[fleet nc-ban] no netcat' });
    await until(() => s.agent.status().revision >= rev, 2000, 'revision reported');
    expect(s.agent.status()).toMatchObject({ source: 'server', deny_rules: 1, rejected: [] });
    expect(s.changes()).toBeGreaterThan(0);

    await kv.put('deny.hash', JSON.stringify({ sha256: 'AB'.repeat(32), mode: 'monitor' }));
    await until(() => s.rules().find((x) => x.sha256 === 'ab'.repeat(32) && x.mode === 'monitor'), 5000, 'sha256 rule');

    await kv.delete('deny.nc-ban');
    await until(() => !s.rules().some((x) => x.path === '/usr/bin/nc.fleet-test'), 5000, 'fleet rule removed');
    expect(s.rules().map((x) => x.comment).sort()).toEqual(['[fleet hash]', 'added here']);
    await kv.delete('deny.hash');
    await until(() => s.rules().length === 1, 5000, 'only the local rule left');
    await s.agent.stop();
  });

  it('refuses malformed values with a logged error and keeps the previous policy in force', async () => {
    const s = setup();
    const nc = await connectFleet({ url: srv.url });
    conns.push(nc);
    s.agent.attach(nc);
    await kv.put('deny.keep', JSON.stringify({ path: '/opt/fleet-test/keep', mode: 'enforce' }));
    await until(() => s.rules().find((x) => x.path === '/opt/fleet-test/keep'), 5000, 'good rule applied');
    const before = s.rules();

    // a new key with garbage, and a bad overwrite of the rule in force
    const bad1 = await kv.put('deny.garbage', 'not json {');
    const bad2 = await kv.put('deny.keep', JSON.stringify({ path: 'relative/path', mode: 'enforce' }));
    const bad3 = await kv.put('deny.extra', JSON.stringify({ path: '/x', mode: 'enforce', shell: '$(reboot)' }));
    await until(() => s.agent.status().revision >= bad3, 5000, 'bad values seen');
    await new Promise((r) => setTimeout(r, 200));
    expect(s.rules()).toEqual(before);
    const errors = s.logs.filter((l) => l.level >= 50);
    expect(errors.map((l) => l.policy_key).sort()).toEqual(['deny.extra', 'deny.garbage', 'deny.keep']);
    expect(errors.find((l) => l.policy_key === 'deny.keep')!.msg).toMatch(/rejected: path: an absolute path; the previous policy stays in force/);
    expect(errors.find((l) => l.policy_key === 'deny.garbage')!.msg).toMatch(/not JSON/);
    expect(s.agent.status().rejected.map((r) => [r.key, r.revision]).sort()).toEqual([['deny.extra', bad3], ['deny.garbage', bad1], ['deny.keep', bad2]]);

    // a good value again: applied, and its rejection is cleared
    await kv.put('deny.keep', JSON.stringify({ path: '/opt/fleet-test/keep2', mode: 'monitor' }));
    await until(() => s.rules().find((x) => x.path === '/opt/fleet-test/keep2'), 5000, 'fixed rule applied');
    expect(s.rules().some((x) => x.path === '/opt/fleet-test/keep')).toBe(false);
    expect(s.agent.status().rejected.map((r) => r.key).sort()).toEqual(['deny.extra', 'deny.garbage']);
    for (const k of ['deny.keep', 'deny.garbage', 'deny.extra']) await kv.delete(k);
    await until(() => s.agent.status().rejected.length === 0 && s.rules().length === 0, 5000, 'cleaned up');
    await s.agent.stop();
  });

  it('writes a Sigma set into the watched directory; a set with rule errors, bad names or bad bytes is refused', async () => {
    const s = setup();
    const nc = await connectFleet({ url: srv.url });
    conns.push(nc);
    s.agent.attach(nc);
    const good = { 'linux/a.yml': RULE('fleet a', '/a-tool'), 'b.yaml': RULE('fleet b', '/b-tool') };
    await kv.put('sigma', encodeSigmaSet({ format: 1, files: good }));
    await until(() => existsSync(join(s.agent.sigmaDir, 'b.yaml')), 5000, 'set written');
    expect(readFileSync(join(s.agent.sigmaDir, 'linux/a.yml'), 'utf8')).toBe(good['linux/a.yml']);
    const rev = s.agent.status().sigma!.revision;

    const broken = { 'a.yml': 'title: x\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endwith: x\n  condition: sel\n' };
    const r1 = await kv.put('sigma', encodeSigmaSet({ format: 1, files: broken }));
    const r2 = await kv.put('sigma', gzipSync(JSON.stringify({ format: 1, files: { '../../etc/cron.d/x.yml': RULE('evil', '/x') } })));
    const r3 = await kv.put('sigma', Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    await until(() => s.agent.status().revision >= r3, 5000, 'bad sets seen');
    await new Promise((r) => setTimeout(r, 200));
    const sigmaErrors = s.logs.filter((l) => l.level >= 50 && l.policy_key === 'sigma');
    expect(sigmaErrors).toHaveLength(3);
    expect(sigmaErrors[0]!.msg).toMatch(new RegExp(`revision ${r1}\\) rejected: 1 rule error`));
    expect(sigmaErrors[1]!.msg).toMatch(new RegExp(`revision ${r2}\\) rejected: files: "../../etc/cron.d/x.yml": not a relative rule file name`));
    expect(sigmaErrors[2]!.msg).toMatch(new RegExp(`revision ${r3}\\) rejected: not a gzip`));
    expect(s.agent.status().sigma).toMatchObject({ revision: rev, files: 2 });
    expect(readFileSync(join(s.agent.sigmaDir, 'b.yaml'), 'utf8')).toBe(good['b.yaml']);
    expect(existsSync(join(s.stateDir, 'etc'))).toBe(false);

    // a new good set replaces the old one whole
    await kv.put('sigma', encodeSigmaSet({ format: 1, files: { 'c.yml': RULE('fleet c', '/c-tool') } }));
    await until(() => existsSync(join(s.agent.sigmaDir, 'c.yml')) && !existsSync(join(s.agent.sigmaDir, 'b.yaml')), 5000, 'set replaced');
    expect(existsSync(join(s.agent.sigmaDir, 'linux'))).toBe(false);
    await kv.delete('sigma');
    await until(() => !existsSync(join(s.agent.sigmaDir, 'c.yml')), 5000, 'set removed');
    await s.agent.stop();
  });

  it('a start without the server applies the last good policy from disk; after a server restart changes still arrive', async () => {
    const s = setup();
    const nc = await connectFleet({ url: srv.url, reconnectTimeWaitMs: 100 });
    conns.push(nc);
    s.agent.attach(nc);
    await kv.put('deny.offline', JSON.stringify({ path: '/opt/fleet-test/offline', mode: 'enforce' }));
    await until(() => s.rules().find((x) => x.path === '/opt/fleet-test/offline'), 5000, 'applied');
    const rev = s.agent.status().revision;
    await s.agent.stop();

    // same state directory, a fresh rule store, no connection at all
    const again = setup(s.stateDir, join(mkdtempSync(join(tmpdir(), 'vigil-pol-db-')), 'vigil.db'));
    await again.agent.loadLastGood();
    expect(again.rules().map((r) => r.path)).toEqual(['/opt/fleet-test/offline']);
    expect(again.agent.status()).toMatchObject({ source: 'disk', revision: rev, deny_rules: 1 });

    // the server goes away and comes back; the watch resumes
    const nc2 = await connectFleet({ url: srv.url, reconnectTimeWaitMs: 100 });
    conns.push(nc2);
    again.agent.attach(nc2);
    await until(() => again.agent.status().source === 'server', 5000, 'synced');
    await srv.restart();
    const admin2 = await connectFleet({ url: srv.url });
    conns.push(admin2);
    await (await policyBucket(admin2)).delete('deny.offline');
    await until(() => again.rules().length === 0, 10_000, 'deletion after the restart applied');
    await again.agent.stop();
  }, 30_000);
});
