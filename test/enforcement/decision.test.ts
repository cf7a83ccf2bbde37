import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decisionEvent, type DecisionRecord } from '../../src/enforcement/decision.js';
import { ProcessContext } from '../../src/process/context.js';
import { ProcessTable } from '../../src/process/process-table.js';

const task = { pid: 77, tgid: 77, ppid: 1, uid: 0, gid: 0, euid: 0, loginuid: 0, sessionid: 1, startNs: 9_000_000_000n, parentStartNs: 0n, cgroupId: 1n, comm: 'sh' };
const rec: DecisionRecord = {
  type: 'exec_decision', ktimeNs: 10_000_000_000n, task, ruleId: 3, fileIno: 5n, fileDev: 8, match: 2, action: 2, mode: 2, flags: 0, ancestors: [], path: Buffer.from('/tmp/evil'),
};

describe('exec guard events share the process enrichment of the sensors', () => {
  it('carries the same ProcessGuid, Hostname, User and Image as the sensors give that process', () => {
    const table = new ProcessTable();
    table.exec({ pid: 77, ppid: 1, startNs: task.startNs, image: '/usr/bin/dash', commandLine: 'sh -c /tmp/evil', cwd: '/', uid: 0 });
    const ctx = new ProcessContext({ table, host: 'host-a', bootId: 'boot' });
    const ev = decisionEvent(rec, { process: ctx });
    expect(ev).toMatchObject({ Hostname: 'host-a', ProcessId: 77, ProcessGuid: ctx.guid(77, task.startNs), Image: '/usr/bin/dash', User: 'root' });
    expect(ev.ProcessGuid).toBe(ctx.actor(0n, task).ProcessGuid);
  });
});

describe('exec guard events validate against the published event schema (issue 9, item 14)', () => {
  const ancestors = [{ tgid: 1, startNs: 1n, comm: 'systemd' }, { tgid: 40, startNs: 2n, comm: 'bash' }];

  it('from the agent (its process table), Sysmon-style: TargetFilename, Ancestors with CommandLine', async () => {
    const { EventSchema } = await import('../../src/sensors/index.js');
    const table = new ProcessTable();
    table.exec({ pid: 1, ppid: 0, startNs: 1n, image: '/sbin/init', commandLine: '/sbin/init', cwd: '/', uid: 0 });
    table.exec({ pid: 77, ppid: 1, startNs: task.startNs, image: '/usr/bin/dash', commandLine: 'sh -c /tmp/evil', cwd: '/', uid: 0 });
    const ctx = new ProcessContext({ table, host: 'host-a', bootId: 'boot' });
    const rules = new Map([[3, { id: 3, kind: 'path' as const, path: '/tmp/evil', resolvedPath: '/tmp/evil', sha256: null, mode: 'enforce' as const, comment: 'no', createdMs: 0 }]]);
    const ev = decisionEvent({ ...rec, ancestors }, { process: ctx, rules });
    expect(EventSchema.parse(JSON.parse(JSON.stringify(ev)))).toBeTruthy();
    expect(ev).toMatchObject({
      category: 'exec_guard', Image: '/usr/bin/dash', ParentProcessId: 1, TargetFilename: '/tmp/evil',
      Ancestors: [{ ProcessId: 1, Image: '/sbin/init', CommandLine: '/sbin/init' }],
      vigil: { action: 'exec_blocked', rule: { id: 3, match: 'path', mode: 'enforce', kind: 'path', comment: 'no' }, dev: 8, ino: '5', exempt: false, global_monitor: false, comm: 'sh' },
    });
    expect(JSON.stringify(ev)).not.toMatch(/commandLine/);
  });

  it('a process the table does not know yet (its fork is on another ring): Ancestors from its parent\'s entry', async () => {
    const { EventSchema } = await import('../../src/sensors/index.js');
    const table = new ProcessTable();
    table.exec({ pid: 1, ppid: 0, startNs: 1n, image: '/sbin/init', commandLine: '/sbin/init', cwd: '/', uid: 0 });
    const ctx = new ProcessContext({ table, host: 'host-a', bootId: 'boot' });
    const ev = decisionEvent({ ...rec, ancestors }, { process: ctx });
    expect(ev.Ancestors[0]).toEqual({ ProcessId: 1, Image: '/sbin/init', CommandLine: '/sbin/init' });
    expect(ev.Image).toBe('[sh]');
    expect(EventSchema.safeParse(JSON.parse(JSON.stringify(ev))).error).toBeUndefined();
  });

  it('without an agent (vigil deny events): the kernel\'s ancestors; the decision\'s own time, not now', async () => {
    const { EventSchema } = await import('../../src/sensors/index.js');
    const raw = Buffer.concat([Buffer.from('/tmp/'), Buffer.from([0xff, 0xfe]), Buffer.from('x')]);
    const ev = decisionEvent({ ...rec, ancestors, path: raw, flags: 1 | 4, action: 1 });
    expect(EventSchema.safeParse(JSON.parse(JSON.stringify(ev))).error).toBeUndefined();
    expect(ev.Ancestors).toEqual([{ ProcessId: 1, Image: '[systemd]', CommandLine: '' }, { ProcessId: 40, Image: '[bash]', CommandLine: '' }]);
    expect(ev.Image).toBe('[sh]');
    expect(ev.TargetFilename).toBe('/tmp/\\xff\\xfex');
    expect(ev.vigil).toMatchObject({ action: 'would_block', truncated: ['TargetFilename'], raw: { TargetFilename: raw.toString('base64') }, global_monitor: true });
    // the decision happened 10 s after boot: its timestamp is that instant, not the time it was read
    const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
    expect(Math.abs(Date.parse(ev.timestamp) - (Date.now() - uptimeMs + 10_000))).toBeLessThan(2000);
    expect(ev.vigil.boot_ns).toBe('10000000000');
  });
});
