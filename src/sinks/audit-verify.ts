/**
 * Verifies a chained JSONL audit log (format: src/sinks/audit-chain.ts,
 * docs/audit.md). Reads the files as one stream in chain order (by the first
 * sequence number in each), checks every line's own hash, that it links to the
 * line before, that the sequence has no gap, repeat or step back, and every
 * seal: that it seals the line before it, that epochs run without a gap, and,
 * with a key, that its MAC verifies. Stops at the first problem and names its
 * file and line.
 */
import { readFileSync } from 'node:fs';
import { evolveKey, genesis, LINK_RE, sealMac, sha, type AuditKey } from './audit-chain.js';
import { createHash } from 'node:crypto';
import { blockGenesis, decodeLens, SEAL2_PREFIX, sealHash, sealMac2, START2_PREFIX } from './audit-block.js';

export type ProblemKind =
  /** a line's bytes do not match its own hash */
  | 'changed'
  /** sequence numbers missing: lines removed */
  | 'removed'
  /** a line out of its place */
  | 'reordered'
  /** a line that does not belong: no link, a repeated sequence number, a copy */
  | 'inserted'
  /** a line that does not link to the one before (it, or the one before, was replaced) */
  | 'unlinked'
  /** a seal whose MAC does not verify, or that does not seal the line before it */
  | 'forged_seal'
  /** sealed lines removed: seal epochs with a gap */
  | 'missing_seal'
  /** a seal of another chain (the sealing key was replaced) */
  | 'foreign_chain';

export interface Where {
  file: string;
  /** 1-based */
  line: number;
}

export interface Problem extends Where {
  kind: ProblemKind;
  message: string;
  /** format 2: the last line of the range the problem is in (a change located to its block, not to a line) */
  last_line?: number;
}

export interface Note extends Where {
  kind: 'start' | 'tail_lost' | 'new_chain' | 'sealed_missing' | 'unterminated' | 'unchained' | 'starts_mid_chain' | 'seal_unchecked' | 'unsealed_tail' | 'format_1';
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  /** 1: a link on every line (seq = line numbers); 2: block seals (seq = seal numbers) */
  format: 1 | 2;
  /** some line carries a chain link (false: a log written without the chain) */
  chained: boolean;
  problem: Problem | null;
  /** files in the order read (chain order) */
  files: Array<{ path: string; lines: number; first_seq: number | null; last_seq: number | null }>;
  chain: string | null;
  /** record lines (not seals or start lines) */
  records: number;
  seals: number;
  /** seals whose MAC was checked with the key */
  seals_checked: number;
  key: { given: boolean; epoch: number | null };
  last_seal: (Where & { epoch: number; seq: number }) | null;
  /** record lines after the last good seal (all of them when there is none) */
  unsealed: number;
  first_seq: number | null;
  last_seq: number | null;
  notes: Note[];
}

interface Line {
  file: string;
  no: number;
  bytes: Buffer;
}

function* linesOf(path: string, buf: Buffer): Generator<Line & { terminated: boolean }> {
  let no = 0;
  for (let off = 0; off < buf.length; ) {
    const nl = buf.indexOf(0x0a, off);
    const end = nl < 0 ? buf.length : nl;
    no++;
    yield { file: path, no, bytes: buf.subarray(off, end), terminated: nl >= 0 };
    off = end + 1;
  }
}

function firstSeq(buf: Buffer): number | null {
  for (const l of linesOf('', buf)) {
    const m = LINK_RE.exec(l.bytes.toString('latin1'));
    if (m) return Number(m[1]);
  }
  return null;
}

const SEAL_PREFIX = Buffer.from('{"vigil.seal":');
const AUDIT_PREFIX = Buffer.from('{"vigil.audit":');

/** Verify `paths` (any order) with an optional key (any epoch's key file of the chain). */
export function verifyFiles(paths: string[], key?: AuditKey): VerifyReport {
  const data = paths.map((p) => ({ path: p, buf: readFileSync(p) }));
  // format 2 (block seals) when any file holds its lines; format 1 otherwise, checked as it always was
  if (data.some((d) => hasFormat2(d.buf))) return verifyBlocks(data, key);
  return verifyChain(data, key);
}

/** Format 1: a link on every line. */
export function verifyChain(data: Array<{ path: string; buf: Buffer }>, key?: AuditKey): VerifyReport {
  const ordered = data.map((d, i) => ({ ...d, i, first: firstSeq(d.buf) })).sort((a, b) => (a.first ?? -1) - (b.first ?? -1) || a.i - b.i);
  const r: VerifyReport = {
    ok: true,
    format: 1,
    chained: false,
    problem: null,
    files: ordered.map((d) => ({ path: d.path, lines: 0, first_seq: d.first, last_seq: null })),
    chain: key?.chain ?? null,
    records: 0,
    seals: 0,
    seals_checked: 0,
    key: { given: !!key, epoch: key?.epoch ?? null },
    last_seal: null,
    unsealed: 0,
    first_seq: null,
    last_seq: null,
    notes: [],
  };
  const fail = (w: Where, kind: ProblemKind, message: string): VerifyReport => {
    r.ok = false;
    r.problem = { file: w.file, line: w.line, kind, message };
    return r;
  };
  // the key of the epoch last used, derived forward from the given one
  let kEpoch = key?.epoch ?? 0;
  let kBytes: Buffer | null = key ? Buffer.from(key.key) : null;
  const keyFor = (epoch: number): Buffer | null => {
    if (!kBytes || epoch < kEpoch) return null;
    while (kEpoch < epoch) {
      kBytes = evolveKey(kBytes);
      kEpoch++;
    }
    return kBytes;
  };
  let prev: { seq: number; hash: string; at: Where } | null = null;
  let lastEpoch: number | null = null;
  const seen = new Map<number, { at: Where; hash: string }>();
  let chained = false;

  for (let fi = 0; fi < ordered.length; fi++) {
    const f = ordered[fi]!;
    const info = r.files[fi]!;
    const all = [...linesOf(f.path, f.buf)];
    info.lines = all.length;
    for (let li = 0; li < all.length; li++) {
      const l = all[li]!;
      const at: Where = { file: f.path, line: l.no };
      if (!l.terminated) {
        r.notes.push({ ...at, kind: 'unterminated', message: 'the last line has no newline: a write cut by a crash (vigil removes it at its next start); not checked' });
        break;
      }
      // latin1: one character per byte, so string offsets are byte offsets
      const text = l.bytes.toString('latin1');
      const m = LINK_RE.exec(text);
      if (!m) {
        if (!chained) {
          if (r.notes.at(-1)?.kind !== 'unchained') r.notes.push({ ...at, kind: 'unchained', message: 'lines before the chain starts (written without audit_log.chain): not covered' });
          continue;
        }
        return fail(at, 'inserted', 'a line without a chain link: inserted, or its link removed');
      }
      chained = r.chained = true;
      const seq = Number(m[1]);
      const linkPrev = m[2]!;
      const own = m[3]!;
      const hashStart = m.index + m[0].length - 45;
      if (sha(l.bytes.subarray(0, hashStart)) !== own) {
        return fail(at, 'changed', `the line's bytes do not match its link (seq ${seq})`);
      }
      if (prev) {
        if (seq === prev.seq + 1 && linkPrev !== prev.hash) {
          return fail(at, 'unlinked', `does not link to the line before (${prev.at.file}:${prev.at.line}): that line was replaced (its link recomputed) or this one inserted`);
        }
        if (seq > prev.seq + 1) {
          const want = prev.seq + 1;
          const later = findSeq(ordered, fi, li, want);
          if (later) return fail(at, 'reordered', `seq ${seq} comes right after seq ${prev.seq} (${prev.at.file}:${prev.at.line}); seq ${want} is later, at ${later.file}:${later.line}`);
          return fail(at, 'removed', `${seq - want === 1 ? `the line with seq ${want} is` : `lines with seq ${want}..${seq - 1} (${seq - want}) are`} missing before this line (seq ${seq})`);
        }
        if (seq <= prev.seq) {
          const before = seen.get(seq);
          if (before && before.hash === own) return fail(at, 'inserted', `a copy of ${before.at.file}:${before.at.line} (seq ${seq})`);
          return fail(at, 'reordered', `reordered or inserted: seq ${seq} after seq ${prev.seq} (${prev.at.file}:${prev.at.line})`);
        }
      } else {
        r.first_seq = seq;
        if (seq === 1 && key && linkPrev !== genesis(key.chain)) return fail(at, 'foreign_chain', `the first line of the chain does not start chain ${key.chain} (the key's)`);
        if (seq > 1) r.notes.push({ ...at, kind: 'starts_mid_chain', message: `starts at seq ${seq}: the lines before are in files not given (rotated away); checked from here` });
      }
      seen.set(seq, { at, hash: own });

      if (l.bytes.subarray(0, SEAL_PREFIX.length).equals(SEAL_PREFIX)) {
        let s: { chain?: unknown; epoch?: unknown; through?: unknown; head?: unknown; mac?: unknown };
        try {
          s = (JSON.parse(l.bytes.toString('utf8')) as Record<string, typeof s>)['vigil.seal'] ?? {};
        } catch {
          return fail(at, 'changed', 'a seal line that is not JSON');
        }
        const epoch = Number(s.epoch);
        if (!Number.isSafeInteger(epoch) || typeof s.chain !== 'string' || typeof s.mac !== 'string') return fail(at, 'forged_seal', 'a seal without chain, epoch or mac');
        if (!prev || s.through !== prev.seq || s.head !== prev.hash) return fail(at, 'forged_seal', `a seal that does not seal the line before it (it names seq ${String(s.through)})`);
        if (r.chain && s.chain !== r.chain) {
          return fail(at, 'foreign_chain', `a seal of chain ${s.chain}, not ${r.chain}: the sealing key was replaced after this point (a new chain, not verifiable with ${key ? 'this key' : 'the first chain'})`);
        }
        r.chain ??= s.chain;
        if (lastEpoch !== null && epoch < lastEpoch) return fail(at, 'reordered', `a seal of epoch ${epoch} after epoch ${lastEpoch}`);
        if (lastEpoch !== null && epoch > lastEpoch + 1) {
          return fail(at, 'missing_seal', `the seals of epoch ${lastEpoch + 1}${epoch - lastEpoch > 2 ? `..${epoch - 1}` : ''} are missing between ${r.last_seal!.file}:${r.last_seal!.line} and this seal: sealed lines were removed`);
        }
        if (key) {
          const k = keyFor(epoch);
          if (!k) {
            // one note for the run of seals older than the key
            const last = r.notes.at(-1);
            if (last?.kind === 'seal_unchecked') last.message = last.message.replace(/^\d+ seals?/, (m) => `${parseInt(m, 10) + 1} seals`);
            else r.notes.push({ ...at, kind: 'seal_unchecked', message: `1 seal from here, of epochs before the key's (${key.epoch}): not checked` });
          } else {
            if (sealMac(k, s.chain, epoch, prev.seq, prev.hash) !== s.mac) return fail(at, 'forged_seal', `its MAC (epoch ${epoch}) does not verify with the key: the lines it seals or the seal were altered`);
            r.seals_checked++;
          }
        }
        lastEpoch = epoch;
        r.seals++;
        r.last_seal = { ...at, epoch, seq: prev.seq };
        r.unsealed = 0;
      } else if (l.bytes.subarray(0, AUDIT_PREFIX.length).equals(AUDIT_PREFIX)) {
        let a: Record<string, unknown> = {};
        try {
          a = ((JSON.parse(l.bytes.toString('utf8')) as Record<string, unknown>)['vigil.audit'] ?? {}) as Record<string, unknown>;
        } catch {
          return fail(at, 'changed', 'an audit line that is not JSON');
        }
        if (a.event === 'start') {
          const cut = Number(a.cut_bytes ?? 0);
          r.notes.push({ ...at, kind: 'start', message: `vigil started (pid ${String(a.pid)}, epoch ${String(a.epoch)}), continuing after seq ${String(a.after)}` });
          if (cut > 0) r.notes.push({ ...at, kind: 'tail_lost', message: `unsealed tail lost: a crash cut the last line (${cut} bytes removed at this start); the chain goes on from the last whole line; lines queued in memory at the crash were never written` });
          if (a.new_chain && (prev || a.key_replaced)) r.notes.push({ ...at, kind: 'new_chain', message: `a new chain ${String(a.chain)} starts here: the sealing key was missing at start (deleted, or a new install)` });
          if (a.sealed_missing) r.notes.push({ ...at, kind: 'sealed_missing', message: `at this start the log's last line was before the last seal (seq ${String(a.sealed_missing)}): sealed lines were missing from the log` });
          if (a.new_chain && typeof a.chain === 'string' && !r.chain) r.chain = a.chain;
        }
      } else {
        r.records++;
        r.unsealed++;
      }
      prev = { seq, hash: own, at };
      info.last_seq = seq;
      r.last_seq = seq;
    }
  }
  r.chained = chained;
  if (!chained) {
    return fail({ file: ordered[0]?.path ?? '', line: 1 }, 'inserted', 'no chain links in these files: they were not written with audit_log.chain on');
  }
  return r;
}

function findSeq(files: Array<{ path: string; buf: Buffer }>, fi: number, li: number, want: number): Where | null {
  for (let i = fi; i < files.length; i++) {
    const f = files[i]!;
    for (const l of linesOf(f.path, f.buf)) {
      if (i === fi && l.no <= li + 1) continue;
      const m = LINK_RE.exec(l.bytes.toString('latin1'));
      if (m && Number(m[1]) === want) return { file: f.path, line: l.no };
    }
  }
  return null;
}

const SEAL2 = Buffer.from(SEAL2_PREFIX);
const START2 = Buffer.from(START2_PREFIX);
const startsWith = (b: Buffer, p: Buffer) => b.length >= p.length && b.subarray(0, p.length).equals(p);

/** The buffer holds a format-2 seal or start line. */
export function hasFormat2(buf: Buffer): boolean {
  for (const p of [SEAL2, START2]) {
    if (startsWith(buf, p)) return true;
    if (buf.indexOf(Buffer.concat([Buffer.from('\n'), p])) >= 0) return true;
  }
  return false;
}

function firstSealN(buf: Buffer): number | null {
  const at = startsWith(buf, SEAL2) ? 0 : buf.indexOf(Buffer.concat([Buffer.from('\n'), SEAL2])) + 1;
  if (at < 0 || (at === 0 && !startsWith(buf, SEAL2))) return null;
  const m = /"n":(\d{1,16}),/.exec(buf.toString('latin1', at, at + 200));
  return m ? Number(m[1]) : null;
}

const want0 = (lens: unknown) => (typeof lens === 'string' ? (decodeLens(lens)?.length ?? 0) : 0);
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

/**
 * Format 2: block seals (src/sinks/audit-block.ts). Files in chain order (files
 * of format 1 or without a chain first, by their first SEQ; then by their first
 * seal's number); lines before the first format-2 line are checked as format 1
 * when they carry links. Every block's lines are measured against the seal's
 * LENS (naming a removed, inserted or resized line, a swapped pair of different
 * lengths), then hashed and compared with its digest (a change that kept every
 * length is located to the block's range of lines).
 */
export function verifyBlocks(data: Array<{ path: string; buf: Buffer }>, key?: AuditKey): VerifyReport {
  const ordered = data
    .map((d, i) => {
      const v2 = hasFormat2(d.buf);
      return { ...d, i, v2, n: v2 ? firstSealN(d.buf) : null, seq: v2 ? null : firstSeq(d.buf) };
    })
    .sort((a, b) => Number(a.v2) - Number(b.v2) || (a.v2 ? (a.n ?? Infinity) - (b.n ?? Infinity) : (a.seq ?? -1) - (b.seq ?? -1)) || a.i - b.i);
  const r: VerifyReport = {
    ok: true,
    format: 2,
    chained: true,
    problem: null,
    files: ordered.map((d) => ({ path: d.path, lines: 0, first_seq: null, last_seq: null })),
    chain: key?.chain ?? null,
    records: 0,
    seals: 0,
    seals_checked: 0,
    key: { given: !!key, epoch: key?.epoch ?? null },
    last_seal: null,
    unsealed: 0,
    first_seq: null,
    last_seq: null,
    notes: [],
  };
  const fail = (w: Where, kind: ProblemKind, message: string, last?: number): VerifyReport => {
    r.ok = false;
    r.problem = { file: w.file, line: w.line, kind, message, ...(last !== undefined && last !== w.line ? { last_line: last } : {}) };
    return r;
  };
  // the lines before the first format-2 line: format 1 (checked as such) or unchained
  const pre: Array<{ path: string; buf: Buffer }> = [];
  let firstFi = 0;
  let firstLi = 0;
  find: for (let fi = 0; fi < ordered.length; fi++) {
    const f = ordered[fi]!;
    let li = 0;
    for (const l of linesOf(f.path, f.buf)) {
      if (startsWith(l.bytes, SEAL2) || startsWith(l.bytes, START2)) {
        const off = l.bytes.byteOffset - f.buf.byteOffset;
        if (off > 0) pre.push({ path: f.path, buf: f.buf.subarray(0, off) });
        firstFi = fi;
        firstLi = li;
        break find;
      }
      li++;
    }
    pre.push(f);
    r.files[fi]!.lines = li;
  }
  if (pre.some((p) => firstSeq(p.buf) !== null)) {
    const v1 = verifyChain(pre, key);
    if (v1.problem) return { ...v1, format: 1 };
    r.notes.push(...v1.notes);
    r.notes.push({
      file: pre[0]!.path,
      line: 1,
      kind: 'format_1',
      message: `per-line chain (format 1) up to ${pre.at(-1)!.path}: ${v1.records} records, seq ${v1.first_seq}..${v1.last_seq}, ${v1.seals} seals${key ? ` (${v1.seals_checked} checked with the key)` : ''}, intact; block seals (format 2) follow`,
    });
    r.records += v1.records;
  } else if (pre.some((p) => p.buf.length > 0)) {
    r.notes.push({ file: pre[0]!.path, line: 1, kind: 'unchained', message: 'lines before the chain starts (written without audit_log.chain): not covered' });
  }

  let kEpoch = key?.epoch ?? 0;
  let kBytes: Buffer | null = key ? Buffer.from(key.key) : null;
  const keyFor = (epoch: number): Buffer | null => {
    if (!kBytes || epoch < kEpoch) return null;
    while (kEpoch < epoch) {
      kBytes = evolveKey(kBytes);
      kEpoch++;
    }
    return kBytes;
  };
  interface Block {
    at: Where[];
    lens: number[];
    records: number;
    h: ReturnType<typeof createHash>;
    bytes: number;
  }
  const newBlock = (): Block => ({ at: [], lens: [], records: 0, h: createHash('sha256'), bytes: 0 });
  let blk = newBlock();
  let last: { n: number; hash: string; epoch: number; at: Where } | null = null;
  /** what the next seal must name as prev, and its number: from the last seal, or a start line */
  let expect: { n: number; prev: string } | null = null;
  let first = true;
  const range = (b: Block) => (b.at.length ? `${b.at[0]!.file}:${b.at[0]!.line}..${b.at.at(-1)!.file === b.at[0]!.file ? '' : `${b.at.at(-1)!.file}:`}${b.at.at(-1)!.line}` : '(none)');

  for (let fi = firstFi; fi < ordered.length; fi++) {
    const f = ordered[fi]!;
    const info = r.files[fi]!;
    const all = [...linesOf(f.path, f.buf)];
    info.lines = all.length;
    for (let li = fi === firstFi ? firstLi : 0; li < all.length; li++) {
      const l = all[li]!;
      const at: Where = { file: f.path, line: l.no };
      if (!l.terminated) {
        r.notes.push({ ...at, kind: 'unterminated', message: 'the last line has no newline: a write cut by a crash (vigil removes it at its next start); not checked' });
        break;
      }
      if (startsWith(l.bytes, SEAL2)) {
        let s: Record<string, unknown>;
        try {
          s = ((JSON.parse(l.bytes.toString('utf8')) as Record<string, unknown>)['vigil.seal'] ?? {}) as Record<string, unknown>;
        } catch {
          return fail(at, 'changed', 'a seal line that is not JSON');
        }
        const n = s.n as number;
        const epoch = s.epoch as number;
        const str = (k: string) => typeof s[k] === 'string';
        if (!Number.isSafeInteger(n) || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(s.lines) || !Number.isSafeInteger(s.bytes) || s.alg !== 'sha256' || !['chain', 'prev', 'block', 'time', 'hash', 'mac', 'lens'].every(str)) {
          return fail(at, 'forged_seal', 'a seal without its fields (v 2: alg sha256, chain, n, epoch, prev, lines, bytes, block, time, hash, mac, lens)');
        }
        const chain = s.chain as string;
        if (r.chain && chain !== r.chain) return fail(at, 'foreign_chain', `a seal of chain ${chain}, not ${r.chain}: the sealing key was replaced after this point (a new chain, not verifiable with ${key ? 'this key' : 'the first chain'})`);
        r.chain ??= chain;
        if (first && n === 1 && !expect) expect = { n: 0, prev: blockGenesis(chain) };
        if (expect) {
          if (n <= expect.n) return fail(at, 'reordered', `seal ${n} after seal ${expect.n}${last ? ` (${last.at.file}:${last.at.line})` : ''}: seals reordered or a seal copied`);
          if (n > expect.n + 1) return fail(at, 'missing_seal', `seal ${n} follows seal ${expect.n}: ${n - expect.n === 2 ? `seal ${expect.n + 1} is` : `seals ${expect.n + 1}..${n - 1} are`} missing, with the lines they sealed`);
          if (s.prev !== expect.prev) return fail(at, 'unlinked', `seal ${n} does not name the seal before it${last ? ` (${last.at.file}:${last.at.line})` : ''}: one of them was replaced`);
        } else if (!(want0(s.lens) > blk.lens.length)) {
          r.notes.push({ ...(blk.at[0] ?? at), kind: 'starts_mid_chain', message: `starts at seal ${n}: the seals before are in files not given (rotated away); checked from here` });
        }
        first = false;
        if (last && epoch < last.epoch) return fail(at, 'reordered', `a seal of epoch ${epoch} after epoch ${last.epoch}`);
        if (last && epoch > last.epoch + 1) return fail(at, 'missing_seal', `the seals of epoch ${last.epoch + 1}${epoch - last.epoch > 2 ? `..${epoch - 1}` : ''} are missing between ${last.at.file}:${last.at.line} and this seal: sealed lines were removed`);
        const want = decodeLens(s.lens as string);
        if (!want || want.length !== s.lines || want.reduce((a, b) => a + b + 1, 0) !== s.bytes) return fail(at, 'forged_seal', 'its line lengths (lens) do not agree with its lines and bytes');
        // the first block of files whose oldest were rotated away may begin in a file not given
        const partial = !expect && want.length > blk.lens.length && want.slice(want.length - blk.lens.length).every((x, k) => x === blk.lens[k]);
        const bad = partial ? null : compareLens(blk, want, at, n);
        if (bad) return fail(bad.at, bad.kind, bad.message, bad.last);
        if (partial) {
          r.notes.push({ ...(blk.at[0] ?? at), kind: 'starts_mid_chain', message: `the block of seal ${n} began in a file not given: its ${plural(blk.at.length, 'line')} here match the sealed lengths, their bytes not checked` });
        } else if (blk.h.digest('base64url') !== s.block) {
          return fail(blk.at[0] ?? at, 'changed', `the bytes of lines ${range(blk)} do not match seal ${n} (${at.file}:${at.line}), though every line has its sealed length: a byte changed in place, or lines of equal length swapped; a block seal locates it to these ${plural(blk.at.length, 'line')}`, blk.at.at(-1)?.line);
        }
        const fields = { alg: 'sha256' as const, chain, n, epoch, prev: s.prev as string, lines: s.lines as number, bytes: s.bytes as number, block: s.block as string, time: s.time as string, lens: s.lens as string };
        if (sealHash(fields) !== s.hash) return fail(at, 'forged_seal', `seal ${n}: its own fields were changed (its hash does not match them)`);
        if (key) {
          const k = keyFor(epoch);
          if (!k) {
            const lastNote = r.notes.at(-1);
            if (lastNote?.kind === 'seal_unchecked') lastNote.message = lastNote.message.replace(/^\d+ seals?/, (m) => `${parseInt(m, 10) + 1} seals`);
            else r.notes.push({ ...at, kind: 'seal_unchecked', message: `1 seal from here, of epochs before the key's (${key.epoch}): not checked` });
          } else {
            if (sealMac2(k, s.hash as string) !== s.mac) return fail(at, 'forged_seal', `seal ${n}: its MAC (epoch ${epoch}) does not verify with the key: the lines it seals or the seal were altered`);
            r.seals_checked++;
          }
        }
        r.seals++;
        r.first_seq ??= n;
        r.last_seq = n;
        info.first_seq ??= n;
        info.last_seq = n;
        r.last_seal = { ...at, epoch, seq: n };
        last = { n, hash: s.hash as string, epoch, at };
        expect = { n, prev: s.hash as string };
        r.unsealed = 0;
        blk = newBlock();
        continue;
      }
      if (startsWith(l.bytes, START2)) {
        let a: Record<string, unknown>;
        try {
          a = ((JSON.parse(l.bytes.toString('utf8')) as Record<string, unknown>)['vigil.audit'] ?? {}) as Record<string, unknown>;
        } catch {
          return fail(at, 'changed', 'a start line that is not JSON');
        }
        const tail = a.tail as { lines?: unknown; bytes?: unknown; sha256?: unknown } | undefined;
        // lines since the last block boundary: a run that stopped before sealing them
        if (blk.at.length > 0) {
          if (!tail) return fail(blk.at[0]!, 'inserted', `lines ${range(blk)} (${blk.at.length}) after the last seal are not the unsealed tail the start at ${at.file}:${at.line} found there (none): inserted while vigil was stopped`, blk.at.at(-1)!.line);
          const d = blk.h.digest('base64url');
          if (tail.lines !== blk.at.length || tail.bytes !== blk.bytes || tail.sha256 !== d) {
            const kind: ProblemKind = Number(tail.lines) > blk.at.length ? 'removed' : Number(tail.lines) < blk.at.length ? 'inserted' : 'changed';
            return fail(blk.at[0]!, kind, `the unsealed tail ${range(blk)} (${plural(blk.at.length, 'line')}, ${blk.bytes} bytes) is not what the start at ${at.file}:${at.line} found and recorded (${String(tail.lines)} lines, ${String(tail.bytes)} bytes): changed since`, blk.at.at(-1)!.line);
          }
          r.notes.push({
            ...blk.at[0]!,
            kind: 'unsealed_tail',
            message: `unsealed tail of ${plural(blk.at.length, 'line')} (${range(blk)}): written by a run that stopped before sealing them (a crash, SIGKILL); the next start recorded their count, bytes and digest (sealed with its block), not the run that wrote them`,
          });
        } else if (tail && Number(tail.lines) > 0) {
          return fail(at, 'removed', `the start found an unsealed tail of ${String(tail.lines)} lines before it; they are missing`);
        }
        const after = Number(a.after);
        if (expect && a.new_chain !== true) {
          if (after > expect.n) return fail(at, 'missing_seal', `this start continued after seal ${after}; the files end at seal ${expect.n}: seals ${expect.n + 1}..${after} are missing`);
          if (after < expect.n || a.prev !== expect.prev) return fail(at, 'reordered', `this start continued after seal ${after}, not after seal ${expect.n}${last ? ` (${last.at.file}:${last.at.line})` : ''}`);
        } else if (a.new_chain === true) {
          if (last || a.key_replaced) r.notes.push({ ...at, kind: 'new_chain', message: `a new chain ${String(a.chain)} starts here: the sealing key was missing at start (deleted, or a new install)` });
          if (!last) {
            expect = { n: 0, prev: blockGenesis(String(a.chain)) };
            r.chain ??= String(a.chain);
          }
        } else if (first && typeof a.prev === 'string' && Number.isSafeInteger(after)) {
          expect = { n: after, prev: a.prev };
          if (after > 0) r.notes.push({ ...at, kind: 'starts_mid_chain', message: `starts after seal ${after}: the seals before are in files not given (rotated away); checked from here` });
        }
        first = false;
        const cut = Number(a.cut_bytes ?? 0);
        r.notes.push({ ...at, kind: 'start', message: `vigil started (pid ${String(a.pid)}, epoch ${String(a.epoch)}), continuing after seal ${String(a.after)}` });
        if (cut > 0) r.notes.push({ ...at, kind: 'tail_lost', message: `a crash cut the last line (${cut} bytes removed at this start); lines queued in memory at the crash were never written` });
        if (a.sealed_missing) r.notes.push({ ...at, kind: 'sealed_missing', message: `at this start the log ended before the last seal the key recorded (seal ${String(a.sealed_missing)}): sealed lines were missing from the log` });
        blk = newBlock();
      } else {
        blk.records++;
        r.records++;
      }
      blk.at.push(at);
      blk.lens.push(l.bytes.length);
      blk.bytes += l.bytes.length + 1;
      blk.h.update(l.bytes);
      blk.h.update('\n');
      info.lines = all.length;
    }
  }
  r.unsealed = blk.records;
  if (blk.at.length > 0) {
    r.notes.push({ ...blk.at[0]!, kind: 'unsealed_tail', message: `unsealed tail of ${plural(blk.at.length, 'line')} (${range(blk)}) after the last seal: not sealed yet (a running vigil seals them at its next seal; after a crash its next start records them)` });
  }
  return r;
}

/** The block's lines against the seal's lengths: the first difference, named (null: all lengths as sealed). */
function compareLens(b: { at: Where[]; lens: number[] }, want: number[], sealAt: Where, n: number): { at: Where; kind: ProblemKind; message: string; last?: number } | null {
  const got = b.lens;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  if (i === got.length && i === want.length) return null;
  let ja = got.length;
  let jw = want.length;
  while (ja > i && jw > i && got[ja - 1] === want[jw - 1]) {
    ja--;
    jw--;
  }
  const da = ja - i;
  const dw = jw - i;
  const here = b.at[i] ?? sealAt;
  const of = `(block of seal ${n}, ${sealAt.file}:${sealAt.line})`;
  if (da === 0) return { at: here, kind: 'removed', message: `${dw === 1 ? 'a line' : `${dw} lines`} of ${want.slice(i, jw).join(', ')} bytes sealed here ${dw === 1 ? 'is' : 'are'} missing before this line ${of}` };
  if (dw === 0) return { at: here, kind: 'inserted', message: `${da === 1 ? 'a line' : `${da} lines`} that seal ${n} did not seal ${of}`, last: b.at[ja - 1]!.line };
  if (da === 2 && dw === 2 && got[i] === want[i + 1] && got[i + 1] === want[i]) {
    return { at: here, kind: 'reordered', message: `this line and the next (${b.at[i + 1]!.file}:${b.at[i + 1]!.line}) are swapped ${of}`, last: b.at[i + 1]!.line };
  }
  if (da === 1 && dw === 1) return { at: here, kind: 'changed', message: `this line is ${got[i]} bytes, sealed as ${want[i]} ${of}` };
  return { at: here, kind: da > dw ? 'inserted' : da < dw ? 'removed' : 'changed', message: `lines from here to ${b.at[ja - 1]?.line ?? here.line} (${da}) are not the ${dw} lines sealed here ${of}`, last: b.at[ja - 1]?.line };
}
