/**
 * The CLI sweep for the commands that load BPF or need root (vigil run, deny,
 * doctor, disarm): the same bad values as test/cli/sweep.test.ts, with their
 * real actions, as root. A value that were not refused would start the real
 * thing: a watchdog stops a `vigil run` that got that far, and the case fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Argument, Option } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { argName, badValues, baseline, checkRefusal, fixture, kindFor, leaves, valueOptions, vigil, type Fixture } from './sweep.js';
import type { CliResult } from './harness.js';

const saved = { ...process.env };
let f: Fixture;
beforeAll(() => {
  process.env.VIGIL_CONFIG = '';
  delete process.env.VIGIL_DB;
  delete process.env.VIGIL_RULES;
  f = fixture();
});
afterAll(() => {
  process.env = saved;
});

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const optionSubject = (o: Option) => new RegExp(`${esc(o.long!)}\\b`);
const argSubject = (a: Argument) => new RegExp(`(: ${esc(argName(a).toUpperCase())}\\b|argument '${esc(argName(a))}')`);

/** The real command, stopped (SIGINT, as a user would) if it is still running after 15 s. */
async function guarded(args: string[]): Promise<CliResult & { ranAway: boolean }> {
  let ranAway = false;
  const t = setTimeout(() => {
    ranAway = true;
    process.emit('SIGINT');
  }, 15_000);
  try {
    return { ...(await vigil(args, {}, buildProgram())), ranAway };
  } finally {
    clearTimeout(t);
  }
}

const kernelLeaves = leaves(buildProgram()).filter((l) => l.kernel);

describe('the kernel commands', () => {
  it('are the ones that load BPF or need root', () => {
    expect(kernelLeaves.map((l) => l.path.join(' ')).sort()).toEqual(['deny add', 'deny apply', 'deny events', 'deny list', 'deny mode', 'deny rm', 'disarm', 'doctor', 'run', 'watch']);
  });
});

// a command that takes no values (vigil doctor) has nothing to feed bad values to
const withValues = kernelLeaves.filter((l) => valueOptions(l.cmd).length > 0 || l.cmd.registeredArguments.length > 0);

describe.each(withValues.map((l) => [l.path.join(' '), l] as const))('vigil %s (real action)', (_name, leaf) => {
  for (const o of valueOptions(leaf.cmd)) {
    const kind = kindFor(o)!;
    it(`${o.flags}: bad values (${kind}) are refused before anything runs`, async () => {
      const problems: string[] = [];
      for (const [label, value] of badValues(kind, f)) {
        const r = await guarded([...leaf.path, ...baseline(leaf.cmd, f, o), o.long!, value]);
        if (r.ranAway) problems.push(`${o.long} ${label}: the command ran`);
        problems.push(...checkRefusal(r, optionSubject(o), `${o.long} ${label}`));
      }
      expect(problems).toEqual([]);
    }, 120_000);
  }
  for (const a of leaf.cmd.registeredArguments) {
    const kind = kindFor(a)!;
    it(`<${a.name()}>: bad values (${kind}) are refused before anything runs`, async () => {
      const problems: string[] = [];
      for (const [label, value] of badValues(kind, f)) {
        const r = await guarded([...leaf.path, ...baseline(leaf.cmd, f, a), value]);
        if (r.ranAway) problems.push(`<${a.name()}> ${label}: the command ran`);
        problems.push(...checkRefusal(r, argSubject(a), `<${a.name()}> ${label}`));
      }
      expect(problems).toEqual([]);
    }, 120_000);
  }
});
