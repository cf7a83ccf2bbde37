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
