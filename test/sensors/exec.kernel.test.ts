/**
 * Loads the real exec sensor on this kernel and checks what it sees of real
 * processes: full argv read in the kernel (also for processes that exit at
 * once), exe and cwd resolved in the kernel, lineage, non-UTF-8 argv,
 * truncation flags, and an exec storm with no unreported loss.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, symlinkSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessTable } from '../../src/process/process-table.js';
import { startSensors, type SensorRun } from './harness.js';
import { stormBinaries } from '../kernel/storm.js';
import type { ProcessCreationEvent, ProcessTerminationEvent } from '../../src/events/schema.js';
import { EventSchema } from '../../src/sensors/index.js';
import { bpfVariant, resetBpfVariant, variantObjectPath } from '../../src/kernel/index.js';

// Also run inside the VM suite (qemu TCG, ~20x slower execs): a smaller storm there,
// the same no-silent-loss assertion.
const STORM = process.env.VIGIL_IN_VM === '1' ? 1000 : 5000;

let run: SensorRun;
let sensor: SensorRun['sensors'][number];
let table: ProcessTable;
let events: Array<ProcessCreationEvent | ProcessTerminationEvent>;

beforeAll(() => {
  run = startSensors({ exec: {} });
  sensor = run.sensors[0]!;
  table = run.process.table;
  events = run.events as unknown as typeof events;
});

afterAll(() => sensor?.close());

function creations(pred: (e: ProcessCreationEvent) => boolean): ProcessCreationEvent[] {
  sensor.drain();
  return events.filter((e): e is ProcessCreationEvent => e.category === 'process_creation' && pred(e));
}

describe('exec sensor (real BPF on this kernel)', () => {
  it('records a short-lived process with its full command line, exe, cwd and parent', () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'vigil cwd ')));
    const r = spawnSync('/bin/sh', ['-c', `cd "${dir}" && /bin/echo one "two three" '$HOME' >/dev/null`]);
    expect(r.status).toBe(0);
    const [e] = creations((e) => e.vigil.argv[0] === '/bin/echo' && e.vigil.argv[1] === 'one');
    expect(e).toBeDefined();
    expect(e!.CommandLine).toBe('/bin/echo one two three $HOME');
    expect(e!.vigil.argv).toEqual(['/bin/echo', 'one', 'two three', '$HOME']);
    expect(e!.Image).toBe(realpathSync('/bin/echo'));
    expect(e!.CurrentDirectory).toBe(dir);
    expect(e!.ParentImage).toBe(realpathSync('/bin/sh'));
    expect(e!.ParentCommandLine).toContain('/bin/sh -c cd');
    expect(e!.Ancestors[0]!.Image).toBe(realpathSync('/bin/sh'));
    expect(e!.Ancestors[1]!.ProcessId).toBe(process.pid);
    expect(e!.Ancestors[1]!.Image).toBe(realpathSync(process.execPath));
    expect(e!.User).toBe('root');
    expect(e!.ProcessId).toBeGreaterThan(0);
    expect(Date.parse(e!.timestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(e!.vigil.truncated).toBeUndefined();
  });

  it('reports the termination with the exit code', () => {
    spawnSync('/bin/sh', ['-c', 'exit 7']);
    sensor.drain();
    // process_termination carries Sysmon's ProcessTerminate fields: the process is found by its ProcessGuid
    const c = creations((e) => e.CommandLine === '/bin/sh -c exit 7');
    expect(c).toHaveLength(1);
    const t = events.find((e): e is ProcessTerminationEvent => e.category === 'process_termination' && e.ProcessGuid === c[0]!.ProcessGuid);
    expect(t?.vigil.exit_code).toBe(7);
  });

  it('resolves the exe through symlinks and deep directories in the kernel', () => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'vigil-deep-')));
    let d = base;
    for (let i = 0; i < 30; i++) d = join(d, `level-${i}`);
    mkdirSync(d, { recursive: true });
    const bin = join(d, 'mytrue');
    copyFileSync('/bin/true', bin);
    const link = join(base, 'link-to-true');
    symlinkSync(bin, link);
    spawnSync(link, ['via-link']);
    const [e] = creations((e) => e.vigil.argv[1] === 'via-link');
    expect(e?.Image).toBe(bin);
    expect(e?.vigil.argv[0]).toBe(link);
  });

  it('loads the build this kernel takes (VIGIL_BPF_VARIANT=compat forces the bounded-loop one)', () => {
    const want = process.env.VIGIL_BPF_VARIANT === 'compat' ? 'compat' : bpfVariant().variant;
    expect(bpfVariant().variant).toBe(want);
    expect(sensor.stats().object).toBe(want === 'compat' ? 'exec.compat.bpf.o' : 'exec.bpf.o');
    expect(variantObjectPath('/x/exec.bpf.o')).toBe(want === 'compat' ? '/x/exec.compat.bpf.o' : '/x/exec.bpf.o');
  });

  it('walks paths to VIGIL_PATH_DEPTH components; deeper ones keep their tail and are flagged', () => {
    // one chain of 1-byte names, a copy of true at several depths around the 128-step bound
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'vd-')));
    const depths = [100, 120, 123, 124, 125, 126, 127, 128, 130, 140];
    let d = base;
    const bins = new Map<number, string>();
    for (let i = 1; i <= 140; i++) {
      d = join(d, 'd');
      if (depths.includes(i)) bins.set(i, join(d, 't'));
    }
    mkdirSync(d, { recursive: true });
    for (const bin of bins.values()) copyFileSync('/bin/true', bin);
    for (const [n, bin] of bins) spawnSync(bin, [`depth-${n}`]);
    const seen = new Map<number, { image: string; truncated: boolean }>();
    for (const [n, bin] of bins) {
      const [e] = creations((e) => e.vigil.argv[1] === `depth-${n}`);
      expect(e, `depth ${n}`).toBeDefined();
      const truncated = e!.vigil.truncated?.includes('Image') ?? false;
      seen.set(n, { image: e!.Image, truncated });
      // a cut path is marked with a leading "…" (docs/events.md); the rest is an exact tail
      if (truncated) expect(e!.Image.startsWith('…') && bin.endsWith(e!.Image.slice(1)), `depth ${n}: ${e!.Image} is a marked tail of ${bin}`).toBe(true);
      else expect(e!.Image).toBe(bin);
    }
    // the base (/tmp/vd-x: 2 components, a mount crossing or two) + 100 is within the bound, 140 is not
    expect(seen.get(100)!.truncated).toBe(false);
    expect(seen.get(140)!.truncated).toBe(true);
    // one boundary: everything below it whole, everything from it on cut
    const cut = depths.filter((n) => seen.get(n)!.truncated);
    expect(cut).toEqual(depths.slice(depths.indexOf(cut[0]!)));
  });

  it('the bpf_loop and the compat builds resolve the same paths to the same depth', () => {
    if (bpfVariant().variant === 'compat' && !bpfVariant().forced) {
      // this kernel has no bpf_loop: only the compat build exists here (its depth test ran above)
      expect(bpfVariant().reason).toMatch(/no bpf_loop/);
      return;
    }
    // the other build, side by side on the same execs
    const other = bpfVariant().variant === 'compat' ? 'default' : 'compat';
    const saved = process.env.VIGIL_BPF_VARIANT;
    process.env.VIGIL_BPF_VARIANT = other;
    resetBpfVariant();
    let run2: SensorRun | undefined;
    try {
      run2 = startSensors({ exec: {} });
      expect(run2.sensors[0]!.stats().object).toBe(other === 'compat' ? 'exec.compat.bpf.o' : 'exec.bpf.o');
      const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'vigil-same-')));
      const base = realpathSync(mkdtempSync(join(tmpdir(), 'vs-')));
      let d = base;
      const bins: string[] = [];
      for (let i = 1; i <= 140; i++) {
        d = join(d, 'd');
        if (i >= 118 && i <= 132) bins.push(join(d, 't'));
      }
      mkdirSync(d, { recursive: true });
      for (const b of bins) copyFileSync('/bin/true', b);
      bins.forEach((b, i) => spawnSync(b, [`same-${i}`], { cwd }));
      spawnSync('/bin/sh', ['-c', 'true same-cwd'], { cwd: d }); // a cwd deeper than the bound
      sensor.drain();
      run2.drain();
      const pick = (evs: Array<Record<string, unknown>>) =>
        (evs as unknown as ProcessCreationEvent[])
          .filter((e) => e.category === 'process_creation' && e.CommandLine.includes('same-'))
          .map((e) => ({ argv: e.vigil.argv.join(' '), image: e.Image, cwd: e.CurrentDirectory, truncated: e.vigil.truncated ?? [] }));
      const mine = pick(events as unknown as Array<Record<string, unknown>>);
      const theirs = pick(run2.events);
      expect(theirs.length).toBe(bins.length + 1);
      expect(theirs).toEqual(mine);
      // the boundary falls inside the range: both whole and cut paths were compared
      expect(theirs.some((e) => e.truncated.includes('Image'))).toBe(true);
      expect(theirs.some((e) => !e.truncated.includes('Image'))).toBe(true);
      expect(theirs.at(-1)!.truncated).toContain('CurrentDirectory');
    } finally {
      run2?.close();
      if (saved === undefined) delete process.env.VIGIL_BPF_VARIANT;
      else process.env.VIGIL_BPF_VARIANT = saved;
      resetBpfVariant();
    }
  });

  it('keeps non-UTF-8 argv recoverable', () => {
    const bad = Buffer.from([0x66, 0xff, 0xfe, 0x6f]);
    // Node would re-encode a string argument: pass the raw bytes through the shell
    spawnSync('/bin/sh', ['-c', `exec /bin/true marker-raw "$(printf 'f\\377\\376o')"`]);
    const [e] = creations((e) => e.vigil.argv[1] === 'marker-raw');
    expect(e?.vigil.argv[2]).toBe('f\\xff\\xfeo');
    const raw = e?.vigil.raw?.argv as string[];
    expect(Buffer.from(raw[2]!, 'base64')).toEqual(bad);
  });

  it('flags an argv longer than the kernel copy bound as truncated', () => {
    const long = 'A'.repeat(40_000);
    spawnSync('/bin/true', ['marker-long', long]);
    const [e] = creations((e) => e.vigil.argv[1] === 'marker-long');
    expect(e?.vigil.truncated).toContain('CommandLine');
    expect(e!.CommandLine.length).toBeGreaterThan(16_000);
    expect(e!.CommandLine.startsWith('/bin/true marker-long AAAA')).toBe(true);
  });

  it(`exec storm: ${STORM} execs in a row (static C: fork, execve, wait) give ${STORM} events, losses counted`, () => {
    const { storm, noop } = stormBinaries();
    const before = sensor.stats();
    const r = spawnSync(storm, [String(STORM), noop, 'storm-marker'], { timeout: 600_000 });
    expect(r.status).toBe(0);
    const got = creations((e) => e.vigil.argv[1] === 'storm-marker').length;
    const after = sensor.stats();
    const kernelDrops = after.kernelDrops - before.kernelDrops;
    // every exec either arrived or was counted as a kernel loss; no silent gap
    expect(got + kernelDrops).toBeGreaterThanOrEqual(STORM);
    expect(after.badRecords).toBe(0);
    expect(got).toBe(STORM);
  }, 660_000);

  it('every event seen validates against the published schema', () => {
    sensor.drain();
    expect(events.length).toBeGreaterThan(2 * STORM);
    const bad = events.map((e) => EventSchema.safeParse(e)).filter((r) => !r.success);
    expect(bad.map((r) => r.error?.issues[0])).toEqual([]);
  });
});
