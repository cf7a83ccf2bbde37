/**
 * The exec storm of bench/exec-storm/storm.c (fork + execve + wait in static C, no
 * shell between execs) and a static no-op child, built once per test process.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let built: { storm: string; noop: string } | null = null;

export function stormBinaries(): { storm: string; noop: string } {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-storm-'));
  const storm = join(dir, 'storm');
  const noop = join(dir, 'noop');
  execFileSync('gcc', ['-O2', '-static', '-o', storm, join(ROOT, 'bench/exec-storm/storm.c')]);
  execFileSync('gcc', ['-O2', '-static', '-o', noop, join(ROOT, 'bench/exec-storm/noop.c')]);
  built = { storm, noop };
  return built;
}
