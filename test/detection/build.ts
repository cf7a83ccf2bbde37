/**
 * A private compiled copy of the detection engine for tests that need JavaScript (the
 * rule store's worker thread, child processes under a memory cap). Built from the
 * sources under node_modules/.cache so it resolves the same packages, and never into
 * dist/, which other test files rebuild concurrently.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Compile the detection entry points (and what they import); returns the output directory. */
export function buildDetection(): string {
  const base = join(repo, 'node_modules/.cache/vigil-tests');
  mkdirSync(base, { recursive: true });
  const out = mkdtempSync(join(base, 'detection-'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  const entries = ['src/detection/index.ts', 'src/detection/rule-worker.ts', 'src/cli/commands/rules.ts'].map((f) => join(repo, f));
  const r = spawnSync(
    process.execPath,
    [
      join(repo, 'node_modules/typescript/bin/tsc'),
      '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--lib', 'ES2023', '--types', 'node',
      '--strict', '--skipLibCheck', '--esModuleInterop', '--rootDir', join(repo, 'src'), '--outDir', out,
      ...entries,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (r.status !== 0 && r.status !== 2) throw new Error(`tsc failed: ${r.stdout}${r.stderr}`);
  return out;
}
