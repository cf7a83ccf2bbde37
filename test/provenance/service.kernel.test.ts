/**
 * The provenance service's record building (root: trusted.* xattrs) from the
 * events the sensors emit: the host name the network sensor resolved, a file
 * that moved before its record was written, a derived file keeping its root's
 * peer, and re-arming only stored marks whose path still names the same inode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDev } from '../../src/enforcement/index.js';
import { getXattr } from '../../src/kernel/xattr.js';
import { ORIGIN_XATTR, ProvenanceService, ProvenanceStore, parseOrigin } from '../../src/provenance/index.js';

let dir: string;
let store: ProvenanceStore;
let svc: ProvenanceService;

function ids(p: string) {
  const st = statSync(p, { bigint: true });
  return { dev: kernelDev(st.dev), ino: st.ino.toString() };
}

function markEvent(path: string, vigil: Record<string, unknown>, at = ids(path)) {
  return {
    category: 'file_provenance', timestamp: '2026-11-30T00:00:00.000000Z', Hostname: 'h', ProcessId: 4242, ProcessGuid: 'g', Image: '/usr/bin/wget', User: 'root', TargetFilename: path,
    vigil: { comm: 'wget', uid: 0, dev: at.dev, ino: at.ino, depth: 0, origin: 'network', created: true, ...vigil },
  };
}

const origin = (p: string) => {
  const r = parseOrigin(getXattr(p, ORIGIN_XATTR)!);
  if (!r.ok) throw new Error(r.detail);
  return r.record;
};

beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'vigil-provsvc-')));
  store = ProvenanceStore.open(join(dir, 'vigil.db'));
  svc = new ProvenanceService({ mode: 'monitor', store, host: 'box' });
});

afterAll(() => {
  svc?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('provenance service', () => {
  it('names the host the network sensor saw resolved to the remote address', () => {
    const f = join(dir, 'a');
    writeFileSync(f, 'x');
    svc.handle({ category: 'network_connection', DestinationIp: '198.18.0.7', DestinationHostname: 'files.example.test' });
    svc.handle(markEvent(f, { remote_address: '198.18.0.7', remote_port: 443, network_time: '2026-11-30T00:00:00.000000Z' }));
    expect(origin(f)).toMatchObject({ kind: 'network', exe: '/usr/bin/wget', comm: 'wget', pid: 4242, host: 'box', remote: { address: '198.18.0.7', port: 443, host: 'files.example.test' } });
    expect(store.get(ids(f).dev, ids(f).ino)?.path).toBe(f);
  });

  it('a derived file keeps its root\'s peer and names its source', () => {
    const src = join(dir, 'a');
    const f = join(dir, 'b');
    writeFileSync(f, 'x');
    const s = ids(src);
    svc.handle(markEvent(f, { origin: 'derived', depth: 1, derived_from: { dev: s.dev, ino: s.ino, depth: 1 } }));
    expect(origin(f)).toMatchObject({ kind: 'derived', depth: 1, derived_from: { path: src, dev: s.dev, ino: s.ino }, remote: { host: 'files.example.test' } });
  });

  it('a file that moved or was replaced before its record was written is counted, not written', () => {
    const f = join(dir, 'c');
    writeFileSync(f, 'x');
    const at = ids(f);
    renameSync(f, join(dir, 'c2'));
    writeFileSync(f, 'new'); // another inode at the same path
    const before = svc.counters.moved;
    svc.handle(markEvent(f, { remote_address: '198.18.0.7', remote_port: 443 }, at));
    expect(svc.counters.moved).toBe(before + 1);
    expect(getXattr(f, ORIGIN_XATTR)).toBeNull();
  });
});
