/**
 * Tamper-evident JSONL audit log, format 2: block seals (docs/audit.md). The
 * records' lines are written exactly as the bare sink writes them (no field
 * added); the chain's own lines mark blocks:
 *
 *   {"vigil.audit":{"v":2,"event":"start",...}}      each start: begins a block
 *   ...records, unchanged...
 *   {"vigil.seal":{"v":2,"alg":"sha256","chain":ID,"n":N,"epoch":E,"prev":S_{N-1},
 *                  "lines":L,"bytes":B,"block":D,"time":T,"hash":S_N,"mac":M,"lens":LENS}}
 *
 * A BLOCK is the exact bytes written since the previous seal line (or from a
 * start line, which always begins one) up to this seal line, newlines included,
 * seal lines excluded:
 *
 *   D    = base64url(SHA-256(the block's bytes))       one digest over the block
 *   LENS = base64url(LEB128 varints of each line's byte length, newline excluded)
 *   S_N  = base64url(SHA-256("vigil-seal-v2\n" ID \n N \n E \n S_{N-1} \n L \n B \n LENS \n alg \n D \n T))
 *   S_0  = base64url(SHA-256("vigil-chain-v2\n" + ID))
 *   M    = base64url(HMAC-SHA256(KEY_E, "vigil-mac-v2\n" + S_N))
 *
 * so the hash work is one digest per block over its bytes (no per-line call),
 * and seals form a chain of their own (N consecutive, each naming the one
 * before). LENS lets verify name a removed, inserted or length-changed line
 * and a swapped pair of different lengths; a change that keeps every line's
 * length is located to its block (docs/audit.md, VERIFY). The key is format 1's
 * (audit-chain.ts): it evolves one way after a seal is durable; seals made
 * while it moves on reuse its epoch (epochs never skip).
 *
 * The digest runs on the sink's thread after each write (hasher 'inline', the
 * default), or on a worker thread that reads the written bytes back from the
 * file (page cache) through a descriptor of its own (hasher 'thread': the sink's
 * thread then pays a message per write; it helps only where a core is idle,
 * docs/audit.md COST).
 *
 * After a crash the lines since the last seal are an unsealed tail: the next
 * start line names their count, bytes and digest as found (`tail`), and begins
 * a new block, so verify reports "unsealed tail of N lines", not tampering.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, fstatSync, mkdirSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { evolveKey, fdatasyncAsync, keyText, loadSealKey, LINK_RE, sha, writeSecret, writeSecretAsync, type AuditChainStart, type AuditKey } from './audit-chain.js';
import type { JsonlHook } from './jsonl.js';

/**
 * The key moves on (an fdatasync of the log and a durable key-file rewrite) at most
 * once a second under a fast stream: seals in between keep the epoch. The bare sink
 * leaves writeback to the kernel; a step per 10,000-line block made it write the log
 * back from the agent's thread up to 20 times a second (docs/audit.md, COST).
 */
export const KEY_STEP_MS = 1000;

export const SEAL2_PREFIX = '{"vigil.seal":{"v":2,';
export const START2_PREFIX = '{"vigil.audit":{"v":2,"event":"start"';
const SEAL2 = Buffer.from(SEAL2_PREFIX);
const START2 = Buffer.from(START2_PREFIX);

export function blockGenesis(chain: string): string {
  return sha(`vigil-chain-v2\n${chain}`);
}

/** The fields of a format-2 seal, as in its line. */
export interface Seal2 {
  v: 2;
  alg: 'sha256';
  chain: string;
  n: number;
  epoch: number;
  prev: string;
  lines: number;
  bytes: number;
  block: string;
  time: string;
  hash: string;
  mac: string;
  lens: string;
}

export function sealHash(s: Omit<Seal2, 'hash' | 'mac' | 'v'>): string {
  return sha(`vigil-seal-v2\n${s.chain}\n${s.n}\n${s.epoch}\n${s.prev}\n${s.lines}\n${s.bytes}\n${s.lens}\n${s.alg}\n${s.block}\n${s.time}`);
}

export function sealMac2(key: Buffer, hash: string): string {
  return createHmac('sha256', key).update(`vigil-mac-v2\n${hash}`).digest('base64url');
}

/** LEB128 varints of non-negative integers, base64url */
export function encodeLens(...parts: Array<ArrayLike<number>>): string {
  let count = 0;
  for (const lens of parts) count += lens.length;
  const out = Buffer.allocUnsafe(count * 8);
  let o = 0;
  for (const lens of parts) {
    for (let i = 0; i < lens.length; i++) {
      let x = lens[i]!;
      while (x >= 0x80) {
        out[o++] = (x & 0x7f) | 0x80;
        x = Math.floor(x / 128);
      }
      out[o++] = x;
    }
  }
  return out.toString('base64url', 0, o);
}

export function decodeLens(text: string): number[] | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const b = Buffer.from(text, 'base64url');
  const out: number[] = [];
  let x = 0;
  let mul = 1;
  for (const byte of b) {
    x += (byte & 0x7f) * mul;
    if (byte & 0x80) {
      mul *= 128;
      if (mul > 2 ** 49) return null;
    } else {
      out.push(x);
      x = 0;
      mul = 1;
    }
  }
  return mul === 1 ? out : null;
}

/** One SHA-256 over a block's bytes, fed in the order written. */
interface BlockHasher {
  /** `bytes` reached the file open at `fd` at offset `at` */
  update(bytes: Buffer, fd: number, at: number): void;
  /** the digest of everything fed since the last one (base64url), and a new block */
  digest(): string | Promise<string>;
  close(): void;
}

class InlineHasher implements BlockHasher {
  private h = createHash('sha256');
  update(bytes: Buffer): void {
    this.h.update(bytes);
  }
  digest(): string {
    const d = this.h.digest('base64url');
    this.h = createHash('sha256');
    return d;
  }
  close(): void {}
}

// CommonJS (eval): the worker needs no file of its own next to the compiled module. It
// reads the bytes back from the log (the page cache) through a descriptor of its own
// for each file, into one reused buffer: no memory moves between the threads.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');
let h = createHash('sha256');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', (m) => {
  if (m.fd !== undefined) {
    for (let off = m.off, left = m.len; left > 0; ) {
      const n = readSync(m.fd, buf, 0, Math.min(buf.length, left), off);
      if (n <= 0) throw new Error('the log is shorter than what was written to it (' + left + ' bytes missing at ' + off + ')');
      h.update(n === buf.length ? buf : buf.subarray(0, n));
      off += n;
      left -= n;
    }
  }
  if (m.ack !== undefined) parentPort.postMessage({ id: m.ack });
  if (m.id !== undefined) {
    parentPort.postMessage({ id: m.id, digest: h.digest('base64url') });
    h = createHash('sha256');
  }
});`;

/** The digest on a worker thread, which reads what the sink wrote back from the file: the sink's thread sends a message per write. */
class ThreadHasher implements BlockHasher {
  private readonly w: Worker;
  private next = 0;
  private readonly waiting = new Map<number, { res: (d: string) => void; rej: (e: Error) => void }>();
  /** the worker's descriptor for the file being written, and where the sink's writes to it end */
  private dup = -1;
  private end = -1;
  private lastFd = -1;
  failed: Error | null = null;
  constructor() {
    this.w = new Worker(WORKER, { eval: true });
    this.w.unref();
    this.w.on('message', (m: { id: number; digest: string }) => {
      const r = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      r?.res(m.digest);
    });
    this.w.on('error', (e) => {
      this.failed = e;
      for (const r of this.waiting.values()) r.rej(e);
      this.waiting.clear();
    });
  }
  update(bytes: Buffer, fd: number, at: number): void {
    if (this.failed) return;
    // a write before the end of the last one, or to another descriptor: a new file (rotation, reopen)
    if (fd !== this.lastFd || at < this.end || this.dup < 0) {
      if (this.dup >= 0) this.closeAfter(this.dup);
      this.dup = openSync(`/proc/self/fd/${fd}`, 'r');
      this.lastFd = fd;
    }
    this.end = at + bytes.length;
    this.w.postMessage({ fd: this.dup, off: at, len: bytes.length });
  }
  digest(): Promise<string> {
    const id = ++this.next;
    return new Promise((res, rej) => {
      if (this.failed) return rej(this.failed);
      this.waiting.set(id, { res, rej });
      this.w.postMessage({ id });
    });
  }
  /** Close the descriptor `fd` (this thread's) once the worker has read what was sent before. */
  private closeAfter(fd: number): void {
    const id = ++this.next;
    this.waiting.set(id, { res: () => closeSync(fd), rej: () => closeSync(fd) });
    this.w.postMessage({ ack: id });
  }
  close(): void {
    if (this.dup >= 0) this.closeAfter(this.dup);
    this.dup = -1;
    // the worker ends after the messages before (a terminate would drop them)
    const id = ++this.next;
    this.waiting.set(id, { res: () => void this.w.terminate(), rej: () => undefined });
    this.w.postMessage({ ack: id });
  }
}

export interface AuditBlockOptions {
  logPath: string;
  keyFile?: string;
  verifyKeyFile?: string;
  /** seal after this many lines (0 = by time only) */
  sealEvery?: number;
  /** seal when lines have waited this long, ms (0 = by count only) */
  sealIntervalMs?: number;
  /** where the block digest runs: 'inline' (default: the sink's thread) or 'thread' (a worker reading the bytes back from the file) */
  hasher?: 'thread' | 'inline';
}

export interface AuditBlockStart extends AuditChainStart {
  /** lines after the last seal found at start (a crash's unsealed tail) */
  tailLines: number;
  /** the log held format-1 (per-line) chained lines before this start */
  afterFormat1: boolean;
}

/** The last line that is a block boundary (a format-2 seal or start line), scanning back from the end in chunks. */
function lastBoundary(fd: number, size: number): { at: number; end: number; line: string; seal: boolean } | null {
  let carry = Buffer.alloc(0);
  for (let pos = size; pos > 0; ) {
    const start = Math.max(0, pos - (1 << 16));
    const chunk = Buffer.alloc(pos - start);
    readSync(fd, chunk, 0, chunk.length, start);
    // data covers [start, start + data.length): the chunk and the line cut at its end
    const data = carry.length ? Buffer.concat([chunk, carry]) : chunk;
    let lineEnd = data.length;
    for (;;) {
      const nl = lineEnd >= 2 ? data.lastIndexOf(0x0a, lineEnd - 2) : -1;
      if (nl < 0 && start > 0) {
        carry = data.subarray(0, lineEnd);
        break;
      }
      const ls = nl + 1;
      const seal = data.subarray(ls, ls + SEAL2.length).equals(SEAL2);
      if (seal || data.subarray(ls, ls + START2.length).equals(START2)) {
        return { at: start + ls, end: start + lineEnd, line: data.toString('utf8', ls, lineEnd - 1), seal };
      }
      if (nl < 0) return null;
      lineEnd = ls;
    }
    pos = start;
  }
  return null;
}

/** Lines, bytes and SHA-256 of the file's bytes from `from` to `size`. */
function tailOf(fd: number, from: number, size: number): { lines: number; bytes: number; sha256: string } {
  const h = createHash('sha256');
  let lines = 0;
  const buf = Buffer.alloc(1 << 16);
  for (let pos = from; pos < size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
    if (n <= 0) break;
    const b = buf.subarray(0, n);
    h.update(b);
    for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) lines++;
    pos += n;
  }
  return { lines, bytes: size - from, sha256: h.digest('base64url') };
}

function lastBoundaryOf(path: string): ReturnType<typeof lastBoundary> {
  try {
    const fd = openSync(path, 'r');
    try {
      return lastBoundary(fd, fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/** A block being sealed: its digest asked of the hasher; `line` once it came ('' when the hasher failed). */
interface Sealing {
  lines: number;
  bytes: number;
  lens: string;
  promise?: Promise<void>;
  line?: string;
  /** the key epoch its MAC was made with */
  epoch?: number;
}

/**
 * The JSONL sink's hook for format 2: records' lines go out unchanged; the
 * bytes written are fed to one digest per block; a seal line is written alone
 * at each block boundary (seal_every lines, seal_interval, before a rotation,
 * at close), and the key evolves once a seal is durable.
 */
export class AuditBlockChain implements JsonlHook {
  readonly keyFile: string;
  readonly verifyKeyFile: string;
  private readonly sealEvery: number;
  private readonly sealIntervalMs: number;
  private readonly hasher: BlockHasher;
  private k!: AuditKey;
  /** the last seal's number and hash */
  private n = 0;
  private head = '';
  /** byte lengths of lines packed but not yet written, in order: one array per pack, `i` its first not written */
  private pend: Array<{ a: Uint32Array; i: number }> = [];
  /** the current block: its lines' lengths (views of the packs' arrays), lines, bytes */
  private segs: Uint32Array[] = [];
  private lines = 0;
  private bytes = 0;
  private due = false;
  private final = false;
  private lastSealAt = Date.now();
  /** a digest asked of the hasher for the block being closed */
  private sealing: Sealing | null = null;
  /** a seal line handed to the sink, not yet written */
  private sealOut: Buffer | null = null;
  private sealOutEpoch = 0;
  private settling: Promise<void> | null = null;
  /** when the key last started to move on */
  private lastStep = 0;
  /** the epoch of a seal written while the key was moving on */
  private settleAgain: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private poke: () => void = () => undefined;
  start: AuditBlockStart | null = null;
  readonly counts = { seals: 0, keyErrors: 0 };
  lastError: Error | null = null;
  readonly lineOverhead = 0;

  constructor(readonly opts: AuditBlockOptions) {
    const dir = dirname(opts.logPath);
    const base = basename(opts.logPath);
    this.keyFile = opts.keyFile ?? join(dir, `${base}.seal-key`);
    this.verifyKeyFile = opts.verifyKeyFile ?? join(dir, `${base}.verify-key`);
    this.sealEvery = opts.sealEvery ?? 10_000;
    this.sealIntervalMs = opts.sealIntervalMs ?? 10_000;
    this.hasher = opts.hasher === 'thread' ? new ThreadHasher() : new InlineHasher();
  }

  opened(fd: number, size: number, cut: number, poke: () => void): number {
    this.poke = poke;
    let b = lastBoundary(fd, size);
    let tail: { lines: number; bytes: number; sha256: string } | null = null;
    let last: { n: number; head: string } | null = null;
    let afterFormat1 = false;
    if (b) {
      tail = tailOf(fd, b.seal ? b.end : b.at, size);
      if (tail.lines === 0) tail = null;
      try {
        const o = JSON.parse(b.line) as Record<string, Record<string, unknown>>;
        if (b.seal) {
          const s = o['vigil.seal']!;
          last = { n: Number(s.n), head: String(s.hash) };
        } else {
          const a = o['vigil.audit']!;
          last = { n: Number(a.after), head: String(a.prev) };
        }
      } catch {
        last = null;
      }
    } else if (size === 0) {
      b = lastBoundaryOf(`${this.opts.logPath}.1`);
      if (b?.seal) {
        try {
          const s = (JSON.parse(b.line) as Record<string, Record<string, unknown>>)['vigil.seal']!;
          last = { n: Number(s.n), head: String(s.hash) };
        } catch {
          last = null;
        }
      }
    } else {
      // no format-2 line: lines before the chain, or a format-1 chain (its last line has a link)
      const buf = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      const text = buf.toString('latin1').replace(/\n$/, '');
      afterFormat1 = LINK_RE.test(text.slice(text.lastIndexOf('\n') + 1));
    }
    mkdirSync(dirname(this.keyFile), { recursive: true, mode: 0o700 });
    mkdirSync(dirname(this.verifyKeyFile), { recursive: true, mode: 0o700 });
    const existing = loadSealKey(this.keyFile);
    let created = false;
    let replacedKey = false;
    if (existing) {
      this.k = existing;
    } else {
      created = true;
      replacedKey = last !== null || afterFormat1;
      this.k = { chain: randomBytes(16).toString('base64url'), epoch: 0, key: randomBytes(32), sealedSeq: 0, sealedHead: null, format: 2 };
      if (existsSync(this.verifyKeyFile)) renameSync(this.verifyKeyFile, `${this.verifyKeyFile}.replaced-${Date.now()}`);
      writeSecret(this.verifyKeyFile, keyText(this.k, 'verify'), { exclusive: true });
      writeSecret(this.keyFile, keyText(this.k, 'seal'));
    }
    const keyV2 = this.k.format === 2 && this.k.sealedSeq > 0 && this.k.sealedHead !== null;
    let sealedMissing = false;
    if (created) {
      this.n = 0;
      this.head = blockGenesis(this.k.chain);
    } else if (last && Number.isSafeInteger(last.n)) {
      this.n = last.n;
      this.head = last.n === 0 ? blockGenesis(this.k.chain) : last.head;
      sealedMissing = keyV2 && last.n < this.k.sealedSeq;
    } else if (keyV2) {
      this.n = this.k.sealedSeq;
      this.head = this.k.sealedHead!;
      sealedMissing = true;
    } else {
      this.n = 0;
      this.head = blockGenesis(this.k.chain);
    }
    this.start = {
      chain: this.k.chain,
      epoch: this.k.epoch,
      created,
      replacedKey,
      verifyKeyOnHost: existsSync(this.verifyKeyFile) ? this.verifyKeyFile : null,
      continuesFrom: this.n,
      cutBytes: cut,
      sealedMissing,
      tailLines: tail?.lines ?? 0,
      afterFormat1,
    };
    const line = `${JSON.stringify({
      'vigil.audit': {
        v: 2,
        event: 'start',
        time: new Date().toISOString(),
        pid: process.pid,
        chain: this.k.chain,
        epoch: this.k.epoch,
        after: this.n,
        prev: this.head,
        cut_bytes: cut,
        ...(tail ? { tail } : {}),
        ...(created ? { new_chain: true } : {}),
        ...(replacedKey ? { key_replaced: true } : {}),
        ...(sealedMissing ? { sealed_missing: this.k.sealedSeq } : {}),
        ...(afterFormat1 ? { after_format: 1 } : {}),
      },
    })}\n`;
    const buf = Buffer.from(line);
    writeSync(fd, buf);
    // the start line begins the block
    this.segs = [Uint32Array.of(buf.length - 1)];
    this.lines = 1;
    this.bytes = buf.length;
    this.hasher.update(buf, fd, size);
    if (this.sealIntervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.lines > 1 && Date.now() - this.lastSealAt >= this.sealIntervalMs) {
          this.due = true;
          this.poke();
        }
      }, Math.min(this.sealIntervalMs, 1000));
      this.timer.unref();
    }
    return buf.length;
  }

  /** The records' lines, as the bare sink writes them; their byte lengths noted for the seal. */
  pack(jsons: string[]): Buffer {
    let chars = 0;
    for (const j of jsons) chars += j.length;
    jsons.push('');
    const buf = Buffer.from(jsons.join('\n'));
    jsons.pop();
    const a = new Uint32Array(jsons.length);
    if (buf.length === chars + jsons.length) {
      // ASCII (the usual: JSON.stringify escapes nothing above it, but paths may hold UTF-8): a char is a byte
      for (let i = 0; i < jsons.length; i++) a[i] = jsons[i]!.length;
    } else {
      for (let i = 0; i < jsons.length; i++) a[i] = Buffer.byteLength(jsons[i]!);
    }
    this.pend.push({ a, i: 0 });
    return buf;
  }

  tail(): string {
    return '';
  }

  before(s: { rotating: boolean; held: boolean }): string | null {
    if (s.held || this.sealOut) return '';
    if (this.sealing) {
      if (this.sealing.line === undefined) return null; // the digest is on its way: poked when it comes
      const { line, epoch } = this.sealing;
      this.sealing = null;
      if (line) {
        this.sealOut = Buffer.from(line);
        this.sealOutEpoch = epoch ?? this.k.epoch;
      }
      return line;
    }
    if (this.lines === 0 || !(this.due || this.final || s.rotating)) return '';
    this.due = false;
    const sealing: Sealing = { lines: this.lines, bytes: this.bytes, lens: encodeLens(...this.segs) };
    this.segs = [];
    this.lines = 0;
    this.bytes = 0;
    this.sealing = sealing;
    const d = this.hasher.digest();
    if (typeof d === 'string') {
      sealing.line = this.sealLine(sealing, d);
      return this.before(s);
    }
    sealing.promise = d.then(
      (digest) => {
        sealing.line = this.sealLine(sealing, digest);
        this.poke();
      },
      (e: Error) => {
        // the hasher failed: this block cannot be sealed; later ones are hashed inline
        this.lastError = e;
        this.counts.keyErrors++;
        sealing.line = '';
        this.poke();
      },
    );
    return null;
  }

  private sealLine(b: Sealing, digest: string): string {
    const n = this.n + 1;
    b.epoch = this.k.epoch;
    const f = { alg: 'sha256' as const, chain: this.k.chain, n, epoch: this.k.epoch, prev: this.head, lines: b.lines, bytes: b.bytes, block: digest, time: new Date().toISOString(), lens: b.lens };
    const hash = sealHash(f);
    const mac = sealMac2(this.k.key, hash);
    this.n = n;
    this.head = hash;
    this.lastSealAt = Date.now();
    const { lens, ...rest } = f;
    return `${JSON.stringify({ 'vigil.seal': { v: 2, ...rest, hash, mac, lens } })}\n`;
  }

  /** Bytes that reached the file, in order: the seal handed out (if they start with it), then block lines. */
  private consume(bytes: Buffer, fd: number, at: number): number | null {
    let sealed: number | null = null;
    if (this.sealOut && bytes.length >= this.sealOut.length && bytes.subarray(0, this.sealOut.length).equals(this.sealOut)) {
      at += this.sealOut.length;
      bytes = bytes.subarray(this.sealOut.length);
      this.sealOut = null;
      this.counts.seals++;
      sealed = this.sealOutEpoch;
    }
    if (bytes.length === 0) return sealed;
    // the written lines' lengths move from the pending list to the block
    let left = bytes.length;
    while (left > 0 && this.pend.length > 0) {
      const p = this.pend[0]!;
      const from = p.i;
      let i = from;
      while (left > 0 && i < p.a.length) left -= p.a[i++]! + 1;
      this.segs.push(p.a.subarray(from, i));
      this.lines += i - from;
      p.i = i;
      if (i === p.a.length) this.pend.shift();
    }
    this.bytes += bytes.length;
    this.hasher.update(bytes, fd, at);
    if (this.sealEvery > 0 && this.lines >= this.sealEvery) this.due = true;
    return sealed;
  }

  written(fd: number, bytes: Buffer, at: number): void {
    const epoch = this.consume(bytes, fd, at);
    // the key moves on once per epoch, after a seal made with it is durable: epochs in the log never skip
    if (epoch === null) return;
    if (this.settling) this.settleAgain = epoch;
    else if (epoch === this.k.epoch && (this.final || Date.now() - this.lastStep >= KEY_STEP_MS)) this.settle(fd);
  }

  wrotePart(bytes: Buffer, fd: number, at: number): void {
    this.consume(bytes, fd, at);
  }

  /** The seal is on disk (fdatasync), then the key moves on; off the event loop. */
  private settle(fd: number): void {
    this.lastStep = Date.now();
    const through = this.n;
    const head = this.head;
    let dup = -1;
    try {
      dup = openSync(`/proc/self/fd/${fd}`, 'r');
    } catch {
      /* no /proc */
    }
    this.settling = (async () => {
      try {
        if (dup >= 0) await fdatasyncAsync(dup);
        else fdatasyncSync(fd);
        const next: AuditKey = { chain: this.k.chain, epoch: this.k.epoch + 1, key: evolveKey(this.k.key), sealedSeq: through, sealedHead: head, format: 2 };
        await writeSecretAsync(this.keyFile, keyText(next, 'seal'));
        this.k.key.fill(0);
        this.k = next;
      } catch (e) {
        this.counts.keyErrors++;
        this.lastError = e as Error;
      } finally {
        if (dup >= 0) closeSync(dup);
        this.settling = null;
        // a seal written meanwhile (same epoch): its key step follows
        const again = this.settleAgain;
        this.settleAgain = null;
        if (again === this.k.epoch) this.settle(fd);
      }
    })();
  }

  async drained(): Promise<boolean> {
    if (this.sealing?.promise) await this.sealing.promise;
    while (this.settling) await this.settling;
    // the sink flushed before asking: a seal handed out was written or, failing at close, dropped
    this.sealOut = null;
    if (this.final && (this.lines > 0 || this.sealing)) {
      this.poke();
      return true;
    }
    return false;
  }

  closing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.final = true;
    this.poke();
  }

  /** The sink closed: the hasher's thread ends. */
  closed(): void {
    this.hasher.close();
  }
}
