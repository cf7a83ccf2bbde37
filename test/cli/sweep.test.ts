/**
 * The CLI sweep, unit level (no BPF, no root needed): every command, option and
 * argument from the commander definition, fed bad values. Commands that load
 * BPF (vigil run, deny, doctor, disarm) are checked up to the start of their
 * action here; test/cli/sweep.kernel.test.ts runs their actions for real.
 * The others (events, rules, fleet) run for real: a bad value must be refused
 * before anything is done, naming the option, with a documented exit status.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Argument, Option } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { argName, badValues, baseline, checkRefusal, fixture, goodValue, kindFor, leaves, realUnless, stubbed, valueOptions, vigil, type Fixture } from './sweep.js';

const saved = { ...process.env };
let f: Fixture;
beforeAll(() => {
  // fleet commands connect to nothing: a closed port answers at once
  process.env.VIGIL_FLEET_URL = 'nats://127.0.0.1:1';
  delete process.env.VIGIL_FLEET_CREDS;
  delete process.env.VIGIL_DB;
  process.env.VIGIL_CONFIG = '';
  f = fixture();
  // vigil rules list reads the configured rules: an empty directory
  process.env.VIGIL_RULES = f.sub;
});
afterAll(() => {
  process.env = saved;
});

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const optionSubject = (o: Option) => new RegExp(`${esc(o.long!)}\\b`);
const argSubject = (a: Argument) => new RegExp(`(: ${esc(argName(a).toUpperCase())}\\b|argument '${esc(argName(a))}')`);

const all = leaves(buildProgram());

describe('the sweep covers the whole command line', () => {
  it('finds the commands (a broken walk would check nothing)', () => {
    const names = all.map((l) => l.path.join(' '));
    expect(names).toEqual(expect.arrayContaining(['run', 'events', 'doctor', 'disarm', 'rules lint', 'rules test', 'rules list', 'deny add', 'deny list', 'deny rm', 'deny mode', 'deny apply', 'deny events', 'fleet hosts', 'fleet deny add']));
    expect(all.flatMap((l) => valueOptions(l.cmd)).length).toBeGreaterThan(40);
  });

  it('every option and argument that takes a value has a known kind (declare it: src/cli/options.ts)', () => {
    const unknown = all.flatMap((l) => [
      ...valueOptions(l.cmd).filter((o) => !kindFor(o)).map((o) => `vigil ${l.path.join(' ')} ${o.flags}`),
      ...l.cmd.registeredArguments.filter((a) => !kindFor(a)).map((a) => `vigil ${l.path.join(' ')} <${a.name()}>`),
    ]);
    expect(unknown).toEqual([]);
  });
});

describe.each(all.map((l) => [l.path.join(' '), l] as const))('vigil %s', (_name, leaf) => {
  for (const o of valueOptions(leaf.cmd)) {
    const kind = kindFor(o)!;
    it(`${o.flags}: bad values (${kind}) are refused naming it, exit 2 or 4, no stack`, async () => {
      const problems: string[] = [];
      // `--` where a required value belongs: the value was left out (`vigil watch --db -- CMD`)
      const values: Array<[string, string]> = o.required ? [['the end of options (--)', '--'], ...badValues(kind, f)] : badValues(kind, f);
      for (const [label, value] of values) {
        const program = realUnless(false);
        const r = await vigil([...leaf.path, ...baseline(leaf.cmd, f, o), o.long!, value], {}, program);
        problems.push(...checkRefusal(r, optionSubject(o), `${o.long} ${label}`));
      }
      expect(problems).toEqual([]);
    });

    it(`${o.flags}: a good value passes its checks`, async () => {
      const good = goodValue(kind, f, o);
      if (good === undefined) return;
      const r = await vigil([...leaf.path, ...baseline(leaf.cmd, f, o), o.long!, good], {}, stubbed());
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
    });
  }

  for (const a of leaf.cmd.registeredArguments) {
    const kind = kindFor(a)!;
    it(`<${a.name()}>: bad values (${kind}) are refused naming it`, async () => {
      const problems: string[] = [];
      for (const [label, value] of badValues(kind, f)) {
        const r = await vigil([...leaf.path, ...baseline(leaf.cmd, f, a), value], {}, realUnless(false));
        problems.push(...checkRefusal(r, argSubject(a), `<${a.name()}> ${label}`));
      }
      expect(problems).toEqual([]);
    });
  }

  it('an unknown option and an extra argument are usage errors (2)', async () => {
    const u = await vigil([...leaf.path, ...baseline(leaf.cmd, f), '--no-such-option'], {}, stubbed());
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/unknown option '--no-such-option'.*\[usage\.unknown_option\]$/m);
    if (!leaf.cmd.registeredArguments.some((a) => a.variadic)) {
      const x = await vigil([...leaf.path, ...baseline(leaf.cmd, f), 'extra-1', 'extra-2'], {}, stubbed());
      expect(x.code).toBe(2);
      expect(x.err).toMatch(/\[usage\.excess_arguments\]$/m);
    }
  });

  const required = leaf.cmd.registeredArguments.filter((a) => a.required);
  if (required.length) {
    it('a missing argument is a usage error (2) naming it', async () => {
      const r = await vigil([...leaf.path], {}, stubbed());
      expect(r.code).toBe(2);
      expect(r.err).toMatch(new RegExp(`missing required argument '${esc(required[0]!.name())}'`));
    });
  }
});

describe('argv bytes that are not UTF-8, from a real process', () => {
  it('a path option with such a name is refused as such (exit 2), not taken for another file', async () => {
    // what Node makes of the bytes /tmp/\xff\xfe.db on a real command line
    const r = spawnSync('/bin/bash', ['-c', `exec "${process.execPath}" -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$(printf '/tmp/\\xff\\xfe.db')"`], { encoding: 'utf8' });
    const decoded = JSON.parse(r.stdout) as string;
    expect(decoded).toBe('/tmp/\uFFFD\uFFFD.db');
    const res = await vigil(['events', '--db', decoded]);
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/^vigil events: --db: \/tmp\/\uFFFD\uFFFD\.db: not valid UTF-8 \(vigil cannot name such a file exactly\); rename it/);
  });
});
