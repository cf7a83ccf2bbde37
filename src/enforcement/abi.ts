/**
 * Keys and values of the exec guard's maps (struct vigil_guard_* in
 * bpf/include/vigil.h), and the pin layout in bpffs.
 */
import { basename, join } from 'node:path';
import { VigilGuardNameKey, VigilGuardSettings } from '../events/layouts.js';

export const GUARD_OBJECT = 'exec_guard.bpf.o';
/** bpffs directory holding the guard's maps and links; survives the agent. */
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/vigil/exec_guard';
export const PATH_KEY_SIZE = 256; // VIGIL_GUARD_PATH_KEY
/** struct vigil_guard_name_key (VIGIL_GUARD_NAME_KEY): layout checked against BTF */
export const NAME_KEY_SIZE = VigilGuardNameKey.size;
export const PROGRAMS = {
  inode: 'vigil_guard_bprm', mmap: 'vigil_guard_mmap', mprotect: 'vigil_guard_mprotect', open: 'vigil_guard_open',
  hash: 'vigil_guard_bprm_hash', mmapHash: 'vigil_guard_mmap_hash',
  origin: 'vigil_guard_bprm_origin', mmapOrigin: 'vigil_guard_mmap_origin',
} as const;
/** the sleepable IMA-hash programs: loaded together where the kernel takes them, else neither */
export const HASH_PROGRAMS = [PROGRAMS.hash, PROGRAMS.mmapHash] as const;
/**
 * the sleepable in-kernel origin programs (security.bpf.vigil.mark read at exec, Linux 6.15+):
 * loaded together where the kernel reads security.bpf.* attributes, else neither; absent from
 * the compat build
 */
export const ORIGIN_PROGRAMS = [PROGRAMS.origin, PROGRAMS.mmapOrigin] as const;
/** the LSM hooks the guard decides at (enum vigil_guard_hook, bpf/include/vigil.h), by the record's hook value */
export const HookName = ['bprm_check_security', 'mmap_file', 'file_mprotect', 'file_open'] as const;
export type GuardHook = (typeof HookName)[number];
export const MAPS = [
  'deny_inode', 'deny_path', 'deny_name', 'deny_hash', 'guard_settings', 'allow_tgid', 'allow_inode', 'hash_cache', 'events', 'vigil_stats',
  // provenance: the marked inodes (the agent's sensors reuse this pinned map), those an allow rule matched
  // (for every uid) and those a rule on the exec uid matched (for that uid)
  'vigil_marks', 'prov_allow', 'prov_allow_uid',
  // interpreters' executables (file_open: scripts they read)
  'interp_inode',
] as const;
export type GuardMapName = (typeof MAPS)[number];

export type Mode = 'monitor' | 'enforce';
export const ModeValue: Record<Mode, number> = { monitor: 1, enforce: 2 };
/** the exec policy on marked files (guard_settings.prov_mode): off, or enum vigil_guard_mode */
export type ProvenancePolicy = 'off' | 'monitor' | 'enforce' | 'soak';
export const ProvenancePolicyValue: Record<ProvenancePolicy, number> = { off: 0, monitor: 1, enforce: 2, soak: 3 };
export function modeName(v: number): Mode | 'soak' | `unknown(${number})` {
  return v === 1 ? 'monitor' : v === 2 ? 'enforce' : v === 3 ? 'soak' : `unknown(${v})`;
}
export const MatchName: Record<number, 'inode' | 'path' | 'sha256' | 'provenance'> = { 1: 'inode', 2: 'path', 3: 'sha256', 4: 'provenance' };
/** guard counters in the sensor range of vigil_stats (enum vigil_stat) */
export const GuardStat = { PROV_ALLOWED: 16, PROV_XATTR: 17, PROV_XATTR_ERR: 18 } as const;
export const Action = { WOULD_BLOCK: 1, BLOCKED: 2 } as const;
export const DecisionFlags = { PATH_TRUNCATED: 1, EXEMPT: 2, GLOBAL_MONITOR: 4, REPORT_ONLY: 8 } as const;

export function pinPath(dir: string, name: string): string {
  return join(dir, name);
}
export const LINK_PINS = {
  inode: 'link_bprm', mmap: 'link_mmap', mprotect: 'link_mprotect', open: 'link_open', hash: 'link_bprm_hash', mmapHash: 'link_mmap_hash',
  origin: 'link_bprm_origin', mmapOrigin: 'link_mmap_origin',
} as const;

/**
 * Kernel s_dev (MKDEV: major << 20 | minor) from the userspace dev_t Node's
 * stat() returns (glibc encoding: major bits 8-19 and 32-43, minor 0-7 and 20-31).
 */
export function kernelDev(dev: number | bigint): number {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return ((major << 20) | minor) >>> 0;
}

/** struct vigil_guard_inode_key */
export function inodeKey(kdev: number, ino: number | bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(ino), 0);
  b.writeUInt32LE(kdev >>> 0, 8);
  return b;
}

/** deny_path key: the path's bytes, NUL padded to 256. Null when it does not fit. */
export function pathKey(path: string): Buffer | null {
  const p = Buffer.from(path);
  if (p.length >= PATH_KEY_SIZE) return null;
  const b = Buffer.alloc(PATH_KEY_SIZE);
  p.copy(b);
  return b;
}

/**
 * deny_name key (struct vigil_guard_name_key): the path's final component, cut to
 * NAME_KEY_SIZE - 1 bytes (as bpf_probe_read_kernel_str does in the kernel), NUL padded.
 */
export function nameKey(path: string): Buffer {
  const n = Buffer.from(basename(path));
  const b = Buffer.alloc(NAME_KEY_SIZE);
  n.copy(b, 0, 0, Math.min(n.length, NAME_KEY_SIZE - 1));
  return b;
}

export function hashKey(hex: string): Buffer {
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`not a sha256 digest: ${hex}`);
  return Buffer.from(hex, 'hex');
}

/** struct vigil_guard_rule */
export function ruleValue(ruleId: number, mode: Mode): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(ruleId), 0);
  b.writeUInt32LE(ModeValue[mode], 8);
  return b;
}

export function decodeRuleValue(b: Buffer): { ruleId: number; mode: number } {
  return { ruleId: Number(b.readBigUInt64LE(0)), mode: b.readUInt32LE(8) };
}

/** struct vigil_guard_settings (layout checked against BTF: VigilGuardSettings) */
export interface GuardSettings {
  mode: Mode;
  pathRules: number;
  hashRules: number;
  /** exec policy on marked files; absent = off */
  provenance?: ProvenancePolicy;
  /** files read by an interpreter (file_open): refuse (enforcement.loader_guard), report, or off; absent = refuse */
  scripts?: ScriptPolicy;
}
/** guard_settings.script_mode: 0 unchecked, 1 report (MONITOR), 2 refuse (ENFORCE) */
export type ScriptPolicy = 'off' | 'report' | 'refuse';
export const ScriptPolicyValue: Record<ScriptPolicy, number> = { off: 0, report: 1, refuse: 2 };
export function settingsValue(s: GuardSettings): Buffer {
  const F = VigilGuardSettings.fields;
  const b = Buffer.alloc(VigilGuardSettings.size);
  b.writeUInt32LE(ModeValue[s.mode], F.mode.offset);
  b.writeUInt32LE(s.pathRules, F.path_rules.offset);
  b.writeUInt32LE(s.hashRules, F.hash_rules.offset);
  b.writeUInt32LE(ProvenancePolicyValue[s.provenance ?? 'off'], F.prov_mode.offset);
  b.writeUInt32LE(ScriptPolicyValue[s.scripts ?? 'refuse'], F.script_mode.offset);
  return b;
}
export function decodeSettings(b: Buffer): GuardSettings {
  const F = VigilGuardSettings.fields;
  const m = b.readUInt32LE(F.mode.offset);
  const p = b.readUInt32LE(F.prov_mode.offset);
  const provenance = (Object.entries(ProvenancePolicyValue).find(([, v]) => v === p)?.[0] ?? 'off') as ProvenancePolicy;
  const sv = b.length >= VigilGuardSettings.size ? b.readUInt32LE(F.script_mode.offset) : ScriptPolicyValue.refuse;
  const scripts = (Object.entries(ScriptPolicyValue).find(([, v]) => v === sv)?.[0] ?? 'refuse') as ScriptPolicy;
  return { mode: m === 1 ? 'monitor' : 'enforce', pathRules: b.readUInt32LE(F.path_rules.offset), hashRules: b.readUInt32LE(F.hash_rules.offset), provenance, scripts };
}
