#!/usr/bin/env node
/**
 * Cost of the tamper-evident audit log (docs/audit.md): the JSONL sink's
 * throughput with and without the hash chain and seals, in the same process,
 * over the same records, modes interleaved round by round.
 *
 *   sink          pre-serialized event JSON into the JSONL sink (the sink alone:
 *                 the strictest yardstick, nothing else shares the cost)
 *   + blocks      audit_log.chain on, format 2 (the default): one SHA-256 per
 *                 block on a worker thread, a seal line every 10,000 lines or
 *                 10 s (the defaults)
 *   + blocks/inline  the same, the digest on the sink's thread
 *   + blocks/1000 block seals every 1,000 lines
 *   + chain       format 1 (audit_log.chain.format: line): a SHA-256 link per
 *                 line, a seal every 10,000 lines or 10 s
 *   + chain/1000  seals every 1,000 lines (each seal: fdatasync of the log and
 *                 a durable key-file rewrite)
 *   agent         JSON.stringify of the event object, then the sink: the
 *                 serialization the agent does once per event anyway, as a
 *                 floor of the agent's per-event work (the whole pipeline does
 *                 far more: bench/pipeline)
 *   agent + chain the same with the chain
 *
 * Prints events/s (wall clock until the sink is flushed and closed, so every
 * write and fdatasync is inside), CPU µs per event, and each chained mode as a
 * ratio of its unchained one. Files go to bench/.build/audit-chain (a real
 * disk: fdatasync costs what it costs there), removed after each round.
 *
 *   taskset -c 0 node bench/audit-chain/run.mjs [--rounds 5] [--records 200000] [--modes sink,sink+chain] [--json]
 *   taskset -c 0 node bench/audit-chain/run.mjs --pack [--rounds 7]   (packing CPU only, no disk)
 *   SEAL_EVERY=N overrides the 10,000-line seal interval of the modes without /1000
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as tick } from 'node:timers/promises';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const ROUNDS = Number(opt('--rounds', 5));
const N = Number(opt('--records', 200_000));
const BATCH = 8192; // records per event-loop turn, as the ring reader's budget

// the sink and the chain, compiled from src/ (under node_modules/.cache: the compiled files resolve the project's packages)
const out = join(root, 'node_modules/.cache/vigil-bench-audit-chain');
const tsconfig = join(root, 'bench/.build/audit-chain.tsconfig.json');
mkdirSync(join(root, 'bench/.build'), { recursive: true });
writeFileSync(tsconfig, JSON.stringify({ extends: join(root, 'tsconfig.json'), compilerOptions: { rootDir: join(root, 'src'), outDir: out, sourceMap: false, noCheck: true, typeRoots: [join(root, 'node_modules/@types')] }, include: [], files: [join(root, 'src/sinks/audit-chain.ts'), join(root, 'src/sinks/audit-block.ts')] }));
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(1);
const { JsonlSink } = await import(join(out, 'sinks/jsonl.js'));
const { AuditChain } = await import(join(out, 'sinks/audit-chain.js'));
const { AuditBlockChain } = await import(join(out, 'sinks/audit-block.js'));

// process_creation events shaped like the agent's (docs/events.md), about 1 KB of JSON each
const images = ['/usr/bin/ls', '/usr/bin/bash', '/usr/lib/systemd/systemd-journald', '/usr/bin/python3.11', '/usr/local/bin/node'];
function event(i) {
  const image = images[i % images.length];
  return {
    category: 'process_creation',
    UtcTime: new Date(1_764_000_000_000 + i).toISOString(),
    '@timestamp': 1_764_000_000_000_000_000 + i * 1000,
    ProcessGuid: `{6b9a1c2e-${(i % 65536).toString(16).padStart(4, '0')}-6721-0000-00100000${(i % 1000).toString().padStart(4, '0')}}`,
    ProcessId: 10_000 + (i % 50_000),
    Image: image,
    CommandLine: `${image} --flag-${i % 17} /var/lib/app/data/${i}/file-${i % 97}.json --verbose`,
    CurrentDirectory: '/home/deploy/app',
    User: 'deploy',
    LogonId: 1000,
    ParentProcessGuid: '{6b9a1c2e-0001-6721-0000-001000000001}',
    ParentProcessId: 4242,
    ParentImage: '/usr/bin/bash',
    ParentCommandLine: 'bash -c ./run.sh --all',
    ParentUser: 'deploy',
    Hashes: null,
    Hostname: 'bench-host',
    Ancestors: [
      { ProcessId: 4242, Image: '/usr/bin/bash', CommandLine: 'bash -c ./run.sh --all' },
      { ProcessId: 1, Image: '/usr/lib/systemd/systemd', CommandLine: '/sbin/init' },
    ],
    'vigil.sensor': 'exec',
  };
}
const objects = Array.from({ length: 4096 }, (_, i) => event(i));
const texts = objects.map((o) => JSON.stringify(o));
const avgBytes = Math.round(texts.reduce((a, t) => a + t.length + 1, 0) / texts.length);

const dir = join(root, 'bench/.build/audit-chain');
async function once(mode) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'ev.jsonl');
  const sealEvery = mode.endsWith('/1000') ? 1000 : Number(process.env.SEAL_EVERY ?? 10_000);
  const hook = mode.includes('chain')
    ? new AuditChain({ logPath: path, sealEvery, sealIntervalMs: 10_000 })
    : mode.includes('blocks')
      ? new AuditBlockChain({ logPath: path, sealEvery, sealIntervalMs: 10_000, hasher: mode.includes('inline') ? 'inline' : 'thread' })
      : undefined;
  const serialize = mode.startsWith('agent');
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const sink = new JsonlSink({ path, hook, maxBytes: 0, lock: false });
  let refused = 0;
  for (let i = 0; i < N; ) {
    const end = Math.min(N, i + BATCH);
    for (; i < end; i++) {
      const k = i % texts.length;
      const json = serialize ? JSON.stringify(objects[k]) : texts[k];
      if (!sink.write({ kind: 'event', value: objects[k], json })) refused++;
    }
    // as the agent's feed: wait while the sink is busy beyond a batch (its bound is never hit: 0 drops)
    if (sink.stats().pending > 4 * BATCH) await sink.flush();
    await tick();
  }
  await sink.close();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  if (refused || sink.stats().dropped) throw new Error(`${mode}: ${refused} refused`);
  return { eps: N / s, cpuUs: (c.user + c.system) / N, sysUs: c.system / N, seals: hook?.counts.seals ?? 0 };
}

const ALL_MODES = ['sink', 'sink + blocks', 'sink + blocks/inline', 'sink + blocks/1000', 'sink + chain', 'sink + chain/1000', 'agent', 'agent + blocks', 'agent + chain'];
// the default set: the bare sink against format 2 (block seals, the default; its digest on a worker thread, and inline) and format 1
const DEFAULT_MODES = ['sink', 'sink + blocks', 'sink + blocks/inline', 'sink + chain', 'agent', 'agent + blocks'];
// --modes sink,sink+chain: a subset (for a profile of one mode; ratios need its baseline in the set)
// --pack: only the CPU of turning a batch of records into bytes, no file writes (the
// disk's writeback, which fdatasync charges to the process, and the load's noise out):
// the bare sink's join, the chain's pack, and the floor under it, one crypto.hash per
// line of the packed bytes; interleaved round by round, median per line
if (argv.includes('--pack')) {
  const { hash } = await import('node:crypto');
  const { openSync, closeSync } = await import('node:fs');
  rmSync(join(root, 'bench/.build/audit-chain'), { recursive: true, force: true });
  mkdirSync(join(root, 'bench/.build/audit-chain'), { recursive: true });
  const logPath = join(root, 'bench/.build/audit-chain/pack.jsonl');
  const chain = new AuditChain({ logPath, sealEvery: 0, sealIntervalMs: 0 });
  const fd = openSync(logPath, 'a+');
  chain.opened(fd, 0, 0, () => undefined);
  closeSync(fd);
  const { createHash } = await import('node:crypto');
  const blocks = new AuditBlockChain({ logPath: `${logPath}.2`, sealEvery: 0, sealIntervalMs: 0, hasher: 'inline' });
  const fd2 = openSync(`${logPath}.2`, 'a+');
  blocks.opened(fd2, 0, 0, () => undefined);
  closeSync(fd2);
  const PER = 80; // records per pack: a 64 KiB chunk of ~800-byte lines, as the sink packs them
  const batches = Array.from({ length: Math.ceil(texts.length / PER) }, (_, i) => texts.slice(i * PER, (i + 1) * PER));
  const packed = batches.map((b) => chain.pack(b));
  const sinkBufs = batches.map((b) => Buffer.from([...b, ''].join('\n')));
  const ends = packed.map((buf) => {
    const e = [];
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) e.push(i);
    return e;
  });
  const kinds = {
    'sink (join + encode)': (k) => {
      const b = batches[k].slice();
      b.push('');
      return Buffer.from(b.join('\n'));
    },
    'chain pack': (k) => chain.pack(batches[k]),
    'blocks pack (+ lengths)': (k) => blocks.pack(batches[k].slice()),
    'SHA-256 of the bytes': (k) => createHash('sha256').update(sinkBufs[k]).digest('base64url'),
    'one hash per line': (k) => {
      let s = 0;
      for (const e of ends[k]) {
        hash('sha256', packed[k].subarray(s, e - 45), 'base64url');
        s = e + 1;
      }
    },
  };
  const res = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  const lines = N - (N % PER);
  for (let r = 0; r < ROUNDS + 1; r++) {
    for (const [name, f] of Object.entries(kinds)) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < lines; i += PER) f((i / PER) % batches.length);
      const c = process.cpuUsage(c0);
      if (r > 0) res[name].push((c.user + c.system) / lines);
    }
  }
  rmSync(join(root, 'bench/.build/audit-chain'), { recursive: true, force: true });
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = Object.entries(res).map(([k, xs]) => ({ stage: k, cpu_us_per_line: +med(xs).toFixed(3) }));
  if (argv.includes('--json')) console.log(JSON.stringify({ pack: out, records: lines, rounds: ROUNDS }));
  else {
    console.log(`packing only, ${lines} records of ~${avgBytes} bytes in packs of ${PER}, ${ROUNDS} rounds (median), load average ${(await import('node:os')).loadavg()[0].toFixed(1)}`);
    for (const x of out) console.log(`${x.stage.padEnd(22)} ${x.cpu_us_per_line.toFixed(3).padStart(7)} µs CPU / line`);
  }
  process.exit(0);
}
const MODES = opt('--modes', null)?.split(',').map((m) => ALL_MODES.find((x) => x.replace(/ /g, '') === m.replace(/ /g, ''))).filter(Boolean) ?? DEFAULT_MODES;
const res = Object.fromEntries(MODES.map((m) => [m, []]));
await once('sink'); // warm-up
for (let r = 0; r < ROUNDS; r++) for (const m of MODES) res[m].push(await once(m));
rmSync(dir, { recursive: true, force: true });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = MODES.map((m) => ({ mode: m, events_per_s: Math.round(median(res[m].map((x) => x.eps))), cpu_us_per_event: +median(res[m].map((x) => x.cpuUs)).toFixed(2), sys_us_per_event: +median(res[m].map((x) => x.sysUs)).toFixed(2), seals: res[m][0].seals }));
const base = (m) => summary.find((x) => x.mode === (m.startsWith('agent') ? 'agent' : 'sink')) ?? summary[0];
// the process's CPU includes the worker thread's: CPU per event is the whole cost, wherever it runs
for (const x of summary) {
  x.events_per_cpu_s = Math.round(1e6 / x.cpu_us_per_event);
  x.ratio = +(x.events_per_s / base(x.mode).events_per_s).toFixed(3);
  x.cpu_ratio = +(x.events_per_cpu_s / base(x.mode).events_per_cpu_s).toFixed(3);
}
if (argv.includes('--json')) {
  console.log(JSON.stringify({ records: N, bytes_per_record: avgBytes, rounds: ROUNDS, summary }));
} else {
  console.log(`${N} records of ~${avgBytes} bytes, ${ROUNDS} rounds (median), load average ${(await import('node:os')).loadavg()[0].toFixed(1)}`);
  console.log('mode                 events/s  ratio   CPU µs/event (sys)  events/CPU-s  ratio   seals');
  for (const x of summary) console.log(`${x.mode.padEnd(20)} ${String(x.events_per_s).padStart(8)}  ${x.ratio.toFixed(3)}  ${x.cpu_us_per_event.toFixed(2).padStart(12)} ${`(${x.sys_us_per_event.toFixed(2)})`.padStart(6)}  ${String(x.events_per_cpu_s).padStart(12)}  ${x.cpu_ratio.toFixed(3)}  ${String(x.seals).padStart(5)}`);
  console.log('ratio = the mode over its unchained baseline (sink or agent) in this run; wall-clock events/s move with the load of the machine, CPU per event less so');
  const cores = (await import('node:os')).availableParallelism();
  console.log(`CPU counts every thread of the process (the block digest's worker too); cores this process may use: ${cores}${cores === 1 ? ' (pinned: the worker shares the core)' : ''}`);
}
