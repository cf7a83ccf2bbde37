#!/usr/bin/env node
/**
 * What one publish tick costs a quiet process: the CPU (every thread, user + system) and
 * the page faults of sending a batch to JetStream and taking its ack, at an agent's pace
 * (one tick every --gap ms, as the linger timer does), against the same loop with
 * nothing published. Modes, interleaved in one process (the order turns every round):
 *   idle    the timer loop alone (the baseline)
 *   one     one batch of --size bytes per tick, through the client's publish() with the
 *           agent's six headers and a reply subject (as src/fleet/publisher.ts does)
 *   three   three batches of --size/3 per tick (three subjects): the same bytes in three
 *           messages, as when an agent's categories seal together
 *   frame   the batch of `one` as one prebuilt HPUB frame in a reused buffer, handed to
 *           the client's protocol handler (a private API, here only to measure): what the
 *           client's framing costs (publish() joins the protocol line, headers, body and
 *           CRLF into a fresh buffer every flush)
 *   raw     the batch of `one` (the same HPUB line, headers and reply subject) written in
 *           one write() on a plain TCP socket that speaks the protocol itself, its ack read
 *           from the same socket: no client at all, the floor any client pays for one
 *           publish and its ack (the write, the server's answer, the wake-up to read it)
 *   raw-noreply  the same without a reply subject: the server stores the batch and says
 *           nothing (what the ack's round trip adds is raw minus this)
 * Per tick: the median over --rounds of each round's mean over --ticks ticks, minus idle's.
 * The server is Debian's nats-server on loopback (JetStream, file store); its CPU is not
 * counted. Not part of CI.
 *
 *   node bench/fleet/publish-cost.mjs [--size 150000] [--gap 20] [--ticks 60] [--rounds 8] [--json]
 *
 * What it showed (2026-12-02, README's machine): a tick costs 0.4-1.4 ms of CPU whatever
 * its size (1 KB or 150 KB) and whether it carries one message or three; publish()
 * faults in ~35 fresh pages per 150 KB tick, the prebuilt frame ~2, and costs 23-40 % less
 * (200 ms and 20 ms ticks). Without the client (raw) a publish and its ack still cost
 * ~0.3 ms: the round trip itself (docs/fleet.md).
 */
import { execFileSync } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, createInbox, headers } from '@nats-io/transport-node';
import { startNats } from './nats.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const argv = process.argv.slice(2);
const usage = (msg) => {
  console.error(`publish-cost: ${msg} (--help for the options)`);
  process.exit(2);
};
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) usage(`--${name} takes a positive number (got ${argv[i + 1] ?? 'nothing'})`);
  return v;
};
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
  process.exit(0);
}
const VALUED = ['--size', '--gap', '--ticks', '--rounds'];
for (let i = 0; i < argv.length; i++) {
  if (VALUED.includes(argv[i])) i++;
  else if (argv[i] !== '--json') usage(`unknown argument ${argv[i]}`);
}
const SIZE = opt('size', 150_000);
const GAP = opt('gap', 20);
const TICKS = opt('ticks', 60);
const ROUNDS = opt('rounds', 8);
const JSON_OUT = argv.includes('--json');
const MODES = ['idle', 'one', 'three', 'frame', 'raw', 'raw-noreply'];

const fail = (msg) => {
  console.error(`publish-cost: ${msg}`);
  process.exit(1);
};
const nats = await startNats({ prefix: 'vigil-pubcost-' }).catch((e) => fail(e.message));
try {
  execFileSync(process.execPath, [join(ROOT, 'bin/vigil'), 'fleet', 'init', '--server', nats.url], { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (e) {
  fail(`vigil fleet init failed: ${String(e.stderr ?? e.message).trim()}`);
}
const nc = await connect({ servers: nats.url });
const inbox = createInbox();
let acks = 0;
let refused = 0;
/** frame and raw modes (one buffer, frameBuf): the last frame sent, whose ack (or write) frees the buffer */
let frameAcked = null;
/** An answer to a publish on `subject` (null: an error instead): counted, refused unless a PubAck with a seq; frees the frame buffer when it answers the last frame. */
function onAck(subject, text) {
  acks++;
  let a = null;
  try {
    a = text ? JSON.parse(text) : null;
  } catch {}
  if (!a || a.error || !a.seq) refused++;
  if (frameAcked && subject === frameAcked.subject) frameAcked.resolve();
}
nc.subscribe(`${inbox}.*`, { callback: (err, msg) => onAck(msg?.subject, err ? null : Buffer.from(msg.data).toString('utf8')) });

/**
 * The raw socket: CONNECT, one SUB for the acks, PONG for the server's PINGs, and a reader
 * of MSG/HMSG frames (an ack is a MSG on _RAW.<n>; a JetStream error or "no responders"
 * is a refusal).
 */
const raw = tcpConnect(nats.port, '127.0.0.1');
raw.setNoDelay(true);
await new Promise((res, rej) => raw.once('connect', res).once('error', rej)).catch((e) => fail(`raw socket: ${e.message}`));
let rawIn = Buffer.alloc(0);
raw.on('data', (d) => {
  rawIn = rawIn.length ? Buffer.concat([rawIn, d]) : d;
  for (;;) {
    const eol = rawIn.indexOf('\r\n');
    if (eol < 0) return;
    const line = rawIn.toString('latin1', 0, eol);
    if (line === 'PING') raw.write('PONG\r\n');
    else if (line.startsWith('-ERR')) fail(`raw socket: the server said ${line}`);
    else if (line.startsWith('MSG ') || line.startsWith('HMSG ')) {
      const f = line.split(' ');
      const size = Number(f[f.length - 1]);
      if (rawIn.length < eol + 2 + size + 2) return;
      const hlen = line.startsWith('HMSG ') ? Number(f[f.length - 2]) : 0;
      onAck(f[1], rawIn.toString('utf8', eol + 2 + hlen, eol + 2 + size));
      rawIn = rawIn.subarray(eol + 2 + size + 2);
      continue;
    }
    rawIn = rawIn.subarray(eol + 2);
  }
});
raw.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\nSUB _RAW.* 1\r\nPING\r\n');
await sleep(200);

const HOST = 'pubcost';
const body = Buffer.alloc(SIZE, 'x');
const third = Buffer.alloc(Math.round(SIZE / 3), 'x');
const frameBuf = Buffer.allocUnsafeSlow(SIZE + 1024);
let id = 0;
const minorFaults = () => {
  const s = readFileSync('/proc/self/stat', 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
};

function agentHeaders(msgId, seq) {
  const h = headers();
  h.set('Nats-Msg-Id', msgId);
  h.set('Vigil-Host', HOST);
  h.set('Vigil-Seq', String(seq));
  h.set('Vigil-Count', '1000');
  h.set('Vigil-T0', String(Date.now()));
  h.set('Vigil-Kind', 'event');
  return h;
}

async function tick(mode, seq) {
  if (mode === 'one') {
    const msgId = `${HOST}.${++id}`;
    nc.publish(`vigil.events.${HOST}.process_creation`, body, { reply: `${inbox}.${id}`, headers: agentHeaders(msgId, seq) });
  } else if (mode === 'three') {
    for (const cat of ['process_creation', 'process_termination', 'file_event']) {
      const msgId = `${HOST}.${++id}`;
      nc.publish(`vigil.events.${HOST}.${cat}`, third, { reply: `${inbox}.${id}`, headers: agentHeaders(msgId, seq) });
    }
  } else if (mode === 'frame') {
    const { frame, subject } = await nextFrame(frameAcked, `${inbox}.`, seq);
    frameAcked = pendingAck(subject);
    nc.protocol.sendCommand(frame);
  } else if (mode === 'raw' || mode === 'raw-noreply') {
    const reply = mode === 'raw';
    const { frame, subject } = await nextFrame(frameAcked, reply ? '_RAW.' : null, seq);
    const ack = (frameAcked = pendingAck(subject));
    // without a reply subject nothing answers: the write's end frees the buffer
    raw.write(frame, reply ? undefined : () => ack.resolve());
  }
}

/** An ack to wait for: `subject` is the reply subject it comes on. */
function pendingAck(subject) {
  let resolve;
  const done = new Promise((r) => (resolve = r));
  return { subject, done, resolve };
}

/**
 * The next HPUB frame (the agent's six headers, `body`) in frameBuf, its reply subject
 * `replyPrefix` and the message's number (null: no reply subject). The buffer is reused:
 * first the last frame's ack (or, without a reply, its write) is waited for.
 */
async function nextFrame(last, replyPrefix, seq) {
  if (last) {
    const late = await Promise.race([last.done, sleep(10_000, 'late')]);
    if (late) throw new Error(`no answer from the server to a publish in 10 s (${nats.url})`);
  }
  const msgId = `${HOST}.${++id}`;
  const reply = replyPrefix === null ? null : `${replyPrefix}${id}`;
  const hdr = `NATS/1.0\r\nNats-Msg-Id: ${msgId}\r\nVigil-Host: ${HOST}\r\nVigil-Seq: ${seq}\r\nVigil-Count: 1000\r\nVigil-T0: ${Date.now()}\r\nVigil-Kind: event\r\n\r\n`;
  const hlen = Buffer.byteLength(hdr);
  let o = frameBuf.write(`HPUB vigil.events.${HOST}.process_creation ${reply ? `${reply} ` : ''}${hlen} ${hlen + body.length}\r\n`, 0, 'latin1');
  o += frameBuf.write(hdr, o, 'latin1');
  o += body.copy(frameBuf, o);
  frameBuf[o++] = 13;
  frameBuf[o++] = 10;
  return { frame: frameBuf.subarray(0, o), subject: reply };
}

const cpu = Object.fromEntries(MODES.map((m) => [m, []]));
const faults = Object.fromEntries(MODES.map((m) => [m, []]));
async function measure() {
  for (let r = 0; r < ROUNDS; r++) {
    const order = MODES.map((_, i) => MODES[(i + r) % MODES.length]);
    for (const mode of order) {
      const f0 = minorFaults();
      const c0 = process.cpuUsage();
      for (let i = 0; i < TICKS; i++) {
        await tick(mode, i);
        await sleep(GAP);
      }
      const c = process.cpuUsage(c0);
      cpu[mode].push((c.user + c.system) / TICKS);
      faults[mode].push((minorFaults() - f0) / TICKS);
    }
    if (!JSON_OUT) process.stderr.write(`round ${r + 1}/${ROUNDS}\r`);
  }
}
await measure().catch((e) => fail(e.message));
await sleep(300);
await nc.close();
raw.destroy();
await nats.stop();

const median = (x) => {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const idle = median(cpu.idle);
const out = {
  size: SIZE, gap_ms: GAP, ticks: TICKS, rounds: ROUNDS, acks, refused,
  modes: Object.fromEntries(MODES.map((m) => [m, { us_per_tick: Math.round(median(cpu[m])), over_idle_us: Math.round(median(cpu[m]) - idle), faults_per_tick: +median(faults[m]).toFixed(1), rounds_us: cpu[m].map(Math.round) }])),
};
if (JSON_OUT) {
  console.log(JSON.stringify(out));
} else {
  console.log(`publish tick cost: ${SIZE} bytes per tick, a tick every ${GAP} ms, ${TICKS} ticks × ${ROUNDS} rounds (medians; CPU of every thread, user + system)`);
  const w = Math.max(...MODES.map((m) => m.length));
  console.log(`${'mode'.padEnd(w)} µs/tick  over idle  page faults/tick`);
  for (const m of MODES) {
    const x = out.modes[m];
    console.log(`${m.padEnd(w)} ${String(x.us_per_tick).padStart(7)}  ${m === 'idle' ? '        -' : String(x.over_idle_us).padStart(9)}  ${String(x.faults_per_tick).padStart(16)}`);
  }
  const one = out.modes.one.over_idle_us;
  console.log(`three/one ${(out.modes.three.over_idle_us / one).toFixed(2)} (the same bytes in three messages), frame/one ${(out.modes.frame.over_idle_us / one).toFixed(2)} (the client's framing left out), raw/one ${(out.modes.raw.over_idle_us / one).toFixed(2)} (no client: the round trip's floor), raw-noreply/one ${(out.modes['raw-noreply'].over_idle_us / one).toFixed(2)}; acks ${acks}, refused ${refused}`);
}
if (refused) process.exitCode = 1;
