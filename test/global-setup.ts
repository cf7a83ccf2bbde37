/**
 * Every test run gets a temporary directory of its own: TMPDIR points into it while
 * the run lasts (os.tmpdir(), mkdtemp, and the agents, compilers and shells the tests
 * start all follow TMPDIR), and it is removed when the run ends, whatever the tests
 * left in it: a CI machine keeps nothing of a run in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const before = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-test-'));
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  };
}
