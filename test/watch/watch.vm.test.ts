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
});
