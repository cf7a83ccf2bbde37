/**
 * The provenance scenario, run on this host (provenance.kernel.test.ts: no BPF
 * LSM, monitor mode from tracepoints) and in the VM suite on every kernel
 * (provenance.vm.test.ts: the compat build on 5.10, BPF LSM active). Real BPF (the network and file sensors' objects sharing
 * vigil_taint and vigil_marks), a real HTTP server on loopback, real curl and
 * cp: the download gets an origin record naming the server, its copy a
 * derived one; bad records are reported; doctor says nothing is blocked here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { chmodSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Agent } from '../../src/agent/agent.js';
import { SENSORS, EventSchema } from '../../src/sensors/index.js';
import { encodeMarkXattr, MARKS_MAP, MARK_XATTR, markKey, TaintFlags } from '../../src/events/taint.js';
import { ProvenanceService, ProvenanceStore, showMark, markFile, clearFile, ORIGIN_XATTR, type MarkedExec } from '../../src/provenance/index.js';
import { getXattr, setXattr } from '../../src/kernel/xattr.js';
import { markXattrInKernel } from '../../src/provenance/mark-xattr.js';
import { kernelDev } from '../../src/enforcement/index.js';
import { runDoctor } from '../../src/doctor/doctor.js';

type Ev = Record<string, any>;

/**
 * An agent with every sensor and provenance on (loopback peers count as network),
 * started, its marks re-armed by `svc`; every event goes to `events` and to `svc`.
 */
export function provenanceAgent(svc: ProvenanceService, events: Ev[]): Agent {
  const agent = new Agent({
    sinks: [],
    sensors: Object.fromEntries(SENSORS.map((s) => [s.name, s.config.parse(undefined) as { enabled: boolean }])),
    provenance: { loopback: true, maxDepth: 4 },
    onEvent: (ev) => {
      events.push(ev);
      svc.handle(ev);
    },
  });
  agent.start();
  svc.rearm(agent.sharedMaps.get(MARKS_MAP));
  return agent;
}

/** Drain the agent's rings until pred holds (the reader also runs on its own timer). */
export async function drainUntil<T>(agent: () => Agent, what: string, pred: () => T | undefined | null | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    for (const s of agent().sensors) s.drain();
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The mark event of a path among the events. */
export const markEvent = (events: Ev[], path: string) => events.find((e) => e.category === 'file_provenance' && e.TargetFilename === path);

/** Defines the suite (call at the top level of a test file). */
export function provenanceScenario(title: string): void {
  let dir: string;
  let server: Server;
  let port: number;
  let agent: Agent;
  let svc: ProvenanceService;
  let store: ProvenanceStore;
  const events: Ev[] = [];
  const markedExecs: MarkedExec[] = [];
  const BODY = '#!/bin/sh\necho downloaded\n';

  function run(cmd: string, args: string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      const c = spawn(cmd, args, { stdio: 'ignore' });
      c.on('error', reject);
      c.on('exit', (code) => resolve(code ?? -1));
    });
  }

  const until = <T>(what: string, pred: () => T | undefined | null | false, ms = 10_000) => drainUntil(() => agent, what, pred, ms);
  const markOf = (path: string) => markEvent(events, path);

  beforeAll(async () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'vigil-prov-')));
    const TRUE = readFileSync(realpathSync('/bin/true'));
    server = createServer((req, res) => res.end(req.url === '/true' ? TRUE : BODY));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    store = ProvenanceStore.open(join(dir, 'vigil.db'));
    svc = new ProvenanceService({ mode: 'monitor', store, host: hostname(), onError: (e) => { throw e; }, onMarkedExec: (x) => markedExecs.push(x) });
    agent = provenanceAgent(svc, events);
  });

  afterAll(async () => {
    await agent?.stop();
    svc?.close();
    await new Promise((r) => server?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe(title, () => {
    it('curl from a loopback HTTP server writes a file: it is marked in the kernel and has an origin record naming the server', async () => {
      const dl = join(dir, 'dl.sh');
      expect(await run('curl', ['-sf', '-o', dl, `http://127.0.0.1:${port}/x`])).toBe(0);
      const ev = await until('the mark event of the download', () => markOf(dl));
      expect(EventSchema.safeParse(ev).success).toBe(true);
      expect(ev.Image).toBe(realpathSync('/usr/bin/curl'));
      expect(ev.vigil).toMatchObject({ origin: 'network', depth: 0, remote_address: '127.0.0.1', remote_port: port, created: true });

      // the kernel marked the inode itself (exec right after is covered without userspace)
      const st = statSync(dl, { bigint: true });
      expect(agent.sharedMaps.get(MARKS_MAP)!.lookup(markKey(kernelDev(st.dev), st.ino))).not.toBeNull();

      const r = showMark(dl, store, 'monitor');
      expect(r.origin).toMatchObject({ ok: true, record: { v: 1, kind: 'network', path: dl, exe: realpathSync('/usr/bin/curl'), comm: 'curl', remote: { address: '127.0.0.1', port } } });
      expect(r.stored?.path).toBe(dl);
      expect(r.verdict.exec).toBe('allowed');
      // the raw xattr is the documented JSON
      expect(JSON.parse(getXattr(dl, ORIGIN_XATTR)!.toString()).v).toBe(1);
      // where the kernel reads it (6.15+), the mark the exec guard reads itself: 16 bytes, magic VGM1, depth 0
      expect(r.markAttribute).toBe(markXattrInKernel() ? 'present' : undefined);
      if (markXattrInKernel()) expect(getXattr(dl, MARK_XATTR)).toEqual(encodeMarkXattr(0, TaintFlags.NET));
    });

    it('cp of the download is marked as derived from it (bounded depth), and its chain leads to the server', async () => {
      const dl = join(dir, 'dl.sh');
      const copy = join(dir, 'copy.sh');
      expect(await run('cp', [dl, copy])).toBe(0);
      const ev = await until('the mark event of the copy', () => markOf(copy));
      const src = statSync(dl, { bigint: true });
      expect(ev.vigil).toMatchObject({ origin: 'derived', depth: 1, derived_from: { dev: kernelDev(src.dev), ino: src.ino.toString(), depth: 1 } });
      expect(ev.vigil.remote_address).toBeUndefined(); // cp itself never touched the network
      const r = showMark(copy, store, 'monitor');
      expect(r.origin).toMatchObject({ ok: true, record: { kind: 'derived', depth: 1, derived_from: { path: dl }, remote: { address: '127.0.0.1', port } } });
      expect(r.chain).toHaveLength(1);
      expect(r.chain[0]).toMatchObject({ path: dl, state: 'marked', record: { kind: 'network' } });
    });

    it('monitor: executing a downloaded program runs (nothing is blocked) and is reported with its origin; an unmarked program is not', async () => {
      const dl = join(dir, 'true');
      expect(await run('curl', ['-sf', '-o', dl, `http://127.0.0.1:${port}/true`])).toBe(0);
      await until('the mark event of the downloaded program', () => markOf(dl));
      chmodSync(dl, 0o755);
      const r = spawnSync(dl);
      expect(r.status).toBe(0);
      const st = statSync(dl, { bigint: true });
      const x = await until('the marked exec', () => markedExecs.find((m) => m.ino === st.ino.toString()));
      expect(x).toMatchObject({ image: dl, dev: kernelDev(st.dev), depth: 0, record: { kind: 'network', remote: { address: '127.0.0.1', port } } });
      expect(x.pid).toBe(r.pid);
      expect(spawnSync('/bin/true').status).toBe(0);
      await until('the exec of /bin/true', () => events.find((e) => e.category === 'process_creation' && e.Image === realpathSync('/bin/true')));
      expect(markedExecs.filter((m) => m.image === realpathSync('/bin/true'))).toEqual([]);
    });

    it('a process that never touched the network writes unmarked files', async () => {
      const plain = join(dir, 'plain.txt');
      expect(await run('/bin/sh', ['-c', `echo hi > ${plain}`])).toBe(0);
      await until('the file event of the plain write', () => events.find((e) => e.category === 'file_event' && e.TargetFilename === plain));
      expect(markOf(plain)).toBeUndefined();
      expect(showMark(plain, store, 'monitor').origin).toBeNull();
    });

    it('bad records (garbage, truncated, another version, wrong fields) are reported, never thrown', () => {
      const f = join(dir, 'bad');
      writeFileSync(f, 'x');
      const cases: Array<[Buffer, string]> = [
        [Buffer.from([0xff, 0xfe, 0x00, 0x01]), 'garbage'],
        [Buffer.from('hello'), 'garbage'],
        [Buffer.from('{"v":1,"kind":"netw'), 'truncated'],
        [Buffer.from('{"v":1,'), 'truncated'],
        [Buffer.from('{"v":2,"kind":"network"}'), 'version'],
        [Buffer.from('{"v":1,"kind":"network"}'), 'invalid'],
      ];
      for (const [bytes, problem] of cases) {
        setXattr(f, ORIGIN_XATTR, bytes);
        const r = showMark(f, store, 'monitor');
        expect(r.origin, bytes.toString('hex')).toMatchObject({ ok: false, problem });
      }
    });

    it('marks survive an agent restart: the next agent re-arms them from the store, and a copy made then is still derived', async () => {
      await agent.stop();
      const before = svc.counters.rearmed;
      agent = provenanceAgent(svc, events);
      expect(svc.counters.rearmed - before).toBeGreaterThanOrEqual(3); // dl.sh, copy.sh, true
      const dl = join(dir, 'dl.sh');
      const copy = join(dir, 'copy-after-restart.sh');
      expect(await run('cp', [dl, copy])).toBe(0);
      const ev = await until('the mark event of the copy made after the restart', () => markOf(copy));
      expect(ev.vigil).toMatchObject({ origin: 'derived', depth: 1 });
      expect(showMark(copy, store, 'monitor').chain[0]).toMatchObject({ path: dl, state: 'marked' });
    });

    it('mark and clear by hand', () => {
      const f = join(dir, 'manual');
      writeFileSync(f, 'x');
      markFile(f, store, { exe: process.execPath, pid: process.pid, uid: 0 });
      expect(showMark(f, store, 'monitor').origin).toMatchObject({ ok: true, record: { kind: 'manual' } });
      expect(showMark(f, store, 'monitor').markAttribute).toBe(markXattrInKernel() ? 'present' : undefined);
      expect(clearFile(f, store)).toEqual({ xattr: true, stored: true });
      expect(showMark(f, store, 'monitor')).toMatchObject({ origin: null, stored: null });
      expect(showMark(f, store, 'monitor').markAttribute).toBe(markXattrInKernel() ? 'absent' : undefined);
    });

    it('doctor says whether marked files are blocked here, and why not', async () => {
      const report = await runDoctor();
      const c = report.checks.find((x) => x.id === 'provenance')!;
      expect(c.detail).toMatch(/marking works/);
      const lsm = report.checks.find((x) => x.id === 'bpf_lsm')!;
      if (lsm.status === 'ok') expect(c.detail).toMatch(/exec policy on marked files available \(BPF LSM\): --provenance enforce refuses/);
      else expect(c.detail).toMatch(/marked files are not blocked here: BPF LSM unavailable \(.+\)/);
      // tamper protection: where BPF LSM works, doctor loaded the hooks (the verifier checked their arguments on this kernel)
      const t = report.checks.find((x) => x.id === 'provenance_tamper')!;
      if (lsm.status === 'ok') expect(t).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^holds while vigil run runs/) });
      else expect(t).toMatchObject({ status: 'missing', detail: expect.stringMatching(/^does not hold here: BPF LSM unavailable \(.+\); without it a file's owner still cannot remove/) });
    });
  });
}
