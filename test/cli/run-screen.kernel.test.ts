/**
 * What `vigil run` puts on a user's terminal (issue 9, items 10 and 13), under a
 * real pseudo-terminal (script(1)): a command whose argv holds escape sequences
 * is shown escaped in the alert line, no control byte reaches the screen; each
 * warning is said once, its reason once. Runs the built CLI (dist/: npm run build,
 * as .ci/run does first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const VIGIL = fileURLToPath(new URL('../../bin/vigil', import.meta.url));
const marker = `vigil-screen-${process.pid}`;
let screen = '';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-screen-'));
  writeFileSync(
    join(dir, 'marker.yml'),
    `title: argv with escapes\nid: 5e0c2a1e-0000-4000-8000-000000000013\nlevel: high\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    sel:\n        CommandLine|contains: '${marker}'\n    condition: sel\n`,
  );
  // stdout and stderr on a terminal, as for a user at a console; ^C through the terminal stops it
  const p = spawn('script', ['-qfec', `exec ${process.execPath} ${VIGIL} run --no-db --stats-interval 0 --rules ${dir}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, VIGIL_CONFIG: '' } });
  // listened for from the start: the agent may be gone before the final stats line is seen
  const exited = new Promise((r) => p.on('exit', r));
  let out = Buffer.alloc(0);
  p.stdout.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
  const until = async (pred: () => boolean, ms: number, what: string) => {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}:\n${out.toString('latin1')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(() => out.includes('vigil running'), 60_000, 'the agent');
  spawnSync('/bin/echo', [marker, '\x1b]0;pwned\x07', '\x1b[2J\x1b[H', '\x1b[31mred\x1b[0m', '\u202eexe.txt', 'two\nlines']);
  await until(() => out.includes('ALERT ['), 10_000, 'the alert line');
  p.stdin.write('\x03');
  await until(() => out.includes('"msg":"final: '), 30_000, 'the final stats');
  await exited;
  screen = out.toString('utf8');
}, 240_000);

describe('vigil run on a terminal', () => {
  it('the alert line shows an attacker\'s escape sequences escaped; no control byte reaches the terminal', () => {
    const alert = screen.split('\r\n').find((l) => l.startsWith('ALERT ['));
    expect(alert).toBe(`ALERT [high] argv with escapes (5e0c2a1e-0000-4000-8000-000000000013): /bin/echo ${marker} \\x1b]0;pwned\\x07 \\x1b[2J\\x1b[H \\x1b[31mred\\x1b[0m \\u202eexe.txt two\\x0alines`);
    // whatever vigil wrote: no ESC, BEL, other C0/C1 controls or bidi overrides (only line ends)
    expect(screen).not.toMatch(/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]/);
  });

  it('says each warning once, and a warning\'s reason once', () => {
    const records = screen.split('\r\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const warnings = records.filter((r) => Number(r.level) >= 40);
    const counts = new Map<string, number>();
    for (const w of warnings) counts.set(String(w.msg), (counts.get(String(w.msg)) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    for (const w of warnings) {
      const msg = String(w.msg);
      for (const [k, v] of Object.entries(w)) {
        if (k !== 'msg' && typeof v === 'string' && v.length > 20) expect(msg, `${k} repeated in the message`).not.toContain(v);
      }
      expect(JSON.stringify(w).split('vigil doctor').length - 1, JSON.stringify(w)).toBeLessThanOrEqual(1);
    }
  });
});
