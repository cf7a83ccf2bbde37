/**
 * TypeScript side of bpf/include/vigil.h: offsets of the shared record fields
 * (each sensor's own records are in src/sensors/<name>/layouts.ts).
 * checkLayouts() compares these with the BTF of a compiled object; the agent
 * runs it at load time and test/events/layouts.test.ts runs it on every object,
 * so C and TypeScript cannot drift apart silently.
 */
import { Btf, BtfKind } from '../kernel/index.js';

export const ABI_VERSION = 1;

/** enum vigil_record_type (shared records; each sensor names its own range in its folder) */
export const RecordType = {
  FLOOD: 4,
  EXEC_DECISION: 5,
} as const;

/** enum vigil_stat */
export const Stat = {
  RB_FULL: 0,
  EXEC: 1,
  FORK: 2,
  EXIT: 3,
  ARGS_FAULT: 4,
  TRUNCATED: 5,
  FLOOD: 6,
  DECISION: 7,
  /** records the kernel submitted with a forced wake-up (the batched threshold was crossed) */
  WAKEUP: 8,
  /** forced wake-ups of the first record after a quiet spell (the reader's timer had stopped) */
  WAKEUP_QUIET: 9,
  /** first of a sensor's own counters (16..31), named by the sensor */
  SENSOR: 16,
} as const;
export const STAT_MAX = 32;

/** A field: byte offset and byte size (arrays: total size). Nested structs name their layout. */
export interface FieldSpec {
  offset: number;
  size: number;
  struct?: string;
}

export interface Layout {
  name: string;
  size: number;
  fields: Record<string, FieldSpec>;
}

export const f = (offset: number, size: number, struct?: string): FieldSpec => (struct ? { offset, size, struct } : { offset, size });

/** vigil_wakeup[0]: how the BPF side wakes a ring's reader (bpf/include/vigil_bpf.h) */
export const VigilWakeupCfg = {
  name: 'vigil_wakeup_cfg',
  size: 24,
  fields: { every: f(0, 8), quiet_ns: f(8, 8), last_ns: f(16, 8) },
} as const satisfies Layout;

export const VigilHdr = {
  name: 'vigil_hdr',
  size: 16,
  fields: { type: f(0, 2), version: f(2, 1), _pad0: f(3, 1), size: f(4, 4), ktime_ns: f(8, 8) },
} as const satisfies Layout;

export const VigilTask = {
  name: 'vigil_task',
  size: 72,
  fields: {
    pid: f(0, 4),
    tgid: f(4, 4),
    ppid: f(8, 4),
    uid: f(12, 4),
    gid: f(16, 4),
    euid: f(20, 4),
    loginuid: f(24, 4),
    sessionid: f(28, 4),
    start_ns: f(32, 8),
    parent_start_ns: f(40, 8),
    cgroup_id: f(48, 8),
    comm: f(56, 16),
  },
} as const satisfies Layout;

export const VigilFlood = {
  name: 'vigil_flood',
  size: 72,
  fields: { hdr: f(0, 16, 'vigil_hdr'), seq: f(16, 8), pid: f(24, 4), cpu: f(28, 4), arg: f(32, 40) },
} as const satisfies Layout;

export const VigilAncestor = {
  name: 'vigil_ancestor',
  size: 32,
  fields: { tgid: f(0, 4), _pad0: f(4, 4), start_ns: f(8, 8), comm: f(16, 16) },
} as const satisfies Layout;

/** Exec guard decision (bpf/exec_guard.bpf.c); path[] follows, path_len bytes. */
export const VigilExecDecision = {
  name: 'vigil_exec_decision',
  size: 264,
  fields: {
    hdr: f(0, 16, 'vigil_hdr'),
    task: f(16, 72, 'vigil_task'),
    rule_id: f(88, 8),
    file_ino: f(96, 8),
    file_dev: f(104, 4),
    match: f(108, 4),
    action: f(112, 4),
    mode: f(116, 4),
    flags: f(120, 4),
    path_len: f(124, 4),
    n_ancestors: f(128, 4),
    hook: f(132, 4),
    ancestors: f(136, 128),
    path: f(264, 0),
  },
} as const satisfies Layout;

/** Exec guard deny_name key (VIGIL_GUARD_NAME_KEY): a path rule's basename, NUL padded. */
export const VigilGuardNameKey = {
  name: 'vigil_guard_name_key',
  size: 64,
  fields: { name: f(0, 64) },
} as const satisfies Layout;

/** Exec guard settings (guard_settings, one entry): global mode, rule counts, the provenance exec policy, scripts read by interpreters. */
export const VigilGuardSettings = {
  name: 'vigil_guard_settings',
  size: 20,
  fields: { mode: f(0, 4), path_rules: f(4, 4), hash_rules: f(8, 4), prov_mode: f(12, 4), script_mode: f(16, 4) },
} as const satisfies Layout;

/** The shared layouts (sensors add theirs: src/sensors/index.ts ALL_LAYOUTS). */
export const SHARED_LAYOUTS: Layout[] = [VigilHdr, VigilTask, VigilWakeupCfg, VigilFlood, VigilAncestor, VigilExecDecision, VigilGuardNameKey, VigilGuardSettings];

export interface LayoutMismatch {
  layout: string;
  problem: string;
}

/**
 * Compare layouts with the BTF of an object. Layouts whose struct is absent
 * from this object are skipped unless listed in `required`.
 */
export function checkLayouts(btf: Btf, layouts: Layout[], required: string[] = []): LayoutMismatch[] {
  const out: LayoutMismatch[] = [];
  for (const l of layouts) {
    const t = btf.find(l.name, BtfKind.STRUCT);
    if (!t) {
      if (required.includes(l.name)) out.push({ layout: l.name, problem: 'struct not found in BTF' });
      continue;
    }
    if (t.sizeOrType !== l.size) out.push({ layout: l.name, problem: `size ${l.size} in TypeScript, ${t.sizeOrType} in BTF` });
    const seen = new Set<string>();
    for (const m of t.members ?? []) {
      seen.add(m.name);
      const spec = (l.fields as Record<string, FieldSpec>)[m.name];
      if (!spec) {
        out.push({ layout: l.name, problem: `field ${m.name} is in BTF but not in TypeScript` });
        continue;
      }
      if (m.bitSize || m.bitOffset % 8) out.push({ layout: l.name, problem: `field ${m.name} is a bitfield` });
      const off = m.bitOffset / 8;
      const size = btf.sizeOf(m.type);
      if (off !== spec.offset) out.push({ layout: l.name, problem: `field ${m.name} at offset ${spec.offset} in TypeScript, ${off} in BTF` });
      if (size !== spec.size) out.push({ layout: l.name, problem: `field ${m.name} is ${spec.size} bytes in TypeScript, ${size} in BTF` });
      const rt = btf.resolve(m.type);
      if (spec.struct && rt?.name !== spec.struct) out.push({ layout: l.name, problem: `field ${m.name} is struct ${rt?.name} in BTF, ${spec.struct} in TypeScript` });
    }
    for (const name of Object.keys(l.fields)) {
      if (!seen.has(name)) out.push({ layout: l.name, problem: `field ${name} is in TypeScript but not in BTF` });
    }
  }
  return out;
}

export interface EnumMismatch {
  enum: string;
  problem: string;
}

/**
 * Compare constants with an enum in the object's BTF (kept there with
 * VIGIL_BTF_KEEP_ENUM), both ways: a constant missing on either side or with
 * another value is reported. `prefix` is stripped from the C names.
 */
export function checkEnum(btf: Btf, name: string, prefix: string, values: Record<string, number>): EnumMismatch[] {
  const out: EnumMismatch[] = [];
  const t = btf.find(name, BtfKind.ENUM);
  if (!t) return [{ enum: name, problem: 'enum not found in BTF' }];
  const seen = new Set<string>();
  for (const v of t.enumValues ?? []) {
    const key = v.name.startsWith(prefix) ? v.name.slice(prefix.length) : v.name;
    seen.add(key);
    if (!(key in values)) out.push({ enum: name, problem: `${v.name} is in BTF but not in TypeScript` });
    else if (values[key] !== Number(v.value)) out.push({ enum: name, problem: `${v.name} is ${values[key]} in TypeScript, ${v.value} in BTF` });
  }
  for (const k of Object.keys(values)) if (!seen.has(k)) out.push({ enum: name, problem: `${prefix}${k} is in TypeScript but not in BTF` });
  return out;
}
