/**
 * vigil watch with `shells.action: deny` inside the test VM (BPF LSM active;
 * node test/vm/suite.mjs): a shell exec below the watched root fails with EPERM
 * in the kernel, the same shell outside the tree runs. main() runs in this process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';

const inVm = process.env.VIGIL_IN_VM === '1';
const dir = mkdtempSync(join(tmpdir(), 'vigil-watch-vm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!inVm)('vigil watch: shells denied inside the tree (BPF LSM)', () => {
  it('sh -c below the root fails with EPERM; the same shell outside the tree works', async () => {
    const policy = join(dir, 'deny.yaml');
    writeFileSync(policy, 'shells:\n  action: deny\ntls:\n  enabled: false\n');
    const out = join(dir, 'out.jsonl');
    const inner = join(dir, 'inner');
    const nodeSays = join(dir, 'node-says');
    const js = join(dir, 'spawn-shell.cjs');
    // node (not a shell) at depth 1 starts a shell: execve fails with EPERM
    writeFileSync(js, `const r = require('node:child_process').spawnSync('/bin/sh', ['-c', 'exit 0']); require('node:fs').writeFileSync(${JSON.stringify(nodeSays)}, String(r.error ? r.error.code : r.status));`);
    // the root may be a shell (depth 0); its children may not exec one: dash reports 126
    const cmd = `/bin/sh -c 'exit 0'; echo $? > ${inner}; ${process.execPath} ${js}; sleep 1`;
    process.exitCode = 0;
    const watching = main(['node', 'vigil', 'watch', '--json', '--out', out, '--policy', policy, '--', '/bin/sh', '-c', cmd]);
    for (let i = 0; i < 1200 && !existsSync(nodeSays); i++) await sleep(50);
    // outside the tree, while the watch runs: the same shell works
    const outside = spawnSync('/bin/sh', ['-c', 'exit 7']);
    await watching;
    expect(process.exitCode).toBe(0);
    process.exitCode = 0;
    expect(outside.error).toBeUndefined();
    expect(outside.status).toBe(7);
    expect(readFileSync(inner, 'utf8').trim()).toBe('126');
    expect(readFileSync(nodeSays, 'utf8')).toBe('EPERM');
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const denied = lines.filter((e) => e.category === 'watch_alert' && e.signal === 'shell_denied');
    expect(denied.length).toBe(2);
    const summary = lines.at(-1);
    expect(summary.category).toBe('watch_summary');
    expect(summary.blocked.length).toBe(2);
  });

  it('sensitive.action: deny: opening a sensitive file fails with EPERM inside the tree; outside it opens', async () => {
    const secretDir = join(dir, 'secret');
    spawnSync('mkdir', ['-p', join(secretDir, 'sub')]);
    writeFileSync(join(secretDir, 'sub', 'key'), 'k\n');
    writeFileSync(join(dir, 'plain'), 'p\n');
    const policy = join(dir, 'files.yaml');
    writeFileSync(policy, `sensitive:\n  defaults: false\n  paths: [${secretDir}/]\n  action: deny\ntls:\n  enabled: false\n`);
    const out = join(dir, 'out2.jsonl');
    const res = join(dir, 'res');
    const ready = join(dir, 'ready');
    const cmd = `cat ${secretDir}/sub/key >/dev/null 2>&1; echo key=$? > ${res}; cat ${dir}/plain >/dev/null; echo plain=$? >> ${res}; touch ${ready}; sleep 1`;
    process.exitCode = 0;
    const watching = main(['node', 'vigil', 'watch', '--json', '--out', out, '--policy', policy, '--', '/bin/sh', '-c', cmd]);
    for (let i = 0; i < 1200 && !existsSync(ready); i++) await sleep(50);
    const outside = spawnSync('cat', [join(secretDir, 'sub', 'key')], { encoding: 'utf8' });
    await watching;
    expect(process.exitCode).toBe(0);
    process.exitCode = 0;
    expect(outside.status).toBe(0);
    expect(outside.stdout).toBe('k\n');
    expect(readFileSync(res, 'utf8')).toBe('key=1\nplain=0\n');
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const denied = lines.filter((e) => e.category === 'watch_alert' && e.signal === 'file_denied');
    expect(denied.map((e) => e.TargetFilename)).toEqual([join(secretDir, 'sub', 'key')]);
    expect(lines.at(-1).blocked.length).toBe(1);
  });

  it('network.action: deny and files.action: deny: outside the allow list connect/sendto fail with EPERM in the tree (IPv4-mapped too), allowed and loopback peers are not refused, a blocked file does not open; outside the tree nothing is refused', async () => {
    const blockDir = join(dir, 'blocked');
    spawnSync('mkdir', ['-p', blockDir]);
    writeFileSync(join(blockDir, 'data'), 'd\n');
    const policy = join(dir, 'net.yaml');
    writeFileSync(policy, `network:\n  action: deny\n  allow: [10.9.0.0/16]\nfiles:\n  block: [${blockDir}/]\n  action: deny\nsensitive:\n  defaults: false\ntls:\n  enabled: false\n`);
    const out = join(dir, 'out3.jsonl');
    const res = join(dir, 'net-res.json');
    const js = join(dir, 'net-probe.cjs');
    // each attempt answers with its error code: EPERM only from the guard; an allowed
    // address with no route gives ENETUNREACH (or times out), never EPERM
    writeFileSync(js, `
const net = require('node:net'), dgram = require('node:dgram'), fs = require('node:fs');
const tryConnect = (host, port) => new Promise((r) => { const s = net.connect({ host, port }); const t = setTimeout(() => { s.destroy(); r('timeout'); }, 3000); s.on('connect', () => { clearTimeout(t); s.destroy(); r('ok'); }); s.on('error', (e) => { clearTimeout(t); r(e.code); }); });
(async () => {
  const srv = net.createServer((c) => c.end()).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const out = {};
  out.loopback = await tryConnect('127.0.0.1', srv.address().port);
  out.denied = await tryConnect('10.8.0.1', 80);
  out.allowed = await tryConnect('10.9.0.1', 80);
  out.mapped = await tryConnect('::ffff:10.8.0.1', 80);
  const u = dgram.createSocket('udp4');
  out.udp = await new Promise((r) => u.send('x', 53, '10.8.0.2', (e) => r(e ? e.code : 'ok')));
  u.close();
  try { fs.readFileSync(${JSON.stringify(join(blockDir, 'data'))}); out.blocked = 'ok'; } catch (e) { out.blocked = e.code; }
  srv.close();
  fs.writeFileSync(${JSON.stringify(res)}, JSON.stringify(out));
  await new Promise((r) => setTimeout(r, 1000));
})();
`);
    process.exitCode = 0;
    const watching = main(['node', 'vigil', 'watch', '--json', '--out', out, '--policy', policy, '--', process.execPath, js]);
    for (let i = 0; i < 1200 && !existsSync(res); i++) await sleep(50);
    // outside the tree, while the watch runs: the same address is not refused by vigil
    const outside = spawnSync(process.execPath, ['-e', `require('node:net').connect({ host: '10.8.0.1', port: 80 }).on('error', (e) => { console.log(e.code); process.exit(0); }).setTimeout(2000, () => { console.log('timeout'); process.exit(0); })`], { encoding: 'utf8' });
    await watching;
    expect(process.exitCode).toBe(0);
    process.exitCode = 0;
    expect(outside.stdout.trim()).not.toBe('EPERM');
    const r = JSON.parse(readFileSync(res, 'utf8'));
    expect(r).toMatchObject({ loopback: 'ok', denied: 'EPERM', mapped: 'EPERM', udp: 'EPERM', blocked: 'EPERM' });
    expect(r.allowed).not.toBe('EPERM');
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const net = lines.filter((e) => e.category === 'watch_alert' && e.signal === 'network_denied');
    expect(net.map((e) => `${e.DestinationIp}:${e.DestinationPort}`).sort()).toEqual(['10.8.0.1:80', '10.8.0.2:53', '::ffff:10.8.0.1:80']);
    const files = lines.filter((e) => e.category === 'watch_alert' && e.signal === 'file_denied');
    expect(files.map((e) => e.TargetFilename)).toEqual([join(blockDir, 'data')]);
    expect(files[0].message).toContain('files.action: deny');
    expect(lines.at(-1).blocked.length).toBe(4);
  });
});
