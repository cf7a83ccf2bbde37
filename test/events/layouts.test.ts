import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { BpfObject } from '../../src/kernel/index.js';
import { checkEnum, checkLayouts, RecordType, Stat, STAT_MAX, type Layout } from '../../src/events/layouts.js';
import { ALL_LAYOUTS } from '../../src/sensors/index.js';
import { VigilMarkUidKey, VigilMarkXattr } from '../../src/events/taint.js';
import { ExecFlags, ExecRecordType, VigilExec } from '../../src/sensors/exec/layouts.js';
import { NET_ENUMS, NetOp } from '../../src/sensors/net/layouts.js';
import { FILE_ENUMS } from '../../src/sensors/file/layouts.js';
import { BPF_OBJECT_DIR } from '../../src/sensors/bpf-sensor.js';
import { WATCH_LAYOUTS, WatchRecordType, WatchStat } from '../../src/watch/layouts.js';

const objects = readdirSync(BPF_OBJECT_DIR).filter((f) => f.endsWith('.bpf.o'));

describe('record layouts agree with the BTF of every object', () => {
  it('has objects to check (npm run build first)', () => {
    expect(objects).toContain('exec.bpf.o');
  });

  for (const name of objects) {
    it(name, () => {
      const obj = BpfObject.open(`${BPF_OBJECT_DIR}${name}`);
      try {
        expect(checkLayouts(obj.btf(), [...ALL_LAYOUTS, ...WATCH_LAYOUTS])).toEqual([]);
      } finally {
        obj.close();
      }
    });
  }

  it('exec.bpf.o carries every process record', () => {
    const obj = BpfObject.open(`${BPF_OBJECT_DIR}exec.bpf.o`);
    try {
      expect(checkLayouts(obj.btf(), ALL_LAYOUTS, ['vigil_hdr', 'vigil_task', 'vigil_exec', 'vigil_fork', 'vigil_exit', 'vigil_wakeup_cfg'])).toEqual([]);
    } finally {
      obj.close();
    }
  });

  it('net.bpf.o carries the network records and settings; its enums match', () => {
    const obj = BpfObject.open(`${BPF_OBJECT_DIR}net.bpf.o`);
    try {
      expect(checkLayouts(obj.btf(), ALL_LAYOUTS, ['vigil_hdr', 'vigil_task', 'vigil_net_conn', 'vigil_net_dns', 'vigil_net_settings'])).toEqual([]);
      for (const e of NET_ENUMS) expect(checkEnum(obj.btf(), e.name, e.prefix, e.values), e.name).toEqual([]);
      expect(checkEnum(obj.btf(), 'vigil_net_op', 'VIGIL_NET_', { ...NetOp, ACCEPT: 7 }).map((m) => m.problem)).toEqual(['VIGIL_NET_ACCEPT is 7 in TypeScript, 2 in BTF']);
    } finally {
      obj.close();
    }
  });

  it('exec_guard.bpf.o carries the decision record, the deny_name key, the settings and the provenance marks keys', () => {
    const obj = BpfObject.open(`${BPF_OBJECT_DIR}exec_guard.bpf.o`);
    try {
      expect(checkLayouts(obj.btf(), [...ALL_LAYOUTS, VigilMarkUidKey, VigilMarkXattr], ['vigil_exec_decision', 'vigil_ancestor', 'vigil_guard_name_key', 'vigil_guard_settings', 'vigil_mark_key', 'vigil_mark', 'vigil_mark_uid_key', 'vigil_mark_xattr'])).toEqual([]);
    } finally {
      obj.close();
    }
  });

  it('the watch guards carry their records, keys and enums (shell_guard.h)', () => {
    for (const [name, structs] of [
      ['shell_guard.bpf.o', ['vigil_shell_denied', 'vigil_shell_key']],
      ['file_guard.bpf.o', ['vigil_shell_denied', 'vigil_shell_key']],
      ['net_guard.bpf.o', ['vigil_net_denied', 'vigil_lpm4_key', 'vigil_lpm6_key']],
    ] as const) {
      const obj = BpfObject.open(`${BPF_OBJECT_DIR}${name}`);
      try {
        expect(checkLayouts(obj.btf(), WATCH_LAYOUTS, [...structs]), name).toEqual([]);
        if (name === 'shell_guard.bpf.o') {
          expect(checkEnum(obj.btf(), 'vigil_shell_guard_record_type', 'VIGIL_REC_', WatchRecordType)).toEqual([]);
          expect(checkEnum(obj.btf(), 'vigil_shell_guard_stat', 'VIGIL_STAT_', WatchStat)).toEqual([]);
        }
      } finally {
        obj.close();
      }
    }
  });

  it('detects a drifted offset, size and a missing field', () => {
    const obj = BpfObject.open(`${BPF_OBJECT_DIR}exec.bpf.o`);
    try {
      const drifted: Layout = {
        ...VigilExec,
        size: 128,
        fields: { ...VigilExec.fields, argc: { offset: 96, size: 4 }, exe_ino: { offset: 112, size: 4 } },
      };
      delete (drifted.fields as Record<string, unknown>).cwd_len;
      const problems = checkLayouts(obj.btf(), [drifted]).map((m) => m.problem);
      expect(problems).toContain('size 128 in TypeScript, 120 in BTF');
      expect(problems).toContain('field argc at offset 96 in TypeScript, 92 in BTF');
      expect(problems).toContain('field exe_ino is 4 bytes in TypeScript, 8 in BTF');
      expect(problems).toContain('field cwd_len is in BTF but not in TypeScript');
    } finally {
      obj.close();
    }
  });

  it('exec enums match the BTF of exec.bpf.o', () => {
    const obj = BpfObject.open(`${BPF_OBJECT_DIR}exec.bpf.o`);
    try {
      expect(checkEnum(obj.btf(), 'vigil_exec_record_type', 'VIGIL_REC_', ExecRecordType)).toEqual([]);
      expect(checkEnum(obj.btf(), 'vigil_exec_flags', 'VIGIL_F_', ExecFlags)).toEqual([]);
      expect(checkEnum(obj.btf(), 'vigil_stat', 'VIGIL_STAT_', { ...Stat, COMMON_MAX: 10, MAX: STAT_MAX })).toEqual([]);
      expect(checkEnum(obj.btf(), 'vigil_exec_flags', 'VIGIL_F_', { ...ExecFlags, ARGS_FAULT: 4 }).map((m) => m.problem)).toEqual(['VIGIL_F_ARGS_FAULT is 4 in TypeScript, 2 in BTF']);
    } finally {
      obj.close();
    }
  });

  it('file.bpf.o carries the file records, settings, prefix key and enums', () => {
    const obj = BpfObject.open(`${BPF_OBJECT_DIR}file.bpf.o`);
    try {
      expect(checkLayouts(obj.btf(), ALL_LAYOUTS, ['vigil_hdr', 'vigil_task', 'vigil_file', 'vigil_file_settings', 'vigil_file_prefix_key'])).toEqual([]);
      for (const [name, prefix, values] of FILE_ENUMS) expect(checkEnum(obj.btf(), name, prefix, values)).toEqual([]);
    } finally {
      obj.close();
    }
  });

  it('enum constants match bpf/include/vigil.h', () => {
    const h = readFileSync(new URL('../../bpf/include/vigil.h', import.meta.url), 'utf8');
    const val = (name: string) => Number(new RegExp(`${name}\\s*=\\s*(\\d+)`).exec(h)?.[1]);
    expect(val('VIGIL_REC_FLOOD')).toBe(RecordType.FLOOD);
    expect(val('VIGIL_STAT_SENSOR')).toBe(Stat.SENSOR);
    expect(val('VIGIL_STAT_RB_FULL')).toBe(Stat.RB_FULL);
    expect(val('VIGIL_STAT_MAX')).toBe(STAT_MAX);
    expect(Number(/#define VIGIL_ABI_VERSION (\d+)/.exec(h)?.[1])).toBe(1);
  });
});
