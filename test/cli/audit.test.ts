/**
 * `vigil audit verify` through main(): the report, --json, exit statuses of the
 * error model (docs/cli.md), and `vigil run`'s config section for the chain.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlSink } from '../../src/sinks/jsonl.js';
import { AuditChain } from '../../src/sinks/audit-chain.js';
import { AuditBlockChain } from '../../src/sinks/audit-block.js';
import { parseConfig } from '../../src/config/config.js';
import { vigil } from './harness.js';
import pino from 'pino';
import { Writable } from 'node:stream';
import { existsSync, renameSync } from 'node:fs';
import { withAuditChain } from '../../src/cli/commands/audit.js';
import { InputError } from '../../src/cli/errors.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function log(n: number): Promise<string> {
  const d = mkdtempSync(join(tmpdir(), 'vigil-audit-cli-'));
  dirs.push(d);
  const p = join(d, 'ev.jsonl');
  const chain = new AuditChain({ logPath: p, sealEvery: 5, sealIntervalMs: 0 });
  const sink = new JsonlSink({ path: p, hook: chain });
  for (let i = 0; i < n; i++) {
    const v = { category: 'process_creation', i };
    sink.write({ kind: 'event', value: v, json: JSON.stringify(v) });
    if (i % 3 === 0) {
      await sink.flush();
      await chain.drained();
    }
  }
  await sink.close();
  return p;
}

describe('vigil audit verify', () => {
  it('intact: exit 0, says up to which seal, with the key', async () => {
    const p = await log(20);
    const r = await vigil(['audit', 'verify', p, '--key', `${p}.verify-key`]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/intact: 20 records, seq 1\.\.\d+, chain \S+; (\d+) of \1 seals verified with the key; sealed up to .*ev\.jsonl:\d+ \(epoch \d+\); 0 records after it not sealed yet/);
  });

  it('a changed line: exit 1, one line naming file:line, --json report', async () => {
    const p = await log(20);
    const ls = readFileSync(p, 'utf8').split('\n');
    const at = ls.findIndex((l) => l.includes('"i":7,'));
    ls[at] = ls[at]!.replace('"i":7', '"i":8');
    writeFileSync(p, ls.join('\n'));
    const r = await vigil(['audit', 'verify', p, '--key', `${p}.verify-key`, '--json']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`vigil audit verify: ${p}:${at + 1}: changed: the line's bytes do not match its link (seq ${at + 1}) [failed.tampered]\n`);
    const j = JSON.parse(r.out) as { ok: boolean; problem: { kind: string; line: number } };
    expect(j).toMatchObject({ ok: false, problem: { kind: 'changed', line: at + 1 } });
  });

  it('without --key: the chain is checked, the output says the MACs are not', async () => {
    const p = await log(8);
    const r = await vigil(['audit', 'verify', p]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('MACs not checked (no --key)');
  });

  it('input errors: a file without links (4), a key file that is not one (4), a missing file (4), no file (2)', async () => {
    const p = await log(3);
    const plain = join(dirs[dirs.length - 1]!, 'plain.jsonl');
    writeFileSync(plain, '{"a":1}\n');
    let r = await vigil(['audit', 'verify', plain]);
    expect([r.code, r.err]).toEqual([4, expect.stringContaining('[input.not_chained]')]);
    r = await vigil(['audit', 'verify', p, '--key', plain]);
    expect([r.code, r.err]).toEqual([4, expect.stringContaining('--key')]);
    expect(r.err).toContain('[input.not_a_key]');
    r = await vigil(['audit', 'verify', `${p}.nope`]);
    expect(r.code).toBe(4);
    r = await vigil(['audit', 'verify']);
    expect(r.code).toBe(2);
  });

  it('format 2 (block seals): intact names the seals; an edit of equal length names its block\'s lines, a removed line its place', async () => {
    const d = mkdtempSync(join(tmpdir(), 'vigil-audit-cli-'));
    dirs.push(d);
    const p = join(d, 'ev.jsonl');
    const chain = new AuditBlockChain({ logPath: p, sealEvery: 5, sealIntervalMs: 0 });
    const sink = new JsonlSink({ path: p, hook: chain });
    for (let i = 0; i < 20; i++) {
      const v = { category: 'process_creation', i, pad: 'x'.repeat(i) };
      sink.write({ kind: 'event', value: v, json: JSON.stringify(v) });
      if (i % 3 === 0) {
        await sink.flush();
        await chain.drained();
      }
    }
    await sink.close();
    let r = await vigil(['audit', 'verify', p, '--key', `${p}.verify-key`]);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/intact: 20 records, seals 1\.\.(\d+), chain \S+; \1 of \1 seals verified with the key; sealed up to .*ev\.jsonl:\d+ \(epoch \d+\); 0 records after it not sealed yet/);
    const ls = readFileSync(p, 'utf8').split('\n');
    const at = ls.findIndex((l) => l.includes('"i":7,'));
    writeFileSync(p, ls.map((l, i) => (i === at ? l.replace('"i":7', '"i":8') : l)).join('\n'));
    r = await vigil(['audit', 'verify', p, '--key', `${p}.verify-key`]);
    expect(r.code).toBe(1);
    let first = at;
    while (!ls[first - 1]!.startsWith('{"vigil.seal"')) first--;
    let last = at;
    while (!ls[last + 1]!.startsWith('{"vigil.seal"')) last++;
    expect(r.out).toContain(`NOT INTACT: ${p}:${first + 1}-${last + 1}: changed: the bytes of lines ${p}:${first + 1}..${last + 1} do not match seal`);
    expect(r.err).toMatch(new RegExp(`^vigil audit verify: ${p}:${first + 1}: changed: .* \\[failed\\.tampered\\]\n$`));
    writeFileSync(p, ls.filter((_, i) => i !== at).join('\n'));
    r = await vigil(['audit', 'verify', p, '--key', `${p}.verify-key`, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, format: 2, problem: { kind: 'removed', line: at + 1 } });
  });

  it('--help teaches: what it checks, an example, exit statuses', async () => {
    const r = await vigil(['audit', 'verify', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('--key <file>');
    expect(r.out).toContain('Examples:');
    expect(r.out).toContain('Exit status: 0 intact, 1 a problem found');
  });
});

describe('audit_log.chain config', () => {
  it('defaults, and both triggers 0 refused with file:line', () => {
    expect(parseConfig('{}').audit_log.chain).toEqual({ enabled: false, seal_every: 10000, seal_interval: '10s', key_dir: null, format: 'block', hasher: 'inline' });
    expect(parseConfig('audit_log:\n  chain: { format: line }\n').audit_log.chain.format).toBe('line');
    expect(() => parseConfig('audit_log:\n  chain: { format: lines }\n', 'v.yaml')).toThrow(/v\.yaml:2:\d+: audit_log\.chain\.format/);
    expect(() => parseConfig('audit_log:\n  chain: { enabled: true, seal_every: 0, seal_interval: 0 }\n', 'v.yaml')).toThrow(/v\.yaml:2:\d+: audit_log\.chain: seal_every and seal_interval cannot both be 0/);
  });
});

describe('vigil run: the chain from the config (withAuditChain)', () => {
  it('creates the chain and says where the verification key is, warns while it stays on the host, refuses a broken key file', async () => {
    const d = mkdtempSync(join(tmpdir(), 'vigil-audit-run-'));
    dirs.push(d);
    const p = join(d, 'logs', 'ev.jsonl');
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
    const cfg = { chain: { enabled: true, seal_every: 3, seal_interval: '10s', key_dir: join(d, 'keys') } };
    const open = async () => {
      const sink = withAuditChain(cfg, p, log, (hook) => new JsonlSink({ path: p, hook }));
      for (let i = 0; i < 4; i++) sink.write({ kind: 'event', value: { i }, json: JSON.stringify({ i }) });
      await sink.close();
    };
    await open();
    expect(existsSync(join(d, 'keys', 'ev.jsonl.seal-key'))).toBe(true);
    expect(lines.at(-1)!.msg).toContain(`move its verification key ${join(d, 'keys', 'ev.jsonl.verify-key')} off this host`);
    await open();
    expect(lines.at(-1)).toMatchObject({ level: 40, msg: expect.stringContaining('verification key is still on this host') });
    renameSync(join(d, 'keys', 'ev.jsonl.verify-key'), join(d, 'offhost.key'));
    const before = lines.length;
    await open();
    expect(lines.length).toBe(before);
    const r = await vigil(['audit', 'verify', p, '--key', join(d, 'offhost.key')]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('intact: 12 records');
    // a chain off: no hook, no key files
    const q = join(d, 'plain.jsonl');
    const sink = withAuditChain({ chain: { ...cfg.chain, enabled: false } }, q, log, (hook) => new JsonlSink({ path: q, hook }));
    await sink.close();
    expect(existsSync(`${q}.seal-key`)).toBe(false);
    // a sealing key file that is not one: one line naming it, exit 4
    writeFileSync(join(d, 'keys', 'ev.jsonl.seal-key'), 'garbage');
    let err: unknown;
    try {
      withAuditChain(cfg, p, log, (hook) => new JsonlSink({ path: p, hook }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).line()).toMatch(/^audit_log\.chain .*ev\.jsonl\.seal-key: not a vigil audit key file .*\[input\.not_a_key\]$/);
  });
});
