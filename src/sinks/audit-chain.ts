/**
 * Tamper-evident JSONL audit log: a hash chain over every line and
 * forward-secure seals (docs/audit.md). Journald's Forward Secure Sealing is the
 * model; the construction here is vigil's own and simpler (a hash-evolved key,
 * one HMAC per seal).
 *
 * LINE FORMAT. Every line the JSONL sink writes ends with a chain link as its
 * last field:
 *
 *   {...the record's fields...,"vigil.chain":"SEQ:PREV:HASH"}
 *
 *   SEQ   1, 2, 3 ... across files (rotation) and restarts
 *   PREV  HASH of the line before (the first line of a chain: GENESIS)
 *   HASH  base64url(SHA-256(the line's bytes up to and including "SEQ:PREV:"))
 *
 * so a line's hash covers its exact bytes (no canonical re-serialization: the
 * bytes as written are the canonical form), its place in the sequence and the
 * line before it. GENESIS = base64url(SHA-256("vigil-chain-v1\n" + CHAIN_ID)).
 *
 * Two kinds of lines are the chain's own (they are chained like the others):
 *
 *   {"vigil.audit":{"event":"start",...},"vigil.chain":...}  written at each start
 *   {"vigil.seal":{"chain":ID,"epoch":E,"through":SEQ,"head":HASH,"mac":MAC,"time":T},"vigil.chain":...}
 *
 * SEALS. MAC = base64url(HMAC-SHA256(KEY_E, "vigil-seal-v1\n" + ID + "\n" + E +
 * "\n" + SEQ + "\n" + HASH)) where SEQ/HASH are the link of the line before the
 * seal (the chain head). Once the seal is written and on disk (fdatasync), the
 * key evolves one way, KEY_{E+1} = SHA-256(KEY_E || "evolve"), the old key's
 * bytes are overwritten in memory, and the key file is rewritten (the old file's
 * bytes zeroed in place, then the new one renamed over it). The key only moves on
 * after its seal is durable, so seal epochs in a log are consecutive: a missing
 * epoch means sealed lines were removed. The verification key (KEY_0) is written
 * once, when the chain is created, to a separate file the operator moves off
 * the host.
 */
import { createHmac, hash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, mkdirSync, fdatasyncSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { fdatasync, promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { JsonlHook } from './jsonl.js';

export const CHAIN_FIELD = 'vigil.chain';
/** a line's link at its end: "vigil.chain":"SEQ:PREV:HASH"} */
export const LINK_RE = /"vigil\.chain":"(\d{1,16}):([A-Za-z0-9_-]{43}):([A-Za-z0-9_-]{43})"\}$/;
const KEY_FORMAT = 1;
const LINK_OPEN = Buffer.from(`"${CHAIN_FIELD}":"`, 'latin1');

/** The decimal digits of a non-negative safe integer at `off`; returns the offset after them. */
function writeDigits(buf: Buffer, off: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = off + digits - 1; i >= off; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return off + digits;
}

/** base64url SHA-256 of text (UTF-8) or bytes */
export function sha(data: string | Buffer): string {
  return hash('sha256', data, 'base64url');
}

export function genesis(chain: string): string {
  return sha(`vigil-chain-v1\n${chain}`);
}

export function evolveKey(key: Buffer): Buffer {
  return Buffer.from(hash('sha256', Buffer.concat([key, Buffer.from('evolve')]), 'buffer'));
}

export function sealMac(key: Buffer, chain: string, epoch: number, through: number, head: string): string {
  return createHmac('sha256', key).update(`vigil-seal-v1\n${chain}\n${epoch}\n${through}\n${head}`).digest('base64url');
}

/** A key file: the sealing key (current epoch) or the verification key (epoch 0). */
export interface AuditKey {
  chain: string;
  epoch: number;
  key: Buffer;
  /** the last seal made with the key before this one (0 = none) */
  sealedSeq: number;
  sealedHead: string | null;
  /** the log format sealedSeq/sealedHead refer to: 1 per-line links (this file), 2 block seals (audit-block.ts) */
  format?: 1 | 2;
}

export class AuditKeyError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuditKeyError';
  }
}

export function parseKey(text: string, path: string): AuditKey {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new AuditKeyError(path, 'not a vigil audit key file (not JSON)');
  }
  const key = typeof o.key === 'string' ? Buffer.from(o.key, 'base64url') : Buffer.alloc(0);
  if (o.vigil_audit_key !== KEY_FORMAT || typeof o.chain !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(o.chain) || !Number.isSafeInteger(o.epoch) || (o.epoch as number) < 0 || key.length !== 32) {
    throw new AuditKeyError(path, 'not a vigil audit key file (needs vigil_audit_key: 1, chain, epoch, a 32-byte key)');
  }
  return { chain: o.chain, epoch: o.epoch as number, key, sealedSeq: Number(o.sealed_seq ?? 0), sealedHead: typeof o.sealed_head === 'string' ? o.sealed_head : null, format: o.chain_format === 2 ? 2 : 1 };
}

export function readKeyFile(path: string): AuditKey {
  return parseKey(readFileSync(path, 'utf8'), path);
}

export function keyText(k: AuditKey, role: 'seal' | 'verify'): string {
  return `${JSON.stringify({ vigil_audit_key: KEY_FORMAT, role, chain: k.chain, epoch: k.epoch, key: k.key.toString('base64url'), sealed_seq: k.sealedSeq, sealed_head: k.sealedHead, ...(k.format === 2 ? { chain_format: 2 } : {}) })}\n`;
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* a directory that cannot be opened for fsync: the rename still happened */
  }
}

/** Write `text` to `path` 0600, durably: a temporary file, fsync, rename, fsync of the directory. */
export function writeSecret(path: string, text: string, opts: { exclusive?: boolean } = {}): void {
  // exclusive: the file is created here or not at all (never replaced)
  const target = opts.exclusive ? path : `${path}.tmp`;
  const fd = openSync(target, opts.exclusive ? 'wx' : 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!opts.exclusive) renameSync(target, path);
  fsyncDir(dirname(path));
}

export const fdatasyncAsync = promisify(fdatasync);

/** writeSecret (with the old file's bytes erased) without blocking the event loop. */
export async function writeSecretAsync(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    const old = await fsp.open(path, 'r+');
    try {
      const { size } = await old.stat();
      await old.write(Buffer.alloc(size), 0, size, 0);
      await old.sync();
    } finally {
      await old.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fsp.rename(tmp, path);
  const dir = await fsp.open(dirname(path), 'r').catch(() => null);
  if (dir) {
    await dir.sync().catch(() => undefined);
    await dir.close();
  }
}

/** The sealing key at `path`, or its temporary copy when a crash stopped a rewrite half way. */
export function loadSealKey(path: string): AuditKey | null {
  const tmp = `${path}.tmp`;
  if (existsSync(path)) {
    const text = readFileSync(path);
    if (text.some((b) => b !== 0)) return parseKey(text.toString('utf8'), path);
  }
  if (existsSync(tmp)) {
    const k = parseKey(readFileSync(tmp, 'utf8'), tmp);
    renameSync(tmp, path);
    return k;
  }
  return null;
}

/** The link at the end of a line (without its newline), or null. */
export function parseLink(line: string): { seq: number; prev: string; hash: string } | null {
  const m = LINK_RE.exec(line);
  return m ? { seq: Number(m[1]), prev: m[2]!, hash: m[3]! } : null;
}

/** The last whole line of an open file of `size` bytes ('' when empty). */
export function lastLine(fd: number, size: number): string {
  if (size === 0) return '';
  let want = 4096;
  for (;;) {
    const start = Math.max(0, size - want);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const body = buf[buf.length - 1] === 0x0a ? buf.subarray(0, buf.length - 1) : buf;
    const nl = body.lastIndexOf(0x0a);
    if (nl >= 0 || start === 0) return body.subarray(nl + 1).toString('utf8');
    want *= 4;
  }
}

export function lastLineOf(path: string): string {
  try {
    const fd = openSync(path, 'r');
    try {
      return lastLine(fd, fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

export interface AuditChainOptions {
  /** the JSONL log the chain is for */
  logPath: string;
  /** the sealing key of the current epoch (default: LOG.seal-key next to the log) */
  keyFile?: string;
  /** the verification key, written once when the chain is created (default: LOG.verify-key) */
  verifyKeyFile?: string;
  /** seal after this many lines (0 = by time only) */
  sealEvery?: number;
  /** seal when lines have waited this long, ms (0 = by count only) */
  sealIntervalMs?: number;
}

/** What the chain found when it started (run.ts logs it). */
export interface AuditChainStart {
  chain: string;
  epoch: number;
  /** the chain was created now: a new sealing key and verification key */
  created: boolean;
  /** a log with chain lines was found but no sealing key: a new chain starts (verify will say so) */
  replacedKey: boolean;
  /** the verification key is still on this host (it belongs off-host) */
  verifyKeyOnHost: string | null;
  /** seq of the line the chain continues from */
  continuesFrom: number;
  /** bytes of a cut last line removed at start (an unsealed tail lost in a crash) */
  cutBytes: number;
  /** lines the key file says were sealed are not in the log */
  sealedMissing: boolean;
}

/**
 * The JSONL sink's hook (src/sinks/jsonl.ts, JsonlHook): adds the link to each
 * line, appends seals, evolves the key once a seal is on disk.
 */
export class AuditChain implements JsonlHook {
  readonly keyFile: string;
  readonly verifyKeyFile: string;
  private readonly sealEvery: number;
  private readonly sealIntervalMs: number;
  private k!: AuditKey;
  private seq = 0;
  private head = '';
  private unsealed = 0;
  private due = false;
  /** the sink is closing: seal whatever is written last */
  private final = false;
  private lastSealAt = Date.now();
  /** a seal handed to the sink, not yet written */
  private sealInFlight: { through: number; head: string; settling?: boolean } | null = null;
  private settling: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private poke: () => void = () => undefined;
  start: AuditChainStart | null = null;
  /** seals written; key rewrites that failed (later seals reuse the epoch) */
  readonly counts = { seals: 0, keyErrors: 0 };
  lastError: Error | null = null;

  constructor(readonly opts: AuditChainOptions) {
    const dir = dirname(opts.logPath);
    const base = basename(opts.logPath);
    this.keyFile = opts.keyFile ?? join(dir, `${base}.seal-key`);
    this.verifyKeyFile = opts.verifyKeyFile ?? join(dir, `${base}.verify-key`);
    this.sealEvery = opts.sealEvery ?? 10_000;
    this.sealIntervalMs = opts.sealIntervalMs ?? 10_000;
  }

  /**
   * The log is open at `fd` (`size` bytes, after the start-up repair removed
   * `cut` bytes of a cut last line). Recovers the chain from the log's last
   * whole line (or the previous file's, right after a rotation), writes the
   * start line, and returns its length in bytes.
   */
  opened(fd: number, size: number, cut: number, poke: () => void): number {
    this.poke = poke;
    let tail = parseLink(lastLine(fd, size));
    if (!tail && size === 0) tail = parseLink(lastLineOf(`${this.opts.logPath}.1`));
    mkdirSync(dirname(this.keyFile), { recursive: true, mode: 0o700 });
    mkdirSync(dirname(this.verifyKeyFile), { recursive: true, mode: 0o700 });
    const existing = loadSealKey(this.keyFile);
    let created = false;
    let replacedKey = false;
    if (existing) {
      this.k = existing;
    } else {
      created = true;
      replacedKey = tail !== null;
      this.k = { chain: randomBytes(16).toString('base64url'), epoch: 0, key: randomBytes(32), sealedSeq: 0, sealedHead: null };
      if (existsSync(this.verifyKeyFile)) renameSync(this.verifyKeyFile, `${this.verifyKeyFile}.replaced-${Date.now()}`);
      writeSecret(this.verifyKeyFile, keyText(this.k, 'verify'), { exclusive: true });
      writeSecret(this.keyFile, keyText(this.k, 'seal'));
    }
    let sealedMissing = false;
    if (tail) {
      this.seq = tail.seq;
      this.head = tail.hash;
      sealedMissing = !created && tail.seq < this.k.sealedSeq;
    } else if (!created && this.k.sealedSeq > 0 && this.k.sealedHead) {
      this.seq = this.k.sealedSeq;
      this.head = this.k.sealedHead;
      sealedMissing = true;
    } else {
      this.seq = 0;
      this.head = genesis(this.k.chain);
    }
    this.start = {
      chain: this.k.chain,
      epoch: this.k.epoch,
      created,
      replacedKey,
      verifyKeyOnHost: existsSync(this.verifyKeyFile) ? this.verifyKeyFile : null,
      continuesFrom: this.seq,
      cutBytes: cut,
      sealedMissing,
    };
    const start = this.line(
      JSON.stringify({
        'vigil.audit': {
          event: 'start',
          time: new Date().toISOString(),
          pid: process.pid,
          chain: this.k.chain,
          epoch: this.k.epoch,
          after: this.seq,
          cut_bytes: cut,
          ...(created ? { new_chain: true } : {}),
          ...(replacedKey ? { key_replaced: true } : {}),
          ...(sealedMissing ? { sealed_missing: this.k.sealedSeq } : {}),
        },
      }),
    );
    const buf = Buffer.from(`${start}\n`);
    writeSync(fd, buf);
    this.unsealed = 0; // the start line is sealed with what follows; a lone start line needs no seal
    if (this.sealIntervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.unsealed > 0 && Date.now() - this.lastSealAt >= this.sealIntervalMs) {
          this.due = true;
          this.poke();
        }
      }, Math.min(this.sealIntervalMs, 1000));
      this.timer.unref();
    }
    return buf.length;
  }

  /** bytes the link adds to a line: `,"vigil.chain":"SEQ:PREV:HASH"` (the queue bound counts them) */
  readonly lineOverhead = 120;

  /**
   * The bytes of records' JSON (objects) as chained lines: each encoded once
   * into one buffer, hashed from there, the link written after it. Per line
   * the only calls are the encode, the hash and the write of its result: the
   * link's constant part is copied from a buffer, SEQ's digits written byte by
   * byte, PREV copied from the line before in the same buffer (no strings made
   * for them). The one-shot SHA-256 is most of what is left (docs/audit.md, COST).
   */
  pack(jsons: string[]): Buffer {
    let total = 0;
    let longest = 0;
    for (const j of jsons) {
      total += j.length;
      if (j.length > longest) longest = j.length;
    }
    // ASCII fits at once; room for one line of 3-byte characters, more on demand
    let buf = Buffer.allocUnsafe(total + jsons.length * 130 + longest * 3 + 160);
    let off = 0;
    /** where the previous line's HASH is in `buf` (-1: not in it, use this.head) */
    let prev = -1;
    for (const j of jsons) {
      if (off + j.length * 3 + 160 > buf.length) {
        const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, off + j.length * 3 + 160));
        buf.copy(bigger, 0, 0, off);
        buf = bigger;
      }
      const start = off;
      if (j.length > 2) {
        off += buf.write(j, off, 'utf8') - 1; // the closing brace makes way for the link
        buf[off++] = 0x2c; // ,
      } else {
        buf[off++] = 0x7b; // {
      }
      off += LINK_OPEN.copy(buf, off); // "vigil.chain":"
      off = writeDigits(buf, off, ++this.seq);
      buf[off++] = 0x3a; // :
      if (prev < 0) {
        off += buf.write(this.head, off, 'latin1');
      } else {
        buf.copyWithin(off, prev, prev + 43);
        off += 43;
      }
      buf[off++] = 0x3a; // :
      prev = off;
      off += buf.write(hash('sha256', buf.subarray(start, off), 'base64url'), off, 'latin1');
      buf[off++] = 0x22; // "
      buf[off++] = 0x7d; // }
      buf[off++] = 0x0a;
      if (++this.unsealed >= this.sealEvery && this.sealEvery > 0) this.due = true;
    }
    if (prev >= 0) this.head = buf.toString('latin1', prev, prev + 43);
    return buf.subarray(0, off);
  }

  /** The line for a record's JSON (an object): its fields, then the link. */
  line(json: string): string {
    const seq = ++this.seq;
    const pre = `${json.length > 2 ? `${json.slice(0, -1)},` : '{'}"vigil.chain":"${seq}:${this.head}:`;
    const h = sha(pre);
    this.head = h;
    if (++this.unsealed >= this.sealEvery && this.sealEvery > 0) this.due = true;
    return `${pre}${h}"}`;
  }

  /** Lines to write after the batch the sink is about to write: a seal when one is due. */
  tail(): string {
    if (!(this.due || this.final) || this.unsealed === 0 || this.sealInFlight) return '';
    this.due = false;
    const through = this.seq;
    const head = this.head;
    const seal = this.line(
      JSON.stringify({
        'vigil.seal': { chain: this.k.chain, epoch: this.k.epoch, through, head, mac: sealMac(this.k.key, this.k.chain, this.k.epoch, through, head), time: new Date().toISOString() },
      }),
    );
    this.unsealed = 0;
    this.due = false; // line() counted the seal line itself
    this.lastSealAt = Date.now();
    this.sealInFlight = { through, head };
    return `${seal}\n`;
  }

  /**
   * The sink wrote a batch to `fd`. A seal in it is made durable, then the key
   * evolves and the old one is erased, off the event loop (an fdatasync and a
   * key-file rewrite take 10-30 ms on a disk): no new seal until that is done.
   * (A batch that fails is kept by the sink and retried, the seal in it too:
   * the key waits for it.)
   */
  written(fd: number, _bytes?: Buffer, _at?: number): void {
    const s = this.sealInFlight;
    if (!s || s.settling) return;
    s.settling = true;
    let dup = -1;
    try {
      // a descriptor of its own for the file the seal went to: the sink may rotate and close its own meanwhile
      dup = openSync(`/proc/self/fd/${fd}`, 'r');
    } catch {
      /* no /proc: the sink's descriptor, synchronously below */
    }
    this.settling = (async () => {
      try {
        if (dup >= 0) await fdatasyncAsync(dup);
        else fdatasyncSync(fd);
        const next: AuditKey = { chain: this.k.chain, epoch: this.k.epoch + 1, key: evolveKey(this.k.key), sealedSeq: s.through, sealedHead: s.head };
        await writeSecretAsync(this.keyFile, keyText(next, 'seal'));
        this.k.key.fill(0);
        this.k = next;
        this.counts.seals++;
      } catch (e) {
        // the key could not move on: later seals reuse this epoch (verify accepts a repeated epoch)
        this.counts.keyErrors++;
        this.lastError = e as Error;
      } finally {
        if (dup >= 0) closeSync(dup);
        this.sealInFlight = null;
        this.settling = null;
        // a seal that came due meanwhile waits for no further record
        if ((this.due || this.final) && this.unsealed > 0) this.poke();
      }
    })();
  }

  /**
   * Resolves when the last seal's key evolution is done; true when the sink is
   * closing and lines written meanwhile still need their seal (it was poked).
   */
  async drained(): Promise<boolean> {
    if (this.settling) await this.settling;
    if (this.final && this.unsealed > 0 && !this.sealInFlight) {
      this.poke();
      return true;
    }
    return false;
  }

  /** The sink is closing: seal what is unsealed (the sink writes it before it closes). */
  closing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // lines still queued in the sink are chained when it packs them: the seal follows them
    this.final = true;
    this.poke();
  }
}
