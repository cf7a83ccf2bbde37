/**
 * What `vigil provenance show|mark|clear` does with one file: its origin
 * record (xattr), the store's copy, the derived_from chain, and the verdict an
 * exec of it would get here.
 */
import { allowedBy, type AllowRule } from './allow.js';
import { hostname } from 'node:os';
import { realpathSync, statSync } from 'node:fs';
import { kernelDev } from '../enforcement/index.js';
import { getXattr, removeXattr, setXattr } from '../kernel/xattr.js';
import { encodeOrigin, ORIGIN_MAX_BYTES, ORIGIN_XATTR, parseOrigin, type OriginRecord, type ParsedOrigin } from './format.js';
import type { ProvenanceStore, StoredMark } from './store.js';
import type { ProvenanceMode } from './service.js';
import { withTamperExemption } from './tamper.js';
import { markXattrInKernel, readMarkXattr, removeMarkXattr, writeMarkXattr } from './mark-xattr.js';

export const CHAIN_MAX = 16;

export interface ChainLink {
  path: string;
  dev: number;
  ino: string;
  /** what the source holds now: its record, a problem, or that it is gone or replaced */
  state: 'marked' | 'unmarked' | 'gone' | 'replaced' | 'bad';
  record?: OriginRecord;
  problem?: string;
}

export interface MarkReport {
  path: string;
  dev: number;
  ino: string;
  /** the xattr: absent (null), a record, or a problem */
  origin: ParsedOrigin | null;
  /** the xattr could not be read (file system without xattrs, permission) */
  originError?: string;
  stored: StoredMark | null;
  /**
   * security.bpf.vigil.mark, the mark the exec guard reads itself (Linux 6.15+, docs/provenance.md
   * IN-KERNEL ORIGIN): whether the file has it; absent from the report where the kernel does not read it
   */
  markAttribute?: 'present' | 'absent';
  chain: ChainLink[];
  /** what an exec gets under `mode` where the exec guard runs (BPF LSM); elsewhere nothing is refused */
  /** rule: the rule allowing it for every uid; uids: rules on the exec uid that allow it for those uids only */
  verdict: { exec: 'allowed' | 'refused'; reason: string; rule?: number; uids?: Array<{ uid: number; rule: number }> };
}

function readOrigin(path: string): { origin: ParsedOrigin | null; error?: string } {
  try {
    const b = getXattr(path, ORIGIN_XATTR, ORIGIN_MAX_BYTES + 1);
    if (!b) return { origin: null };
    if (b.length > ORIGIN_MAX_BYTES) return { origin: { ok: false, problem: 'garbage', detail: `more than ${ORIGIN_MAX_BYTES} bytes` } };
    return { origin: parseOrigin(b) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERANGE') return { origin: { ok: false, problem: 'garbage', detail: `more than ${ORIGIN_MAX_BYTES} bytes` } };
    return { origin: null, error: code === 'ENOTSUP' ? 'this file system keeps no trusted.* extended attributes' : (e as Error).message };
  }
}

function ids(path: string): { dev: number; ino: string } {
  const st = statSync(path, { bigint: true });
  return { dev: kernelDev(st.dev), ino: st.ino.toString() };
}

export function showMark(file: string, store: ProvenanceStore | null, mode: ProvenanceMode, allowRules: AllowRule[] = []): MarkReport {
  const path = realpathSync(file);
  const { dev, ino } = ids(path);
  const { origin, error } = readOrigin(path);
  const stored = store?.get(dev, ino) ?? null;
  const chain: ChainLink[] = [];
  let next = origin?.ok ? origin.record.derived_from : stored?.record.derived_from;
  const seen = new Set<string>([`${dev}:${ino}`]);
  while (next && chain.length < CHAIN_MAX && !seen.has(`${next.dev}:${next.ino}`)) {
    seen.add(`${next.dev}:${next.ino}`);
    const link: ChainLink = { path: next.path, dev: next.dev, ino: next.ino, state: 'gone' };
    let rec: OriginRecord | undefined;
    try {
      if (next.path) {
        const cur = ids(next.path);
        if (cur.dev !== next.dev || cur.ino !== next.ino) link.state = 'replaced';
        else {
          const o = readOrigin(next.path).origin;
          if (!o) link.state = 'unmarked';
          else if (o.ok) {
            link.state = 'marked';
            rec = o.record;
          } else {
            link.state = 'bad';
            link.problem = `${o.problem}: ${o.detail}`;
          }
        }
      }
    } catch {
      link.state = 'gone';
    }
    // a source that is gone or changed: the store still knows what it was
    if (!rec) rec = store?.get(next.dev, next.ino)?.record;
    if (rec) link.record = rec;
    chain.push(link);
    next = rec?.derived_from;
  }
  const marked = origin?.ok || stored;
  const verdict: MarkReport['verdict'] = { exec: 'allowed', reason: mode === 'off' ? 'the file carries no mark (provenance.mode is off in this config: new files are not being marked)' : 'the file carries no mark' };
  if (marked) {
    const record = origin?.ok ? origin.record : stored!.record;
    // rules on the exec uid (the exec guard's prov_allow_uid): allowed for those uids only
    const by = allowedBy(allowRules, { path, record });
    const rule = by.rule;
    const uids = by.uids.map((u) => ({ uid: u.uid, rule: u.rule.id }));
    const only = uids.length ? `; allowed for ${uids.map((u) => `uid ${u.uid} (rule ${u.rule})`).join(', ')} only` : '';
    if (rule) Object.assign(verdict, { exec: 'allowed', reason: `marked, allowed by rule ${rule.id} (vigil allow list)`, rule: rule.id });
    else if (mode === 'enforce') Object.assign(verdict, { exec: 'refused', reason: `marked and no allow rule matches${uids.length ? ' every uid' : ''}: refused (EPERM) where the exec guard runs (BPF LSM); reported only elsewhere${only}` });
    else if (mode === 'soak') verdict.reason = `marked, no allow rule matches${uids.length ? ' every uid' : ''}: runs (soak), and an allow rule is learned for review${only}`;
    else verdict.reason = `marked, no allow rule matches${uids.length ? ' every uid' : ''}: runs (${mode === 'off' ? 'provenance.mode is off' : 'monitor'}), reported${only}`;
    if (uids.length) verdict.uids = uids;
  }
  let markAttribute: 'present' | 'absent' | undefined;
  try {
    if (markXattrInKernel()) markAttribute = readMarkXattr(path) ? 'present' : 'absent';
  } catch {
    markAttribute = undefined; // unreadable: the origin line already says why
  }
  return { path, dev, ino, origin, ...(error ? { originError: error } : {}), stored, ...(markAttribute ? { markAttribute } : {}), chain, verdict };
}

/**
 * Mark a file by hand (kind "manual"): the xattr (and, on Linux 6.15+, security.bpf.vigil.mark,
 * which the exec guard reads at exec) and the store. The CLI puts the mark into an armed
 * guard's map itself; otherwise the kernel learns it at the next agent start.
 */
export function markFile(file: string, store: ProvenanceStore | null, who: { exe: string; pid: number; uid: number }): OriginRecord {
  const path = realpathSync(file);
  const { dev, ino } = ids(path);
  const record: OriginRecord = { v: 1, kind: 'manual', time: new Date().toISOString(), path, exe: who.exe, comm: 'vigil', pid: who.pid, uid: who.uid, host: hostname(), depth: 0 };
  // a running agent's tamper protection refuses every other process: this one is vigil
  withTamperExemption(() => {
    setXattr(path, ORIGIN_XATTR, encodeOrigin(record));
    writeMarkXattr(path, 'manual', 0);
  });
  store?.put({ dev, ino, path, depth: 0, record });
  return record;
}

/** Remove a file's mark (xattr and store); returns what was removed. */
export function clearFile(file: string, store: ProvenanceStore | null): { xattr: boolean; stored: boolean } {
  const path = realpathSync(file);
  const { dev, ino } = ids(path);
  const xattr = withTamperExemption(() => {
    const markAttr = removeMarkXattr(path);
    return removeXattr(path, ORIGIN_XATTR) || markAttr;
  });
  const stored = store?.remove(dev, ino) ?? false;
  return { xattr, stored };
}
