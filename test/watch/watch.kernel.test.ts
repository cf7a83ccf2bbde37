/**
 * vigil watch on this host (real BPF: tracepoints and uprobes; no LSM here).
 * The CLI's main() runs in this process; the view goes to a file (--json --out).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { EventStore } from '../../src/store/store.js';
import { firstLine } from '../cli/wait.js';

type Ev = Record<string, any>;

const dir = mkdtempSync(join(tmpdir(), 'vigil-watch-'));
let server: ChildProcess | null = null;
let port = 0;

async function watch(args: string[], out = join(dir, `out-${Math.random().toString(36).slice(2)}.jsonl`)): Promise<{ code: number; lines: Ev[]; out: string }> {
  process.exitCode = 0;
  await main(['node', 'vigil', 'watch', '--json', '--out', out, ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  const text = readFileSync(out, 'utf8');
  return { code, lines: text.split('\n').filter(Boolean).map((l) => JSON.parse(l)), out };
}

beforeAll(async () => {
  // a loopback TLS server with a self-signed certificate (openssl s_server answers each connection)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  const srv = `
    const https = require('node:https'); const fs = require('node:fs');
    const s = https.createServer({ key: fs.readFileSync(process.argv[1]), cert: fs.readFileSync(process.argv[2]) }, (q, r) => { r.end('hello-from-tls-server'); });
    s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));`;
  server = spawn(process.execPath, ['-e', srv, join(dir, 'key.pem'), join(dir, 'cert.pem')], { stdio: ['ignore', 'pipe', 'inherit'] });
  port = Number(await firstLine(server.stdout!));
});

afterAll(() => {
  server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('vigil watch', () => {
  it('reports the exec chain, the sensitive read, the connection and the curl request line in TLS plaintext', async () => {
    const url = `https://localhost:${port}/vigil-curl-probe`;
    const rule = join(__dirname, '../fixtures/sigma/rules/linux/process_creation/proc_creation_lnx_local_account.yml');
    const db = join(dir, 'watch.db');
    const { code, lines, out } = await watch(['--rules', rule, '--db', db, '--', 'sh', '-c', `cat /etc/shadow >/dev/null; curl -sk ${url} >/dev/null; exit 3`]);
    expect(code).toBe(3);
    expect(statSync(db).mode & 0o777).toBe(0o600);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const execs = lines.filter((e) => e.category === 'process_creation');
    const sh = execs.find((e) => e.CommandLine.startsWith('sh -c'));
    const cat = execs.find((e) => e.Image.endsWith('/cat'));
    const curl = execs.find((e) => e.Image.endsWith('/curl'));
    expect(sh && cat && curl).toBeTruthy();
    expect(cat!.ParentProcessId).toBe(sh!.ProcessId);
    expect(curl!.ParentProcessId).toBe(sh!.ProcessId);
    const shadow = lines.find((e) => e.category === 'file_access' && e.TargetFilename === '/etc/shadow');
    expect(shadow?.ProcessId).toBe(cat!.ProcessId);
    const alert = lines.find((e) => e.category === 'watch_alert' && e.signal === 'sensitive_access' && e.TargetFilename === '/etc/shadow');
    expect(alert).toBeTruthy();
    // the Sigma engine runs on the tree's events: cat of /etc/shadow is SigmaHQ's local account discovery
    const sigma = lines.find((e) => e.category === 'watch_alert' && e.signal === 'sigma' && e.ProcessId === cat!.ProcessId);
    expect(sigma?.rule_title).toBe('Local System Accounts Discovery - Linux');
    const conn = lines.find((e) => e.category === 'network_connection' && e.ProcessId === curl!.ProcessId && e.DestinationPort === port);
    expect(conn?.DestinationIp).toMatch(/^(127\.0\.0\.1|::1)$/);
    const sent = lines.filter((e) => e.category === 'tls_data' && e.ProcessId === curl!.ProcessId && e.Direction === 'send');
    expect(sent.some((e) => e.Data.startsWith('GET /vigil-curl-probe HTTP/1.1'))).toBe(true);
    const got = lines.filter((e) => e.category === 'tls_data' && e.ProcessId === curl!.ProcessId && e.Direction === 'receive');
    expect(got.some((e) => e.Data.includes('hello-from-tls-server'))).toBe(true);
    // curl's socket BIO writes inside SSL_write: the record names the socket, joined to the connection
    expect(sent.find((e) => e.Data.startsWith('GET /vigil-curl-probe'))!.vigil.fd).toBe(conn!.vigil.fd);
    const summary = lines.at(-1)!;
    expect(summary.category).toBe('watch_summary');
    expect(summary.exit_code).toBe(3);
    const ep = summary.endpoints.find((e: Ev) => e.port === port);
    expect(ep.tls_sent).toBeGreaterThan(0);
    expect(ep.tls_received).toBeGreaterThan(0);
    expect(summary.sensitive.map((s: Ev) => s.path)).toContain('/etc/shadow');
    expect(summary.endpoints.some((e: Ev) => e.port === port)).toBe(true);
    expect(summary.tls.sent_bytes).toBeGreaterThan(0);
    expect(summary.losses).toEqual({ kernel_ring_full: 0, bad_records: 0, scope_full: 0, sinks: 0 });
    // --db: the tree's events and its Sigma alert are in the store, as vigil events reads them
    const st = EventStore.open(db, { readonly: true });
    try {
      const stored = st.query({ kind: 'event', limit: 10_000 }).map((r) => JSON.parse(r.json));
      expect(stored.some((e) => e.category === 'process_creation' && e.ProcessId === cat!.ProcessId && e.Image.endsWith('/cat'))).toBe(true);
      expect(stored.some((e) => e.category === 'network_connection' && e.ProcessId === curl!.ProcessId)).toBe(true);
      const alerts = st.query({ kind: 'alert' }).map((r) => JSON.parse(r.json));
      expect(alerts.map((a) => a.rule_title)).toContain('Local System Accounts Discovery - Linux');
    } finally {
      st.close();
    }
  });

  it('captures a node HTTPS request (OpenSSL inside the node binary)', async () => {
    const js = `require('node:https').get({ host: '127.0.0.1', port: ${port}, path: '/vigil-node-probe', rejectUnauthorized: false }, (r) => { r.resume(); r.on('end', () => process.exit(0)); });`;
    const { code, lines } = await watch(['--', process.execPath, '-e', js]);
    expect(code).toBe(0);
    const sent = lines.filter((e) => e.category === 'tls_data' && e.Direction === 'send');
    const req = sent.find((e) => e.Data.startsWith('GET /vigil-node-probe HTTP/1.1'));
    expect(req).toBeTruthy();
    expect(req!.Library).toBe(execFileSync('readlink', ['-f', process.execPath]).toString().trim());
  });

  it('a private libssl copy the tree loads is hooked when the loader opens it', async () => {
    const lib = join(dir, 'lib');
    execFileSync('mkdir', ['-p', lib]);
    execFileSync('cp', [execFileSync('readlink', ['-f', '/usr/lib/x86_64-linux-gnu/libssl.so.3']).toString().trim(), join(lib, 'libssl.so.3')]);
    // a client that lives on after loading the library (the hook is placed when vigil sees the open:
    // a process that loads libssl and is done within milliseconds is missed, docs/watch.md)
    const req1 = `GET /vigil-private-libssl HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n`;
    // the request is sent once vigil has seen the loader open the copy (its file_access line is in the view; vigil
    // hooks the copy right after writing it), not after a fixed second: on a busy machine that may come too soon
    const out = join(dir, 'out-private-libssl.jsonl');
    const seen = `until grep -qF '"TargetFilename":"${lib}/libssl.so.3"' ${out}; do i=$((i+1)); [ $i -lt 600 ] || break; sleep 0.05; done`;
    const { code, lines } = await watch(['--', 'sh', '-c', `(i=0; ${seen}; sleep 1; printf '${req1}'; sleep 1) | LD_LIBRARY_PATH=${lib} openssl s_client -connect 127.0.0.1:${port} -quiet >/dev/null 2>&1; true`], out);
    expect(code).toBe(0);
    expect(lines.some((e) => e.category === 'file_access' && e.TargetFilename === join(lib, 'libssl.so.3'))).toBe(true);
    const req = lines.find((e) => e.category === 'tls_data' && e.Data.startsWith('GET /vigil-private-libssl HTTP/1.1'));
    expect(req?.Library).toBe(join(lib, 'libssl.so.3'));
  });

  it('a shell started by a non-shell in the tree is an alert with its -c payload; processes outside the tree produce no events', async () => {
    // an unrelated process, started before and running during the watch, outside the tree
    const marker = join(dir, 'outside-marker');
    // runs for the whole watch (killed after it): every iteration reads /etc/shadow and writes the marker
    const outside = spawn('sh', ['-c', `while :; do cat /etc/shadow >/dev/null; echo x > ${marker}; sleep 0.05; done`], { stdio: 'ignore' });
    const outsideDone = new Promise((r) => outside.once('exit', r));
    const js = `require('node:child_process').execFileSync('/bin/sh', ['-c', 'echo vigil-payload >/dev/null']); setTimeout(() => {}, 400);`;
    const { code, lines } = await watch(['--', process.execPath, '-e', js]);
    outside.kill();
    await outsideDone;
    expect(statSync(marker).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(code).toBe(0);
    const shellAlert = lines.find((e) => e.category === 'watch_alert' && e.signal === 'shell_spawn');
    expect(shellAlert?.payload).toBe('echo vigil-payload >/dev/null');
    const pids = new Set(lines.filter((e) => e.ProcessId !== undefined && e.category !== 'watch_alert').map((e) => e.ProcessId));
    expect(pids.has(outside.pid!)).toBe(false);
    expect(lines.some((e) => e.TargetFilename === marker)).toBe(false);
    expect(lines.some((e) => e.category === 'file_access' && e.TargetFilename === '/etc/shadow')).toBe(false);
  });

  it('human view: control characters escaped; curl | sh is a pipe_to_shell alert', async () => {
    const out = join(dir, 'view.txt');
    process.exitCode = 0;
    await main(['node', 'vigil', 'watch', '--out', out, '--', 'sh', '-c', `echo '\x1b[2Jvigil-esc' >/dev/null; curl -sk https://localhost:${port}/x | sh 2>/dev/null; true`]);
    expect(process.exitCode).toBe(0);
    const view = readFileSync(out, 'utf8');
    expect(view).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(view).toContain('\\x1b[2Jvigil-esc');
    expect(view).toMatch(/! ALERT pipe_to_shell: curl \(\d+\) and shell \/usr\/bin\/dash \(\d+\)/);
    expect(view).toContain('── vigil watch summary');
  });

  it('--user runs the command as that user (uid, euid, User) and keeps it in the tree', async () => {
    const { code, lines } = await watch(['--user', 'nobody', '--', 'sh', '-c', 'id -u >/dev/null; exit 0']);
    expect(code).toBe(0);
    const id = lines.find((e) => e.category === 'process_creation' && e.Image.endsWith('/id'));
    expect(id?.vigil.uid).toBe(65534);
    expect(id?.vigil.euid).toBe(65534);
    expect(id?.User).toBe('nobody');
  });

  it('shells.action: deny needs BPF LSM: refused here (exit 3) without running the command', async () => {
    const p = join(dir, 'deny.yaml');
    writeFileSync(p, 'shells:\n  action: deny\n');
    const errs: string[] = [];
    const w = process.stderr.write.bind(process.stderr);
    (process.stderr as { write: unknown }).write = (s: string) => (errs.push(String(s)), true);
    try {
      process.exitCode = 0;
      await main(['node', 'vigil', 'watch', '--policy', p, '--', 'touch', join(dir, 'must-not-exist-2')]);
    } finally {
      (process.stderr as { write: unknown }).write = w;
    }
    expect(process.exitCode).toBe(3);
    process.exitCode = 0;
    expect(errs.join('')).toMatch(/shells\.action: deny .*\[unavailable\.bpf_lsm\]/);
    expect(() => statSync(join(dir, 'must-not-exist-2'))).toThrow();
    writeFileSync(p, 'sensitive:\n  action: deny\n');
    errs.length = 0;
    (process.stderr as { write: unknown }).write = (s: string) => (errs.push(String(s)), true);
    try {
      await main(['node', 'vigil', 'watch', '--policy', p, '--', 'touch', join(dir, 'must-not-exist-2')]);
    } finally {
      (process.stderr as { write: unknown }).write = w;
    }
    expect(process.exitCode).toBe(3);
    process.exitCode = 0;
    expect(errs.join('')).toMatch(/sensitive\.action: deny .*\[unavailable\.bpf_lsm\]/);
    expect(() => statSync(join(dir, 'must-not-exist-2'))).toThrow();
  });

  it('refuses to start with a bad policy: file:line and the key', async () => {
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, 'sensitive:\n  paths:\n    - ~/.ssh/\nnetwork:\n  allow:\n    - 10.0.0.0/99\n');
    const errs: string[] = [];
    const w = process.stderr.write.bind(process.stderr);
    (process.stderr as { write: unknown }).write = (s: string) => (errs.push(String(s)), true);
    try {
      process.exitCode = 0;
      await main(['node', 'vigil', 'watch', '--policy', p, '--', 'touch', join(dir, 'must-not-exist')]);
    } finally {
      (process.stderr as { write: unknown }).write = w;
    }
    expect(process.exitCode).toBe(4);
    process.exitCode = 0;
    expect(errs.join('')).toContain(`${p}:6: network.allow[0]:`);
    expect(() => statSync(join(dir, 'must-not-exist'))).toThrow();
  });
});
