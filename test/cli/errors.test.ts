/**
 * The error model (src/cli/errors.ts): every failure is one line naming what it
 * concerns, with a stable code; the exit status depends only on the class.
 * Cases from issue 9 (items 10, 11): stack traces with exit 70, exit codes that
 * differ by command, --db/--no-db depending on their order.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { STACK, vigil } from './harness.js';
import { InputError, UnavailableError, UsageError, VigilError, errorClass } from '../../src/cli/errors.js';
import { report } from '../../src/cli/main.js';
import { BpfError } from '../../src/kernel/errors.js';

let dir: string;
let notDb: string;
let aDir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-errors-'));
  notDb = join(dir, 'notes.txt');
  writeFileSync(notDb, 'this is not a database\n');
  aDir = join(dir, 'a-directory');
  mkdirSync(aDir);
});

/** one line on stderr, no stack trace, ending in a [code] */
function oneLine(err: string): string {
  const lines = err.trimEnd().split('\n');
  expect(lines, err).toHaveLength(1);
  expect(err).not.toMatch(STACK);
  expect(lines[0]).toMatch(/ \[[a-z_]+(\.[a-z_]+)?\]$/);
  return lines[0]!;
}

describe('exit statuses are the same for every command', () => {
  const commands = [['run'], ['events'], ['doctor'], ['rules', 'lint', 'x'], ['deny', 'add'], ['deny', 'list'], ['disarm'], ['fleet', 'hosts']];
  it.each(commands)('an unknown option is a usage error (2) naming it: vigil %s', async (...cmd) => {
    const r = await vigil([...cmd, '--no-such-option']);
    expect(r.code).toBe(2);
    expect(oneLine(r.err)).toContain("unknown option '--no-such-option'");
  });

  it('an unknown command, a missing subcommand, a missing argument: 2', async () => {
    expect((await vigil(['bogus'])).code).toBe(2);
    const sub = await vigil(['deny']);
    expect(sub.code).toBe(2);
    expect(sub.err).toMatch(/vigil deny: a subcommand is needed \(add, list, rm, mode, apply, events\)/);
    expect((await vigil(['deny', 'rm'])).code).toBe(2);
    expect((await vigil(['--help'])).code).toBe(0);
    expect((await vigil(['--version'])).code).toBe(0);
  });
});

describe('no stack traces for bad input (issue 9, item 10)', () => {
  it('vigil events --db on a file that is not a database: 4, one line naming --db', async () => {
    const r = await vigil(['events', '--db', notDb]);
    expect(r.code).toBe(4);
    expect(oneLine(r.err)).toBe(`vigil events: --db ${notDb}: not an SQLite database; give the store \`vigil run\` writes [input.not_a_database]`);
  });

  it('vigil events --db on a directory: 4', async () => {
    const r = await vigil(['events', '--db', aDir]);
    expect(r.code).toBe(4);
    expect(oneLine(r.err)).toContain(`--db ${aDir}: a directory`);
  });

  it('vigil run --events-out on a directory: 4, before anything is loaded', async () => {
    const r = await vigil(['run', '--events-out', aDir, '--no-db']);
    expect(r.code).toBe(4);
    expect(oneLine(r.err)).toContain(`--events-out ${aDir}: a directory, a file is needed here`);
  });

  it('vigil run --log-level bogus: 2, naming the option and the levels', async () => {
    const r = await vigil(['run', '--log-level', 'bogus']);
    expect(r.code).toBe(2);
    expect(oneLine(r.err)).toMatch(/--log-level <level>' argument 'bogus' is invalid\. Allowed choices are fatal, error, warn, info, debug, trace/);
  });

  it('a config file that does not exist, or is a directory: 4', async () => {
    const r = await vigil(['run', '-c', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(4);
    expect(oneLine(r.err)).toContain(`--config ${join(dir, 'missing.yaml')}: no such file`);
    const d = await vigil(['events', '-c', aDir]);
    expect(d.code).toBe(4);
    expect(oneLine(d.err)).toContain('a directory');
  });
});

describe('--db and --no-db (issue 9, item 11)', () => {
  // --events-out on a directory stops `vigil run` before it loads anything, whichever way the flags are read
  it.each([
    [['--db', 'x.db', '--no-db']],
    [['--no-db', '--db', 'x.db']],
  ])('together, in either order, are a usage error: %j', async (flags) => {
    const r = await vigil(['run', ...flags, '--events-out', aDir]);
    expect(r.code).toBe(2);
    expect(oneLine(r.err)).toMatch(/--db: given with --no-db: say one of them \[usage\.conflict\]/);
  });
});

describe('report()', () => {
  const capture = (e: unknown, o: { debug?: boolean; verbose?: boolean } = {}) => {
    const out: string[] = [];
    const w = process.stderr.write;
    process.stderr.write = ((s: string) => (out.push(s), true)) as typeof process.stderr.write;
    try {
      const code = report(e, { debug: false, verbose: false, command: 'vigil x', ...o });
      return { code, err: out.join('') };
    } finally {
      process.stderr.write = w;
    }
  };

  it('an internal error: one line and 70; the stack with --debug', () => {
    const plain = capture(new TypeError('boom'));
    expect(plain.code).toBe(70);
    expect(oneLine(plain.err)).toMatch(/^vigil x: internal error: boom; this is a bug in vigil: run again with --debug for the stack trace and report it \[internal\]$/);
    const debug = capture(new TypeError('boom'), { debug: true });
    expect(debug.err).toMatch(STACK);
  });

  it('a BPF refusal: 3, one line with the reason; the libbpf log only with --verbose or --debug', () => {
    const log = 'libbpf: prog x: BPF program load failed: Operation not permitted\n'.repeat(200);
    const bpf = new BpfError({ op: 'bpf_object__load(exec_guard.bpf.o [lsm/bprm_check_security])', errno: 1, log });
    const e = new UnavailableError('unavailable.bpf_lsm', 'the exec guard cannot load here', { cause: bpf });
    const plain = capture(e);
    expect(plain.code).toBe(3);
    expect(oneLine(plain.err)).toMatch(/the exec guard cannot load here \(--debug shows the libbpf log\) \[unavailable\.bpf_lsm\]$/);
    expect(capture(e, { verbose: true }).err).toContain(`--- libbpf log ---\n${log}`);
  });

  it('the class of a code is its exit status', () => {
    expect(new UsageError('--x', 'bad').exitCode).toBe(2);
    expect(new InputError('input.not_found', 'p', 'gone').exitCode).toBe(4);
    expect(new InputError('config.invalid', 'f', 'bad').exitCode).toBe(4);
    expect(new UnavailableError('unavailable.bpf', 'no').exitCode).toBe(3);
    expect(new VigilError('failed.not_found', 'no rule 3').exitCode).toBe(1);
    expect(errorClass('whatever')).toBe('internal');
  });

  it('control characters in a message are escaped, a huge message is cut', () => {
    const r = capture(new UsageError('--comment', `\x1b]0;pwned\x07${'x'.repeat(10_000)}`));
    const line = oneLine(r.err);
    expect(line).not.toContain('\x1b');
    expect(line).toContain('\\x1b]0;pwned\\x07');
    expect(line.length).toBeLessThan(2100);
  });
});
