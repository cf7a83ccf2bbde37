/**
 * `vigil doctor` as a user runs it: no check tells the user to run vigil doctor
 * (issue 9, item 10), on this host where BPF LSM programs are refused. Runs the
 * built CLI (dist/: npm run build, as .ci/run does first).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatReport } from '../../src/doctor/doctor.js';

describe('vigil doctor', () => {
  it('never says "run vigil doctor" in a detail, a hint or the verdict', () => {
    const r = spawnSync(process.execPath, [join(__dirname, '../../bin/vigil'), 'doctor', '--json'], { encoding: 'utf8', timeout: 120_000 });
    const rep = JSON.parse(r.stdout) as { checks: Array<{ id: string; detail: string; hint?: string }>; enforcement: { reason: string } };
    expect(rep.checks.length).toBeGreaterThan(10);
    const said = [...rep.checks.flatMap((c) => [c.detail, c.hint ?? '']), rep.enforcement.reason].filter((t) => /vigil doctor/.test(t));
    expect(said).toEqual([]);
    // the text form is made from the same report
    expect(formatReport(rep as never)).not.toMatch(/vigil doctor/);
  }, 300_000);
});
