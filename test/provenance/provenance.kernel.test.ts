/**
 * File provenance on this kernel (no BPF LSM here: monitor mode from
 * tracepoints): the scenario in scenario.ts, and inode-number reuse (ext4, this
 * host's /tmp; the VM's /tmp is tmpfs, whose inode numbers are never reused).
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProvenanceService, ProvenanceStore, showMark } from '../../src/provenance/index.js';
import { drainUntil, markEvent, provenanceAgent, provenanceScenario } from './scenario.js';
import { completeLines } from '../cli/wait.js';

describe('in-process agent', () => provenanceScenario('file provenance (real BPF, monitor mode on this kernel)'));

describe('a marked file deleted, its inode number reused', () => {
  it('a file a network-touched process creates over the inode number of a deleted marked file gets a mark and an origin record of its own', async () => {
    // ext4 (this host's /tmp) hands a freed inode number to the next file created
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'vigil-prov-reuse-')));
    const server = createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const store = ProvenanceStore.open(join(dir, 'vigil.db'));
    const events: Array<Record<string, any>> = [];
    const svc = new ProvenanceService({ mode: 'monitor', store, host: hostname(), onError: (e) => { throw e; } });
    const agent = provenanceAgent(svc, events);
    const until = <T>(what: string, pred: () => T | undefined | false) => drainUntil(() => agent, what, pred);
    const markOf = (p: string) => markEvent(events, p);
    try {
      // one process: touches the network, writes `first`, waits, deletes it, then creates files until one has its inode number
      const py = spawn('python3', ['-c', [
        'import os, socket, sys',
        `socket.create_connection(("127.0.0.1", ${port})).close()`,
        `d = ${JSON.stringify(dir)}`,
        'a = os.path.join(d, "first")',
        'open(a, "w").write("one")',
        'ino = os.stat(a).st_ino',
        'print(ino, flush=True)',
        'sys.stdin.readline()',
        'os.unlink(a)',
        'for i in range(200):',
        '    p = os.path.join(d, "new%d" % i)',
        '    open(p, "w").write("two")',
        '    if os.stat(p).st_ino == ino:',
        '        print(p, flush=True)',
        '        break',
        'else:',
        '    print("no reuse", flush=True)',
      ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
      // whole lines only: a 'data' chunk may end part-way through one
      let out = '';
      let lines: string[] = [];
      py.stdout.setEncoding('utf8');
      py.stdout.on('data', (d: string) => {
        out += d;
        lines = completeLines(out);
      });
      await until('the first file', () => lines.length > 0);
      const first = join(dir, 'first');
      await until('the mark of the first file', () => markOf(first));
      py.stdin.write('go\n');
      const reused = await until('the file over the reused inode number', () => lines[1]);
      expect(reused, 'ext4 gives the freed inode number to a file created next in the same directory').not.toBe('no reuse');
      // the kernel did not take the old (stale) mark for this file's own: a new mark event, a new origin record
      const ev = await until('the mark of the new file', () => markOf(reused));
      expect(ev.vigil).toMatchObject({ origin: 'network', created: true });
      expect(statSync(reused, { bigint: true }).ino.toString()).toBe(lines[0]);
      const r = showMark(reused, store, 'monitor');
      expect(r.origin).toMatchObject({ ok: true, record: { kind: 'network', path: reused } });
      py.kill();
    } finally {
      await agent.stop();
      svc.close();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
