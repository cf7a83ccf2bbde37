/**
 * Allow rules of the exec policy on marked files (docs/provenance.md, ALLOW
 * RULES): stored in SQLite next to the deny rules (table provenance_allow),
 * matched in userspace against what vigil knows of each marked inode (its
 * path now, its landing path, its creator exe, comm and uid, the remote
 * peer), and the matched inodes put in the exec guard's prov_allow map, which
 * the kernel checks at bprm_check_security (and its other hooks). Rules learned
 * in soak mode wait as `pending` until `vigil allow review` accepts them.
 *
 * The exec uid (who runs the file) is known only at exec time, in the kernel:
 * a rule with `exec_uid` is matched here on its other conditions and the
 * inodes it matches go into prov_allow_uid keyed (dev, ino, exec_uid), which
 * the exec guard looks up with the uid of the exec (current_uid(): the real
 * uid, the decision record's uid) when the inode is not in prov_allow
 * (docs/provenance.md ALLOW RULES).
 */
import Database from 'better-sqlite3';
import { BlockList, isIP } from 'node:net';
import { statSync } from 'node:fs';
import { openRulesDatabase } from '../store/files.js';
import { kernelDev } from '../enforcement/index.js';
import { markKey, markUidKey, VigilMarkUidKey } from '../events/taint.js';
import type { BpfMap } from '../kernel/index.js';
import type { OriginRecord } from './format.js';
import type { ProvenanceStore } from './store.js';

/** The dimensions a rule can constrain (every one given must match: AND). */
export const ALLOW_DIMENSIONS = ['path', 'landing', 'exe', 'comm', 'uid', 'exec_uid', 'remote', 'remote_host'] as const;
export type AllowDimension = (typeof ALLOW_DIMENSIONS)[number];

export interface AllowConditions {
  /** glob on the file's path now (the path executed) */
  path?: string | null;
  /** glob on the landing path (where it was written: the origin record's path) */
  landing?: string | null;
  /** glob on the creator's executable path (origin exe) */
  exe?: string | null;
  /** glob on the creator's task name (origin comm; spoofable: prefer exe) */
  comm?: string | null;
  /** the creator's uid */
  uid?: number | null;
  /** the uid running the exec (the process's real uid at execve) */
  exec_uid?: number | null;
  /** the remote peer's address: an IP or a CIDR */
  remote?: string | null;
  /** glob on the remote peer's host name (origin remote.host, when the DNS answer was seen): * and ? within one label, ** across labels; case-insensitive */
  remote_host?: string | null;
}

export interface AllowRule extends AllowConditions {
  id: number;
  /** active: applied; pending: learned in soak mode, waiting for review */
  state: 'active' | 'pending';
  /** manual (vigil allow add) or soak (learned) */
  source: 'manual' | 'soak';
  comment: string | null;
  createdMs: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS provenance_allow (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  state TEXT NOT NULL CHECK (state IN ('active', 'pending')),
  source TEXT NOT NULL CHECK (source IN ('manual', 'soak')),
  path TEXT, landing TEXT, exe TEXT, comm TEXT, uid INTEGER, remote TEXT,
  comment TEXT,
  exec_uid INTEGER, remote_host TEXT,
  created_ms INTEGER NOT NULL
);
`;

interface Row {
  id: number;
  state: 'active' | 'pending';
  source: 'manual' | 'soak';
  path: string | null;
  landing: string | null;
  exe: string | null;
  comm: string | null;
  uid: number | null;
  remote: string | null;
  exec_uid: number | null;
  remote_host: string | null;
  comment: string | null;
  created_ms: number;
}

const toRule = (r: Row): AllowRule => ({
  id: r.id, state: r.state, source: r.source, path: r.path, landing: r.landing, exe: r.exe, comm: r.comm, uid: r.uid, exec_uid: r.exec_uid ?? null, remote: r.remote, remote_host: r.remote_host ?? null, comment: r.comment, createdMs: r.created_ms,
});

/** A rule's conditions in one comparable form (deduplication). */
function conditionKey(c: AllowConditions): string {
  return JSON.stringify(ALLOW_DIMENSIONS.map((d) => c[d] ?? null));
}

/** Why a condition is not valid, or null. */
export function checkConditions(c: AllowConditions): string | null {
  if (!ALLOW_DIMENSIONS.some((d) => c[d] !== undefined && c[d] !== null)) return 'a rule needs at least one condition (--path, --landing, --exe, --comm, --uid, --exec-uid, --remote, --remote-host)';
  for (const d of ['path', 'landing', 'exe'] as const) {
    const v = c[d];
    if (v != null && !v.startsWith('/')) return `--${d} ${v}: an absolute path or glob`;
  }
  if (c.uid != null && (!Number.isInteger(c.uid) || c.uid < 0 || c.uid > 0xffffffff)) return `--uid ${c.uid}: not a uid`;
  if (c.exec_uid != null && (!Number.isInteger(c.exec_uid) || c.exec_uid < 0 || c.exec_uid > 0xffffffff)) return `--exec-uid ${c.exec_uid}: not a uid`;
  if (c.remote_host != null && !HOST_GLOB.test(c.remote_host)) return `--remote-host ${c.remote_host}: not a host name or host glob (letters, digits, - _ . * ?; e.g. *.example.org)`;
  if (c.remote != null && !parseCidr(c.remote)) return `--remote ${c.remote}: not an IP address or CIDR (192.0.2.0/24, 2001:db8::/32)`;
  return null;
}

const HOST_GLOB = /^[A-Za-z0-9_*?-][A-Za-z0-9_.*?-]{0,252}$/;

/** columns added after the first version of the table (a store made then gets them when opened for writing) */
const ADDED_COLUMNS: Array<[string, string]> = [['exec_uid', 'INTEGER'], ['remote_host', 'TEXT']];

export class AllowStore {
  private constructor(private readonly db: Database.Database) {}

  static open(file: string, opts: { readonly?: boolean } = {}): AllowStore {
    // the store of events and rules: 0600 (src/store/files.ts)
    const db = openRulesDatabase(file, SCHEMA, opts);
    if (!opts.readonly) {
      const have = new Set((db.prepare('PRAGMA table_info(provenance_allow)').all() as Array<{ name: string }>).map((c) => c.name));
      for (const [col, type] of ADDED_COLUMNS) if (!have.has(col)) db.exec(`ALTER TABLE provenance_allow ADD COLUMN ${col} ${type}`);
    }
    return new AllowStore(db);
  }

  list(state?: 'active' | 'pending'): AllowRule[] {
    try {
      const rows = (state ? this.db.prepare('SELECT * FROM provenance_allow WHERE state = ? ORDER BY id').all(state) : this.db.prepare('SELECT * FROM provenance_allow ORDER BY id').all()) as Row[];
      return rows.map(toRule);
    } catch (e) {
      if (/no such table/.test((e as Error).message)) return [];
      throw e;
    }
  }

  /** Changes when any rule is added, removed, accepted (cheap: the agent polls it). */
  signature(): string {
    try {
      const r = this.db.prepare("SELECT count(*) AS n, coalesce(max(id), 0) AS m, coalesce(sum(state = 'active'), 0) AS a, coalesce(sum(id * (state = 'active')), 0) AS s FROM provenance_allow").get() as Record<string, number>;
      return `${r.n}:${r.m}:${r.a}:${r.s}`;
    } catch (e) {
      if (/no such table/.test((e as Error).message)) return '';
      throw e;
    }
  }

  /**
   * Add a rule unless one with the same conditions exists (then that one is
   * returned, `added` false; a manual add of a pending rule activates it).
   */
  add(c: AllowConditions, opts: { state: 'active' | 'pending'; source: 'manual' | 'soak'; comment?: string | null }): { rule: AllowRule; added: boolean } {
    const key = conditionKey(c);
    const same = this.list().find((r) => conditionKey(r) === key);
    if (same) {
      if (opts.state === 'active' && same.state === 'pending') {
        this.setState([same.id], 'active');
        return { rule: { ...same, state: 'active' }, added: false };
      }
      return { rule: same, added: false };
    }
    const now = Date.now();
    const info = this.db
      .prepare('INSERT INTO provenance_allow (state, source, path, landing, exe, comm, uid, exec_uid, remote, remote_host, comment, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(opts.state, opts.source, c.path ?? null, c.landing ?? null, c.exe ?? null, c.comm ?? null, c.uid ?? null, c.exec_uid ?? null, c.remote ?? null, c.remote_host ?? null, opts.comment ?? null, now);
    return {
      rule: toRule({
        id: Number(info.lastInsertRowid), state: opts.state, source: opts.source, path: c.path ?? null, landing: c.landing ?? null, exe: c.exe ?? null, comm: c.comm ?? null,
        uid: c.uid ?? null, exec_uid: c.exec_uid ?? null, remote: c.remote ?? null, remote_host: c.remote_host ?? null, comment: opts.comment ?? null, created_ms: now,
      }),
      added: true,
    };
  }

  /** Remove rules by id; returns the ids that were there. */
  remove(ids: number[]): number[] {
    const del = this.db.prepare('DELETE FROM provenance_allow WHERE id = ?');
    return ids.filter((id) => del.run(id).changes > 0);
  }

  /** Set the state of rules by id; returns the ids that were there. */
  setState(ids: number[], state: 'active' | 'pending'): number[] {
    const up = this.db.prepare('UPDATE provenance_allow SET state = ? WHERE id = ?');
    return ids.filter((id) => up.run(state, id).changes > 0);
  }

  close(): void {
    this.db.close();
  }
}

/** What a rule is matched against: what vigil knows of one marked file. */
export interface AllowSubject {
  /** the file's path now (null: unknown, e.g. renamed since it was marked) */
  path: string | null;
  record: Pick<OriginRecord, 'path' | 'exe' | 'comm' | 'uid'> & { remote?: { address: string; host?: string | undefined } | undefined } | null;
  /** the uid running the exec; absent: not an exec (resolving the rules for the kernel's map, `show` without --exec-uid) */
  execUid?: number;
}

/**
 * A glob over `sep`-separated parts: `*` and `?` within one part, `**` across
 * parts; every other character literal. Compiled once per glob (bounded cache).
 */
function compileGlob(glob: string, sep: '/' | '.', flags: string, cache: Map<string, RegExp>): RegExp {
  let re = cache.get(glob);
  if (re) return re;
  const one = `[^${sep}]`;
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += `${one}*`;
    else if (c === '?') out += one;
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  re = new RegExp(`${out}$`, flags);
  if (cache.size > 4096) cache.clear();
  cache.set(glob, re);
  return re;
}

const globCache = new Map<string, RegExp>();

/** `*` and `?` within one path component, `**` across components; every other character literal. */
export function globRegExp(glob: string): RegExp {
  return compileGlob(glob, '/', 's', globCache);
}

const hostGlobCache = new Map<string, RegExp>();

/** A host name glob: `*` and `?` within one label, `**` across labels, case-insensitive; the rest literal. */
export function hostGlobRegExp(glob: string): RegExp {
  return compileGlob(glob, '.', 'is', hostGlobCache);
}

export function hasWildcard(glob: string): boolean {
  return /[*?]/.test(glob);
}

function parseCidr(s: string): { addr: string; prefix: number; type: 'ipv4' | 'ipv6' } | null {
  const [addr = '', p] = s.split('/');
  const v = isIP(addr);
  if (!v) return null;
  const max = v === 4 ? 32 : 128;
  const prefix = p === undefined ? max : /^\d+$/.test(p) ? Number(p) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { addr, prefix, type: v === 4 ? 'ipv4' : 'ipv6' };
}

function remoteMatches(cidr: string, address: string): boolean {
  const c = parseCidr(cidr);
  const v = isIP(address);
  if (!c || !v) return false;
  const bl = new BlockList();
  bl.addSubnet(c.addr, c.prefix, c.type);
  return bl.check(address, v === 4 ? 'ipv4' : 'ipv6');
}

/** Does the rule allow this file? Every condition the rule has must hold. */
export function ruleMatches(r: AllowConditions, s: AllowSubject): boolean {
  const rec = s.record;
  if (r.path != null && (s.path === null || !globRegExp(r.path).test(s.path))) return false;
  if (r.landing != null && (!rec || !globRegExp(r.landing).test(rec.path))) return false;
  if (r.exe != null && (!rec || !rec.exe || !globRegExp(r.exe).test(rec.exe))) return false;
  if (r.comm != null && (!rec || !globRegExp(r.comm).test(rec.comm))) return false;
  if (r.uid != null && (!rec || rec.uid !== r.uid)) return false;
  if (r.remote != null && (!rec?.remote || !remoteMatches(r.remote, rec.remote.address))) return false;
  // a trailing dot (an absolute DNS name) is the same host
  if (r.remote_host != null && (!rec?.remote?.host || !hostGlobRegExp(r.remote_host.replace(/\.$/, '')).test(rec.remote.host.replace(/\.$/, '')))) return false;
  if (r.exec_uid != null && s.execUid !== r.exec_uid) return false;
  return true;
}

/** A rule the kernel applies per (inode, exec uid) (prov_allow_uid), not by inode alone: it names who runs the file. */
export function needsExecUid(r: AllowConditions): boolean {
  return r.exec_uid != null;
}

/** The first active rule (lowest id) that allows the file. */
export function firstMatch(rules: AllowRule[], s: AllowSubject): AllowRule | null {
  for (const r of rules) if (r.state === 'active' && ruleMatches(r, s)) return r;
  return null;
}

/**
 * Which active rules let one marked file run, as the exec guard looks them up:
 * the first rule for every uid (prov_allow); else, for each exec uid a rule
 * names, the first rule on that uid (prov_allow_uid).
 */
export function allowedBy(rules: AllowRule[], s: AllowSubject): { rule: AllowRule | null; uids: Array<{ uid: number; rule: AllowRule }> } {
  const rule = firstMatch(rules.filter((r) => !needsExecUid(r)), s);
  const uids: Array<{ uid: number; rule: AllowRule }> = [];
  if (rule) return { rule, uids };
  const perUid = rules.filter(needsExecUid);
  for (const uid of new Set(perUid.map((r) => r.exec_uid!))) {
    const r = firstMatch(perUid, { ...s, execUid: uid });
    if (r) uids.push({ uid, rule: r });
  }
  return { rule: null, uids };
}

/** An allow map's value (prov_allow, prov_allow_uid): the rule's id, u64. */
export function allowValue(id: number): Buffer {
  const v = Buffer.alloc(8);
  v.writeBigUInt64LE(BigInt(id));
  return v;
}

/** The narrowest rule in one dimension for an exec the soak mode let through (null: that dimension is unknown). */
export function narrowest(d: AllowDimension, s: AllowSubject): AllowConditions | null {
  const rec = s.record;
  const lit = (v: string) => v.replace(/[*?]/g, '?'); // a literal * or ? in a name still matches itself
  switch (d) {
    case 'path':
      return s.path ? { path: lit(s.path) } : null;
    case 'landing':
      return rec?.path ? { landing: lit(rec.path) } : null;
    case 'exe':
      return rec?.exe ? { exe: lit(rec.exe) } : null;
    case 'comm':
      return rec?.comm ? { comm: lit(rec.comm) } : null;
    case 'uid':
      return rec ? { uid: rec.uid } : null;
    case 'remote':
      return rec?.remote?.address ? { remote: rec.remote.address } : null;
    case 'exec_uid':
      return s.execUid !== undefined ? { exec_uid: s.execUid } : null;
    case 'remote_host':
      return rec?.remote?.host ? { remote_host: lit(rec.remote.host.replace(/\.$/, '')) } : null;
  }
}

/** An allow map's wanted content: hex of the key → [key, rule id]. */
export type AllowEntries = Map<string, [Buffer, number]>;

export interface AllowResolution {
  /** prov_allow: struct vigil_mark_key → rule id (the file runs for every uid) */
  inode: AllowEntries;
  /** prov_allow_uid: struct vigil_mark_uid_key → rule id (the file runs for that exec uid) */
  uid: AllowEntries;
}

/**
 * Which marked inodes the active rules allow: every stored mark (its path now,
 * when the stored path still names it, and its record), and every file named
 * by a rule's literal path (no wildcard) that is marked in the kernel or the store.
 * A rule without exec_uid puts the inode in `inode` (every uid); a rule with one
 * puts (inode, exec_uid) in `uid`, unless the inode is in `inode` already.
 */
export function resolveAllowed(rules: AllowRule[], store: ProvenanceStore | null, marks: BpfMap | null): AllowResolution {
  const res: AllowResolution = { inode: new Map(), uid: new Map() };
  const active = rules.filter((r) => r.state === 'active');
  if (!active.length) return res;
  const put = (to: AllowEntries, k: Buffer, id: number) => {
    const h = k.toString('hex');
    if (!to.has(h)) to.set(h, [k, id]);
  };
  const resolve = (dev: number, ino: bigint, s: AllowSubject) => {
    const { rule, uids } = allowedBy(active, s);
    if (rule) return put(res.inode, markKey(dev, ino), rule.id);
    for (const u of uids) put(res.uid, markUidKey(dev, ino, u.uid), u.rule.id);
  };
  for (const m of store?.all() ?? []) {
    let path: string | null = null;
    try {
      const st = statSync(m.path, { bigint: true });
      if (kernelDev(st.dev) === m.dev && st.ino.toString() === m.ino) path = m.path;
    } catch {
      path = null;
    }
    resolve(m.dev, BigInt(m.ino), { path, record: m.record });
  }
  for (const r of active) {
    if (r.path == null || hasWildcard(r.path)) continue;
    try {
      const st = statSync(r.path, { bigint: true });
      if (!st.isFile()) continue;
      const dev = kernelDev(st.dev);
      const stored = store?.get(dev, st.ino.toString()) ?? null;
      const inKernel = marks?.lookup(markKey(dev, st.ino)) != null;
      if (!stored && !inKernel) continue;
      const s: AllowSubject = { path: r.path, record: stored?.record ?? null, ...(r.exec_uid != null ? { execUid: r.exec_uid } : {}) };
      if (!ruleMatches(r, s)) continue;
      if (r.exec_uid == null) put(res.inode, markKey(dev, st.ino), r.id);
      else put(res.uid, markUidKey(dev, st.ino, r.exec_uid), r.id);
    } catch {
      /* not there */
    }
  }
  // an inode allowed for every uid needs no entry per uid (prov_allow is looked up first)
  const F = VigilMarkUidKey.fields;
  for (const [h, [k]] of res.uid) {
    if (res.inode.has(markKey(k.readUInt32LE(F.dev.offset), k.readBigUInt64LE(F.ino.offset)).toString('hex'))) res.uid.delete(h);
  }
  return res;
}

/** Make an allow map (prov_allow, prov_allow_uid) hold exactly `want`; returns [added or changed, removed]. */
export function applyAllowed(map: BpfMap, want: AllowEntries): [number, number] {
  let added = 0;
  let removed = 0;
  for (const [, [k, id]] of want) {
    const v = allowValue(id);
    const cur = map.lookup(k);
    if (!cur || !cur.equals(v)) {
      map.update(k, v);
      added++;
    }
  }
  for (const k of [...map.keys()]) if (!want.has(k.toString('hex')) && map.delete(k)) removed++;
  return [added, removed];
}

/** What the allow maps hold, in words: "N marked files allowed by rules[, M for one exec uid (--exec-uid)]". */
export function allowedText(n: { allowed: number; allowed_uid: number }): string {
  return `${n.allowed} marked file${n.allowed === 1 ? '' : 's'} allowed by rules${n.allowed_uid ? `, ${n.allowed_uid} for one exec uid (--exec-uid)` : ''}`;
}

/** One line for a rule (human output: names escaped by the caller's safeText). */
export function describeConditions(c: AllowConditions, esc: (s: string) => string): string {
  const parts: string[] = [];
  for (const d of ALLOW_DIMENSIONS) {
    const v = c[d];
    if (v !== undefined && v !== null) parts.push(`${d}=${typeof v === 'string' ? esc(v) : v}`);
  }
  return parts.join(' ');
}
