/**
 * The CLI in this process: main() with stdout and stderr captured, the exit
 * status from process.exitCode. Fast (no node start-up per case), so the sweep
 * can afford hundreds of cases.
 */
import type { Command } from 'commander';
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function vigil(args: string[], env: Record<string, string | undefined> = {}, program?: Command): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  process.exitCode = undefined;
  try {
    await main(['node', 'vigil', ...args], program ? { program } : {});
  } catch (x) {
    // the old main() let some errors out: what the process would have printed (bin/vigil: stack, exit 70)
    err.push(`vigil: ${(x as Error)?.stack ?? x}\n`);
    process.exitCode = 70;
  } finally {
    o.mockRestore();
    e.mockRestore();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, out: out.join(''), err: err.join('') };
}

/** A stack trace in the output ("    at f (file:1:2)"). */
export const STACK = /^\s+at .+[:(]/m;
