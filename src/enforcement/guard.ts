/**
 * The exec guard in the kernel: load, attach and pin (persistent enforcement),
 * adopt what an earlier agent pinned, reconcile the deny maps with the rules,
 * and disarm. Everything after arming works on the pinned maps, so `vigil deny`
 * in another process changes a running guard without a restart.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfError, BpfLink, BpfMap, BpfObject, BPF_ANY, variantObjectPath } from '../kernel/index.js';
import { bpfReadsSecurityXattrs } from '../kernel/probes.js';
import {
  DEFAULT_PIN_DIR, GUARD_OBJECT, HASH_PROGRAMS, LINK_PINS, ORIGIN_PROGRAMS, MAPS, PROGRAMS, type GuardHook, type GuardMapName, type GuardSettings, type Mode, type ProvenancePolicy, type ScriptPolicy,
  decodeSettings, hashKey, inodeKey, kernelDev, nameKey, pathKey, ruleValue, settingsValue,
} from './abi.js';
import type { DenyRule } from './rules-store.js';
import { checkLayouts, VigilExecDecision, VigilGuardNameKey, VigilGuardSettings, type Layout } from '../events/layouts.js';
import { VigilMark, VigilMarkKey, VigilMarkUidKey, VigilMarkXattr } from '../events/taint.js';

/** Layouts the guard's userspace shares with exec_guard.bpf.c: checked against its BTF at every load. */
const GUARD_LAYOUTS: Layout[] = [VigilExecDecision, VigilGuardNameKey, VigilGuardSettings, VigilMarkKey, VigilMark, VigilMarkUidKey, VigilMarkXattr];

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * bpf/.output/exec_guard.bpf.o from src/enforcement (tsx/vitest) or dist/enforcement,
 * in the build this kernel takes (exec_guard.compat.bpf.o without bpf_loop).
 */
export function defaultObjectPath(): string {
  const env = process.env.VIGIL_BPF_DIR;
  return variantObjectPath(env ? join(env, GUARD_OBJECT) : resolve(HERE, '../../bpf/.output', GUARD_OBJECT));
}

/**
 * Interpreters whose reads are checked (file_open: `sh SCRIPT`, `python3 x.py`) when
 * enforcement.interpreters is not set: identified by the inode of their executable
 * (symlinks resolved), never by comm. Paths absent here are skipped. Not node: vigil
 * runs on it, and node tools (and vigil's own CLI, `vigil deny add --sha256`) read
 * arbitrary files; add /usr/bin/node to cover `node x.js`.
 */
export const DEFAULT_INTERPRETERS = [
  '/bin/sh', '/bin/bash', '/bin/dash', '/bin/zsh', '/bin/ksh', '/bin/busybox',
  '/usr/bin/python3', '/usr/bin/python2', '/usr/bin/perl', '/usr/bin/ruby', '/usr/bin/php', '/usr/bin/lua',
  '/usr/bin/tclsh', '/usr/bin/awk', '/usr/bin/gawk', '/usr/bin/mawk',
];

/** The hooks every guard attaches (the sha256 programs add bprm_check_security and mmap_file, sleepable). */
export const GUARD_HOOKS: GuardHook[] = ['bprm_check_security', 'mmap_file', 'file_mprotect', 'file_open'];

/** What sha256 rules need from the kernel, said once for every message. */
export const HASH_NEEDS = 'in-kernel sha256 matching needs bpf_ima_file_hash (Linux 5.18+, CONFIG_IMA) in sleepable bprm_check_security and mmap_file programs (Linux 5.11+)';

/** What reading marks from files' attributes in the kernel needs, said once for every message. */
export const ORIGIN_NEEDS = 'reading marks from files (security.bpf.vigil.mark) at exec needs bpf_get_file_xattr with security.bpf.* names (Linux 6.15+); elsewhere the agent re-arms marks from its store at start';

/** Why the kernel refused the sha256 program, in words (from the verifier's reason). */
export function hashRefusal(e: unknown): string {
  const reason = e instanceof BpfError ? e.reason : undefined;
  if (reason && /is not sleepable/.test(reason)) {
    return `sha256 rules need bpf_ima_file_hash, Linux 5.18+: this kernel cannot even run bprm_check_security sleepable (Linux 5.11+) [${reason}]`;
  }
  if (reason && /#193\b|bpf_ima_file_hash/.test(reason)) return `sha256 rules need bpf_ima_file_hash, Linux 5.18+ [${reason}]`;
  return `the sha256 program was refused: ${reason ?? (e as Error).message} (${HASH_NEEDS})`;
}

export interface ArmOptions {
  pinDir?: string;
  objectPath?: string;
  /** ring buffer bytes for decision records (power of two, page multiple) */
  ringBytes?: number;
  /** never try the sleepable IMA-hash program */
  noHashProgram?: boolean;
  /** never try the sleepable in-kernel origin programs */
  noOriginProgram?: boolean;
  /** an existing vigil_marks map (the agent's sensors') to reuse instead of creating one */
  marksFd?: number;
  /** interpreters' executables for the file_open check (default DEFAULT_INTERPRETERS) */
  interpreters?: string[];
}

export interface ArmResult {
  guard: ExecGuard;
  /** true: loaded and pinned now; false: adopted what was pinned */
  loaded: boolean;
  /** loaded now without the sha256 program: why the kernel refused it */
  hashUnavailable?: string;
  /** loaded now without the in-kernel origin programs: why */
  originUnavailable?: string;
  /** the object file loaded (when loaded now) */
  object?: string;
}

export interface ReconcileResult {
  inode: number;
  path: number;
  hash: number;
  removed: number;
  /** rules whose file could not be resolved to an inode (path-only) */
  unresolved: number[];
  /** paths too long for the 256-byte path key (inode entry only) */
  tooLong: number[];
}

export class ExecGuard {
  private constructor(
    readonly pinDir: string,
    private readonly maps: Map<GuardMapName, BpfMap>,
    /** the sleepable sha256 (IMA) program is attached */
    readonly hashProgram: boolean,
    /** the sleepable origin programs are attached: marks are read from files' security.bpf.vigil.mark at exec */
    readonly originProgram: boolean = false,
  ) {}

  static isArmed(pinDir = DEFAULT_PIN_DIR): boolean {
    return existsSync(join(pinDir, LINK_PINS.inode));
  }

  /**
   * The marks map of an armed guard (provenance), for the agent's sensors to
   * reuse before they load; null when no guard with one is pinned.
   */
  static pinnedMarks(pinDir = DEFAULT_PIN_DIR): BpfMap | null {
    if (!ExecGuard.isArmed(pinDir) || !existsSync(join(pinDir, 'vigil_marks'))) return null;
    try {
      return BpfMap.openPinned(join(pinDir, 'vigil_marks'));
    } catch {
      return null;
    }
  }

  /** Load, attach and pin the guard, or adopt it if already pinned. */
  static arm(opts: ArmOptions = {}): ArmResult {
    const pinDir = opts.pinDir ?? DEFAULT_PIN_DIR;
    if (ExecGuard.isArmed(pinDir)) {
      try {
        return { guard: ExecGuard.adopt(pinDir), loaded: false };
      } catch {
        // half-pinned leftovers (a crash while arming): start over
        ExecGuard.disarm(pinDir);
      }
    } else if (existsSync(pinDir)) {
      ExecGuard.disarm(pinDir);
    }
    const objectPath = opts.objectPath ?? defaultObjectPath();
    const ringBytes = opts.ringBytes ?? 256 * 1024;
    let obj: BpfObject | null = null;
    let hash = !opts.noHashProgram;
    let hashUnavailable: string | undefined = opts.noHashProgram ? 'not tried (noHashProgram)' : undefined;
    // the origin programs: only where the kernel reads security.bpf.* names, and only in the full build
    const xattrs = bpfReadsSecurityXattrs();
    const compat = basename(objectPath).includes('.compat.');
    let origin = !opts.noOriginProgram && xattrs.ok && !compat;
    let originUnavailable: string | undefined = opts.noOriginProgram
      ? 'not tried (noOriginProgram)'
      : !xattrs.ok ? `${xattrs.detail}: ${ORIGIN_NEEDS}`
      : !origin ? `not in the compat build (${basename(objectPath)}): ${ORIGIN_NEEDS}` : undefined;
    const open = (skip: string[]): BpfObject => {
      const o = BpfObject.open(objectPath, { maxEntries: { events: ringBytes }, skipPrograms: skip });
      try {
        // the records and map values userspace writes and reads, checked against the object's BTF
        const bad = checkLayouts(o.btf(), GUARD_LAYOUTS, GUARD_LAYOUTS.map((l) => l.name));
        if (bad.length) throw new BpfError({ op: `layout check of ${o.name}`, errno: 22, hint: `TypeScript and the object's BTF disagree: ${bad.map((m) => `${m.layout}: ${m.problem}`).join('; ')}` });
        if (opts.marksFd !== undefined) o.reuseMap('vigil_marks', opts.marksFd);
      } catch (e) {
        o.close();
        throw e;
      }
      return o;
    };
    // the compat build has no origin programs: nothing to skip there
    const skipped = (h: boolean, o: boolean): string[] => [...(h ? [] : HASH_PROGRAMS), ...(o || compat ? [] : ORIGIN_PROGRAMS)];
    const why = (e: unknown): string => (e instanceof BpfError ? (e.reason ?? e.message) : (e as Error).message);
    try {
      // Optional sleepable programs: with both sets first, then without the origin set,
      // then without the sha256 set; the first combination the kernel takes is loaded.
      let originErr: unknown;
      let hashErr: unknown;
      let loaded: [boolean, boolean] = [false, false];
      const tries = new Map<string, [boolean, boolean]>();
      for (const t of [[hash, origin], [hash, false], [false, origin]] as Array<[boolean, boolean]>) if (t[0] || t[1]) tries.set(t.join(), t);
      for (const [h, o] of tries.values()) {
        try {
          obj = open(skipped(h, o));
          obj.load();
          loaded = [h, o];
          break;
        } catch (e) {
          obj?.close();
          obj = null;
          if (o) originErr = e;
          if (h) hashErr = e;
        }
      }
      // without both: if this is refused, that error is the one that counts
      if (!obj) {
        obj = open(skipped(false, false));
        obj.load();
      }
      if (hash && !loaded[0]) hashUnavailable = hashRefusal(hashErr);
      if (origin && !loaded[1]) originUnavailable = `the origin programs were refused: ${why(originErr)} (${ORIGIN_NEEDS})`;
      [hash, origin] = loaded;
      mkdirSync(pinDir, { recursive: true });
      for (const name of MAPS) obj.map(name).pin(join(pinDir, name));
      // settings before the hook goes live
      const settings = BpfMap.openPinned(join(pinDir, 'guard_settings'));
      settings.update(u32(0), settingsValue({ mode: 'enforce', pathRules: 0, hashRules: 0, scripts: 'refuse' }));
      settings.close();
      const interp = BpfMap.openPinned(join(pinDir, 'interp_inode'));
      try {
        fillInterpreters(interp, opts.interpreters ?? DEFAULT_INTERPRETERS);
      } finally {
        interp.close();
      }
      // the link named by isArmed (bprm) last: a guard is armed only once every hook is
      for (const k of ['mmap', 'mprotect', 'open', 'inode'] as const) {
        const l = obj.program(PROGRAMS[k]).attachLsm();
        l.pin(join(pinDir, LINK_PINS[k]));
        l.disconnect();
      }
      // the optional sets: a set that loaded but does not attach is left out whole
      const attachSet = (o: BpfObject, keys: ReadonlyArray<keyof typeof PROGRAMS & keyof typeof LINK_PINS>): string | null => {
        const pinned: string[] = [];
        try {
          for (const k of keys) {
            const l = o.program(PROGRAMS[k]).attachLsm();
            l.pin(join(pinDir, LINK_PINS[k]));
            pinned.push(join(pinDir, LINK_PINS[k]));
            l.disconnect();
          }
          return null;
        } catch (e) {
          for (const p of pinned) unlinkSync(p);
          return (e as Error).message;
        }
      };
      const hashAttach = hash ? attachSet(obj, ['hash', 'mmapHash']) : null;
      if (hashAttach !== null) {
        hash = false;
        hashUnavailable = `the sha256 programs loaded but did not attach: ${hashAttach}`;
      }
      const originAttach = origin ? attachSet(obj, ['origin', 'mmapOrigin']) : null;
      if (originAttach !== null) {
        origin = false;
        originUnavailable = `the origin programs loaded but did not attach: ${originAttach}`;
      }
    } catch (e) {
      obj?.close();
      ExecGuard.disarm(pinDir);
      throw e;
    }
    const object = obj.name;
    obj.close(); // links and maps stay: they are pinned
    return { guard: ExecGuard.adopt(pinDir), loaded: true, object, ...(hashUnavailable ? { hashUnavailable } : {}), ...(originUnavailable ? { originUnavailable } : {}) };
  }

  /** Open the pinned maps of an armed guard. */
  static adopt(pinDir = DEFAULT_PIN_DIR): ExecGuard {
    if (!ExecGuard.isArmed(pinDir)) {
      throw new BpfError({ op: `adopt exec guard (${pinDir})`, errno: 2, hint: 'the exec guard is not armed: `vigil deny add` or `vigil run` arms it' });
    }
    const maps = new Map<GuardMapName, BpfMap>();
    try {
      for (const name of MAPS) maps.set(name, BpfMap.openPinned(join(pinDir, name)));
    } catch (e) {
      for (const m of maps.values()) m.close();
      throw e;
    }
    return new ExecGuard(pinDir, maps, existsSync(join(pinDir, LINK_PINS.hash)), existsSync(join(pinDir, LINK_PINS.origin)));
  }

  /**
   * Remove the pinned links and maps: the hooks detach once no process holds
   * them (an agent that adopted the guard keeps them until it closes).
   */
  static disarm(pinDir = DEFAULT_PIN_DIR): string[] {
    const removed: string[] = [];
    if (!existsSync(pinDir)) return removed;
    // links first: enforcement stops before the maps go
    const names = readdirSync(pinDir).sort((a, b) => Number(b.startsWith('link_')) - Number(a.startsWith('link_')));
    const linkIds: { link: number; prog: number }[] = [];
    for (const n of names) {
      const p = join(pinDir, n);
      // Removing a link's pin drops a reference whose release (the detach) may run
      // later: from a workqueue (6.3+), or after an RCU grace period when bpffs frees
      // the inode (5.10). So hold an fd across the unlink, close it, and wait until
      // the kernel no longer knows the link: enforcement has stopped on return.
      let link: BpfLink | null = null;
      if (n.startsWith('link_')) {
        try {
          link = BpfLink.openPinned(p);
        } catch {
          link = null;
        }
      }
      try {
        if (link) linkIds.push(link.ids);
      } catch {
        /* no id: nothing to wait for */
      }
      unlinkSync(p);
      link?.destroy();
      removed.push(n);
      // links are sorted first: wait for them before the maps go
      if (n.startsWith('link_') && !names[names.indexOf(n) + 1]?.startsWith('link_')) {
        // 5.10 drops the pin's reference after an RCU grace period: wait until the hooks are really detached
        BpfLink.waitGone(linkIds);
      }
    }
    rmdirSync(pinDir);
    try {
      rmdirSync(dirname(pinDir)); // /sys/fs/bpf/vigil when empty
    } catch {
      /* not empty or not ours */
    }
    return removed;
  }

  map(name: GuardMapName): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new Error(`exec guard map ${name} is not open`);
    return m;
  }

  settings(): GuardSettings {
    const v = this.map('guard_settings').lookup(u32(0));
    return v ? decodeSettings(v) : { mode: 'enforce', pathRules: 0, hashRules: 0, scripts: 'refuse' };
  }

  setSettings(s: GuardSettings): void {
    this.map('guard_settings').update(u32(0), settingsValue(s));
  }

  /** The exec policy on marked files (provenance): off, monitor, soak or enforce; the rest of the settings kept. */
  setProvenancePolicy(p: ProvenancePolicy): void {
    this.setSettings({ ...this.settings(), provenance: p });
  }

  /** Files read by an interpreter: refuse (enforcement.loader_guard), report, or off; the rest of the settings kept. */
  setScriptPolicy(p: ScriptPolicy): void {
    this.setSettings({ ...this.settings(), scripts: p });
  }

  /** The interpreters whose reads are checked: exactly these executables (resolved to inodes). Returns the paths found. */
  setInterpreters(paths: string[]): string[] {
    return fillInterpreters(this.map('interp_inode'), paths);
  }

  /**
   * Never block this process and its children (the agent), matched with its
   * start time so a reused pid is not exempt.
   */
  allowProcess(pid = process.pid): void {
    this.map('allow_tgid').update(u32(pid), u64(BigInt(procStartTicks(pid))));
  }

  /** Drop allow entries of processes that are gone or were replaced. */
  pruneAllowedProcesses(): number {
    return pruneGoneProcesses(this.map('allow_tgid'));
  }

  /** Never block this file (vigil's own interpreter/binary). */
  allowFile(path: string): void {
    const st = statSync(path);
    this.map('allow_inode').update(inodeKey(kernelDev(st.dev), st.ino), u32(1));
  }

  /**
   * Make the kernel maps say exactly what the rules say: add or update every
   * entry the rules need, delete every other entry. Path rules are resolved
   * again (the file at a path may have been replaced: new inode).
   */
  reconcile(rules: DenyRule[], globalMode: Mode): ReconcileResult {
    const empty = () => ({ deny_inode: new Map<string, Buffer>(), deny_path: new Map<string, Buffer>(), deny_name: new Map<string, Buffer>(), deny_hash: new Map<string, Buffer>() });
    const want = empty();
    const keys = empty();
    const res: ReconcileResult = { inode: 0, path: 0, hash: 0, removed: 0, unresolved: [], tooLong: [] };
    const put = (map: keyof typeof want, key: Buffer, value: Buffer): void => {
      const h = key.toString('hex');
      if (want[map].has(h)) return; // first rule wins (lowest id)
      want[map].set(h, value);
      keys[map].set(h, key);
    };
    for (const r of rules) {
      const value = ruleValue(r.id, r.mode);
      if (r.kind === 'sha256' && r.sha256) put('deny_hash', hashKey(r.sha256), value);
      if (r.path) {
        const id = resolveFile(r.path);
        if (id) put('deny_inode', inodeKey(id.kdev, id.ino), value);
        else res.unresolved.push(r.id);
        if (r.kind === 'path') {
          const resolved = id?.realPath ?? r.resolvedPath ?? r.path;
          const k = pathKey(resolved);
          if (k) {
            put('deny_path', k, value);
            // the kernel walks the path only for files with one of these names
            put('deny_name', nameKey(resolved), u32(1));
          } else res.tooLong.push(r.id);
          // the path as given too, when it differs (a symlink): exec resolves it, the
          // kernel sees the target; the target's path is what matches
        }
      }
    }
    // add names before paths and remove them after: a path entry is never live without its name
    for (const map of ['deny_inode', 'deny_name', 'deny_path', 'deny_hash'] as const) {
      const m = this.map(map);
      for (const [h, v] of want[map]) {
        const cur = m.lookup(keys[map].get(h)!);
        if (!cur || !cur.equals(v)) m.update(keys[map].get(h)!, v, BPF_ANY);
      }
    }
    for (const map of ['deny_inode', 'deny_path', 'deny_name', 'deny_hash'] as const) {
      const m = this.map(map);
      for (const k of [...m.keys()]) {
        if (!want[map].has(k.toString('hex')) && m.delete(k)) res.removed += map === 'deny_name' ? 0 : 1;
      }
    }
    res.inode = want.deny_inode.size;
    res.path = want.deny_path.size;
    res.hash = want.deny_hash.size;
    // the provenance and script policies are the agent's, not the rules': kept as they are.
    // Written only when the rules' part changed: the agent reconciles every 2 s, and a
    // read-modify-write of the same entry each time lost, now and then, a policy another
    // process (a test, a CLI) set between its read and its write (the VM suite on 5.10: a
    // script policy set to report was back to refuse when the script ran)
    const cur = this.settings();
    const hashRules = this.hashProgram ? res.hash : 0;
    if (cur.mode !== globalMode || cur.pathRules !== res.path || cur.hashRules !== hashRules) this.setSettings({ ...cur, mode: globalMode, pathRules: res.path, hashRules });
    return res;
  }

  /** Sum of the per-CPU counters (enum vigil_stat). */
  counters(): number[] {
    const m = this.map('vigil_stats');
    const out: number[] = [];
    for (let i = 0; i < m.info.maxEntries; i++) {
      const per = m.lookupPerCpu(u32(i)) ?? [];
      out.push(per.reduce((a, b) => a + Number(b.readBigUInt64LE(0)), 0));
    }
    return out;
  }

  close(): void {
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
  }
}

/** Make interp_inode hold exactly the executables of `paths` that exist (symlinks resolved). */
function fillInterpreters(m: BpfMap, paths: string[]): string[] {
  const want = new Map<string, Buffer>();
  const found: string[] = [];
  for (const p of paths) {
    const id = resolveFile(p);
    if (!id) continue;
    const k = inodeKey(id.kdev, id.ino);
    if (!want.has(k.toString('hex'))) found.push(p);
    want.set(k.toString('hex'), k);
  }
  for (const k of want.values()) m.update(k, u32(1), BPF_ANY);
  for (const k of [...m.keys()]) if (!want.has(k.toString('hex'))) m.delete(k);
  return found;
}

export interface FileIdentity {
  kdev: number;
  ino: bigint;
  realPath: string;
}

/** (kernel s_dev, inode, real path) of a regular file, or null when it is not there. */
export function resolveFile(path: string): FileIdentity | null {
  try {
    const realPath = realpathSync(path);
    const st = statSync(realPath, { bigint: true });
    if (!st.isFile()) return null;
    return { kdev: kernelDev(st.dev), ino: st.ino, realPath };
  } catch {
    return null;
  }
}

/**
 * In a map keyed by tgid (u32) with the process's start time in clock ticks
 * (u64) as value (allow_tgid, tamper_exempt), drop the entries of processes
 * that are gone or whose pid was reused; returns how many were dropped.
 */
export function pruneGoneProcesses(m: BpfMap): number {
  let n = 0;
  for (const [k, v] of [...m.entries()]) {
    let live = false;
    try {
      live = BigInt(procStartTicks(k.readUInt32LE(0))) === v.readBigUInt64LE(0);
    } catch {
      live = false;
    }
    if (!live && m.delete(k)) n++;
  }
  return n;
}

/** /proc/PID/stat field 22 (start time in clock ticks since boot). */
export function procStartTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[19]); // field 22 counted from the state (field 3)
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}
