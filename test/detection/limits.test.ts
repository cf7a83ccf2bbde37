/**
 * Huge rule input (issue 9, item 5): documented limits refused with file:line:col, no
 * out-of-memory in `vigil rules lint`, and a reload of a big rule set never stalls the
 * event path (parsing runs in a worker thread, compiling in slices, the new set is
 * swapped in whole).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDetector, RuleSet, RULE_LIMITS, type Detector } from '../../src/detection/index.js';
import { buildDetection } from './build.js';

const TMP = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';

/** compiled copy of the engine: the worker thread, and children under a memory cap */
let built = '';
beforeAll(() => {
  built = buildDetection();
}, 180_000);
const made: string[] = [];
afterAll(() => {
  if (built) rmSync(built, { recursive: true, force: true });
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
/** a temporary directory on tmpfs, removed after the file's tests */
function tmp(prefix: string): string {
  const d = mkdtempSync(join(TMP, prefix));
  made.push(d);
  return d;
}

const head = (id: string): string => `title: rule ${id}
id: ${id}
level: high
logsource:
    product: linux
    category: process_creation
detection:
`;

/** `vigil rules lint PATH...` (its command function) in a child process with a capped heap. */
function lint(paths: string[], heapMb = 256): { code: number | null; signal: string | null; stdout: string; stderr: string } {
  const script = `const { lintCommand } = await import(${JSON.stringify(join(built, 'cli/commands/rules.js'))});
    process.exitCode = lintCommand(${JSON.stringify(paths)}, {});`;
  const r = spawnSync(process.execPath, [`--max-old-space-size=${heapMb}`, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

let det: Detector | undefined;
afterEach(() => {
  det?.close();
  det = undefined;
});

describe('rule limits', () => {
  it('a 20 MB value: lint refuses the file by its size, within a 256 MB heap', () => {
    const dir = tmp('vigil-limits-');
    const f = join(dir, 'huge.yml');
    writeFileSync(f, head('huge') + `    sel:\n        CommandLine|contains: '${'x'.repeat(20_000_000)}'\n    condition: sel\n`);
    const r = lint([dir]);
    expect(r.signal).toBeNull();
    expect(r.stderr).not.toMatch(/heap out of memory|FATAL/);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${f}: error: file is 20,000,`);
    expect(r.stdout).toMatch(/larger than the limit of 4 MiB/);
  }, 60_000);

  it('a 3.9 MB value in a file under the size limit: refused at its line:col, within a 256 MB heap', () => {
    const dir = tmp('vigil-limits-');
    const f = join(dir, 'big-value.yml');
    writeFileSync(f, head('bigv') + `    sel:\n        Image|endswith: /nc\n        CommandLine|contains: '${'y'.repeat(3_900_000)}'\n    condition: sel\n`);
    const r = lint([dir]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${f}:10:31: error: value of 'CommandLine|contains' is 3,900,000 characters, larger than the limit of 65,536`);
  }, 60_000);

  it('a value just over the limit is refused with its position; one at the limit loads', () => {
    const at = (n: number): RuleSet =>
      RuleSet.fromSources([{ path: 'v.yml', text: head('v') + `    sel:\n        CommandLine|contains:\n            - abc\n            - '${'z'.repeat(n)}'\n    condition: sel\n` }]);
    expect(at(RULE_LIMITS.maxValueChars).errors).toEqual([]);
    const e = at(RULE_LIMITS.maxValueChars + 1).errors;
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ path: 'v.yml', line: 11, col: 15, severity: 'error' });
    expect(e[0]!.message).toMatch(/65,537 characters, larger than the limit of 65,536/);
  });

  it('rule count and total size limits refuse what is over them, naming where', () => {
    const docs = Array.from({ length: 5 }, (_, i) => head(`r${i}`) + `    sel:\n        Image|endswith: /x${i}\n    condition: sel\n`).join('---\n');
    const rs = RuleSet.fromSources([{ path: 'many.yml', text: docs }], { limits: { maxRules: 3 } });
    expect(rs.rules.map((r) => r.id)).toEqual(['r0', 'r1', 'r2']);
    expect(rs.errors).toHaveLength(1);
    const r3 = docs.split('\n').indexOf('title: rule r3') + 1;
    expect(rs.errors[0]).toMatchObject({ path: 'many.yml', line: r3, col: 1 });
    expect(rs.errors[0]!.message).toMatch(/rule count limit: 3 rules loaded, this one and 1 more in this file are not loaded/);

    const dir = tmp('vigil-limits-');
    for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, `${n}.yml`), head(n) + `    sel:\n        Image|endswith: /${n}\n    condition: sel\n`);
    const size = head('a').length + 60;
    const ts = RuleSet.fromPaths([dir], { limits: { maxTotalBytes: size * 2 } });
    expect(ts.rules.map((r) => r.id)).toEqual(['a', 'b']);
    expect(ts.errors).toHaveLength(1);
    expect(ts.errors[0]!.path).toBe(join(dir, 'c.yml'));
    expect(ts.errors[0]!.message).toMatch(/total size of rule files would exceed the limit/);
  });

  it('a 64 KiB literal of distinct characters compiles in bounded memory and time', () => {
    // the literal automaton once took states × alphabet cells: 10 GB and 90 s for this
    let v = '';
    for (let i = 0; i < RULE_LIMITS.maxValueChars; i++) v += String.fromCharCode(0x4e00 + (i % 20000));
    const dir = tmp('vigil-limits-');
    writeFileSync(join(dir, 'cjk.yml'), head('cjk') + `    sel:\n        CommandLine|contains: '${v}'\n    condition: sel\n`);
    const script = `
      const { RuleSet } = await import(${JSON.stringify(join(built, 'detection/index.js'))});
      let v = '';
      for (let i = 0; i < ${RULE_LIMITS.maxValueChars}; i++) v += String.fromCharCode(0x4e00 + (i % 20000));
      // CPU time: the scheduler's pauses on a busy machine are not the compiler's
      const c = process.cpuUsage();
      const rs = RuleSet.fromPaths([${JSON.stringify(dir)}]);
      const u = process.cpuUsage(c);
      const ms = (u.user + u.system) / 1000;
      const hit = rs.evaluate({ category: 'process_creation', CommandLine: 'a ' + v + ' b' }).length;
      const miss = rs.evaluate({ category: 'process_creation', CommandLine: v.slice(1) }).length;
      console.log(JSON.stringify({ ms, errors: rs.errors.length, hit, miss, rssMb: process.resourceUsage().maxRSS / 1024 }));`;
    const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const o = JSON.parse(r.stdout) as { ms: number; errors: number; hit: number; miss: number; rssMb: number };
    expect(o).toMatchObject({ errors: 0, hit: 1, miss: 0 });
    expect(o.ms).toBeLessThan(3000);
    expect(o.rssMb).toBeLessThan(400);
  }, 60_000);
});

interface Stall {
  maxDelayMs: number;
  maxGapMs: number;
  reloadMs: number;
  /** the longest gap an idle process saw meanwhile: what the machine's scheduler alone imposed */
  idleGapMs: number;
}

/**
 * An idle process with the same 5 ms timer, running while a reload is measured: the
 * stalls it sees are the machine's (other suites, VMs), not the reload's.
 */
async function idleProbe(): Promise<{ stop(): Promise<number> }> {
  const child = spawn(
    process.execPath,
    ['-e', `let last = performance.now(), max = 0; setInterval(() => { const n = performance.now(); max = Math.max(max, n - last); last = n; }, 5); process.on('SIGTERM', () => { process.stdout.write(String(max)); process.exit(0); }); process.stdout.write('ready\\n');`],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // measuring (and SIGTERM) only once its timer runs and its handler is in place: node takes a while
  // to start on a busy machine, and a probe killed before that would say "no stall" (0)
  const t0 = Date.now();
  while (!out.includes('ready\n')) {
    if (child.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`the idle probe did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return Number(out.slice(out.indexOf('ready\n') + 6)) || 0;
    },
  };
}

/**
 * Write version k of a big rule file (k = 1, 2, 3) while an event stream runs, and
 * measure the longest event-loop stall until version k is in force. The machine is
 * shared (other suites, VMs): a stall can also come from the scheduler, so an idle
 * process measures that meanwhile (see `bound`), and a version that misses the bound is
 * followed by the next one; one within it passes. The old engine froze for 9-12 s on
 * every one of them.
 */
async function stalls(dir: string, file: string, make: (k: number) => string, ready: (d: Detector, k: number) => boolean, label: string): Promise<Stall[]> {
  det = createDetector({ ruleDirs: [dir], watch: true, debounceMs: 30, workerPath: join(built, 'detection/rule-worker.js') });
  const d = det;
  expect(d.store.threaded).toBe(true);
  // an "event stream": one event every 5 ms, as the agent would evaluate them
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    d.evaluate({ category: 'process_creation', Image: '/usr/bin/nc', CommandLine: 'nc -l 4444' });
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  const out: Stall[] = [];
  try {
    await new Promise((r) => setTimeout(r, 100));
    for (let k = 1; k <= 3; k++) {
      const text = make(k);
      // building the text held the loop: let the stream catch up before measuring
      await new Promise((r) => setTimeout(r, 100));
      const idle = await idleProbe();
      await new Promise((r) => setTimeout(r, 200));
      maxGap = 0;
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const t0 = performance.now();
      writeFileSync(join(dir, `.${file}.tmp`), text);
      renameSync(join(dir, `.${file}.tmp`), join(dir, file));
      while (!ready(d, k) && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 20));
      const reloadMs = performance.now() - t0;
      h.disable();
      const idleGapMs = await idle.stop();
      expect(ready(d, k), `version ${k} in force`).toBe(true);
      const st = { maxDelayMs: h.max / 1e6, maxGapMs: maxGap, reloadMs, idleGapMs };
      out.push(st);
      console.log(
        `${label}, version ${k}: reload ${reloadMs.toFixed(0)} ms, max event-loop delay ${st.maxDelayMs.toFixed(0)} ms, max gap between events ${st.maxGapMs.toFixed(0)} ms (an idle process: ${idleGapMs.toFixed(0)} ms)`,
      );
      if (within(st)) break;
    }
  } finally {
    clearInterval(tick);
  }
  return out;
}

/**
 * The bound: 200 ms, or twice what an idle process suffered meanwhile when the machine
 * alone stalled longer than 100 ms (then 200 ms is not the reload's to keep).
 */
const bound = (s: Stall): number => Math.max(200, 2 * s.idleGapMs);
const within = (s: Stall): boolean => Math.max(s.maxDelayMs, s.maxGapMs) < bound(s);

describe('reloading a big rule set does not stall the event path', () => {
  it('a 4 MB rule file with one rule of 110,000 values', async () => {
    const dir = tmp('vigil-stall-');
    writeFileSync(join(dir, 'small.yml'), head('small') + `    sel:\n        Image|endswith: /nc\n    condition: sel\n`);
    const make = (k: number): string => {
      let s = head('ioc') + '    sel:\n        CommandLine|contains:\n';
      for (let i = 0; s.length < 3_990_000; i++) s += `            - 'some-literal-value-${i}-v${k}'\n`;
      return s + '    condition: sel\n';
    };
    const hit = (d: Detector, k: number): boolean => d.evaluate({ category: 'process_creation', CommandLine: `x some-literal-value-77777-v${k} y` }).some((a) => a.rule_id === 'ioc');
    const r = await stalls(dir, 'ioc.yml', make, hit, '4 MB IOC rule');
    expect(r.some(within), JSON.stringify(r)).toBe(true);
  }, 400_000);

  it('a 4 MB rule file with 18,000 rules', async () => {
    const dir = tmp('vigil-stall-');
    writeFileSync(join(dir, 'small.yml'), head('small') + `    sel:\n        Image|endswith: /nc\n    condition: sel\n`);
    let n = 0;
    const make = (k: number): string => {
      const parts: string[] = [];
      n = 0;
      for (let len = 0; len < 3_990_000; n++) {
        const p = head(`m${n}`) + `    sel:\n        Image|endswith: '/bin${n}'\n        CommandLine|contains: 'x${n} v${k}'\n    condition: sel\n`;
        parts.push(p);
        len += p.length + 4;
      }
      return parts.join('---\n');
    };
    const hit = (d: Detector, k: number): boolean =>
      d.evaluate({ category: 'process_creation', Image: '/usr/bin123', CommandLine: `a x123 v${k}` }).some((a) => a.rule_id === 'm123') && d.ruleSet.rules.length > n;
    const r = await stalls(dir, 'many.yml', make, hit, `4 MB, 18,000 rules`);
    expect(n).toBeGreaterThan(18_000);
    expect(r.some(within), JSON.stringify(r)).toBe(true);
  }, 400_000);
});
