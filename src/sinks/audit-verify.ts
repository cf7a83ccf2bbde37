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
}

export interface Note extends Where {
  kind: 'start' | 'tail_lost' | 'new_chain' | 'sealed_missing' | 'unterminated' | 'unchained' | 'starts_mid_chain' | 'seal_unchecked';
  message: string;
}

export interface VerifyReport {
  ok: boolean;
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
  const ordered = data.map((d, i) => ({ ...d, i, first: firstSeq(d.buf) })).sort((a, b) => (a.first ?? -1) - (b.first ?? -1) || a.i - b.i);
  const r: VerifyReport = {
    ok: true,
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
