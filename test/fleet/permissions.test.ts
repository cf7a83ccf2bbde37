/**
 * Least privilege, against a real nats-server on loopback: a host's user may publish
 * only its own events, alerts and status, read the policy, and nothing else. The
 * agent's fleet side works within that (events out, policy in, heartbeat); the same
 * credentials cannot publish as another host, write the policy or another host's
 * status. The server config is the one docs/fleet.md shows (docs/fleet/nats-server.conf).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { RulesStore } from '../../src/enforcement/index.js';
import { FleetAgent, connectFleet, ensureStreams, hostsBucket, policyBucket, readBatches } from '../../src/fleet/index.js';
import { startNats, type NatsServer } from './nats.js';

let srv: NatsServer;
let dir: string;
let admin: NatsConnection;
const creds = (user: string, password: string) => {
  const f = join(dir, `${user}.creds`);
  writeFileSync(f, `user: ${user}\npassword: ${password}\n`, { mode: 0o600 });
  return f;
};

beforeAll(async () => {
  // the documented config, its passwords replaced; listen address and store come from the test's flags
  const conf = readFileSync(new URL('../../docs/fleet/nats-server.conf', import.meta.url), 'utf8')
    .replace(/^listen:.*$/m, '')
    .replace(/^jetstream \{[^}]*\}/m, '')
    .replace(/ADMIN-PASSWORD/g, 'admin-test-pw')
    .replace(/WEB-01-PASSWORD/g, 'web-test-pw')
    .replace(/DB-01-PASSWORD/g, 'db-test-pw');
  srv = await startNats({ config: conf });
  dir = mkdtempSync(join(tmpdir(), 'vigil-fleet-perm-'));
  admin = await connectFleet({ url: srv.url, creds: creds('admin', 'admin-test-pw') });
  await ensureStreams(admin);
  await policyBucket(admin);
  await hostsBucket(admin);
});
afterAll(async () => {
  await admin?.close();
  await srv?.stop();
});

async function until<T>(f: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a host\'s credentials (docs/fleet/nats-server.conf)', () => {
  it('are enough for the agent: events out, policy in, heartbeat', async () => {
    const state = join(dir, 'web-01');
    const db = join(state, 'vigil.db');
    const logs: string[] = [];
    const f = new FleetAgent({ url: srv.url, creds: creds('web-01', 'web-test-pw'), hostId: 'web-01', stateDir: state, rulesDb: db, log: pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s).msg) }), heartbeatMs: 300, lingerMs: 20 });
    await f.start({ enforcement: () => 'enforce' });
    await until(() => f.publisher.stats().connected, 5000, 'connected');
    await (await policyBucket(admin)).put('deny.perm', JSON.stringify({ path: '/opt/perm-test' }));
    const ev = { category: 'process_creation', CommandLine: 'perm-test' };
    f.sink.write({ kind: 'event', value: ev, json: JSON.stringify(ev) });
    await until(() => f.publisher.stats().published === 1, 5000, 'event acknowledged');
    const rules = () => {
      const s = RulesStore.open(db);
      try {
        return s.list();
      } finally {
        s.close();
      }
    };
    await until(() => rules().some((r) => r.path === '/opt/perm-test'), 5000, 'policy applied');
    const hosts = await hostsBucket(admin);
    for (let i = 0; i < 40 && !(await hosts.get('web-01')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(JSON.parse((await hosts.get('web-01'))!.string())).toMatchObject({ host: 'web-01', enforcement: 'enforce' });
    const got: string[] = [];
    for await (const b of readBatches(admin, 'event', { host: 'web-01' })) got.push(...b.records);
    expect(got.map((l) => JSON.parse(l).CommandLine)).toEqual(['perm-test']);
    expect(logs.filter((l) => /violation|denied/i.test(l))).toEqual([]);
    await f.stop();
  });

  it('cannot publish as another host, write the policy, or write another host\'s status', async () => {
    const nc = await connectFleet({ url: srv.url, creds: creds('web-01', 'web-test-pw'), timeoutMs: 2000 });
    try {
      const js = jetstream(nc, { timeout: 2000 });
      await expect(js.publish('vigil.events.db-01.process_creation', '{}')).rejects.toThrow(/permission|timeout/i);
      await expect(js.publish('vigil.alerts.db-01.high', '{}')).rejects.toThrow(/permission|timeout/i);
      const kv = await new Kvm(js).open('vigil-policy');
      await expect(kv.put('deny.evil', JSON.stringify({ path: '/usr/bin/sshd' }))).rejects.toThrow(/permission|timeout/i);
      await expect(kv.delete('deny.perm')).rejects.toThrow(/permission|timeout/i);
      const hosts = await new Kvm(js).open('vigil-hosts');
      await expect(hosts.put('db-01', '{"state":"running"}')).rejects.toThrow(/permission|timeout/i);
      // its own subjects work on the same connection
      expect((await js.publish('vigil.events.web-01.process_creation', '{}')).duplicate).toBe(false);
    } finally {
      await nc.close();
    }
    const pol = await policyBucket(admin);
    expect(await pol.get('deny.evil')).toBeNull();
    expect((await pol.get('deny.perm'))?.operation).toBe('PUT');
    expect(await (await hostsBucket(admin)).get('db-01')).toBeNull();
    let other = 0;
    for await (const b of readBatches(admin, 'event', { host: 'db-01' })) other += b.records.length;
    expect(other).toBe(0);
  });
});
