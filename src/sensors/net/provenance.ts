/**
 * The network sensor's part in file provenance (docs/provenance.md): with
 * provenance on, its connect/accept exits record the process as network-touched
 * in vigil_taint (bpf/include/vigil_taint.h) and its fork/exit programs pass
 * that on to children and drop it when the process is gone. The map is shared
 * with the file sensor's object (SharedMaps); with provenance off the fork and
 * exit programs are not loaded.
 */
import { MARKS_MAP, TAINT_LAYOUTS, TAINT_MAP } from '../../events/taint.js';
import type { BpfSensorOptions } from '../bpf-sensor.js';
import type { SensorContext } from '../sensor.js';
import { NetSettingFlags, VigilNetSettings } from './layouts.js';

export const TAINT_PROGRAMS = ['vigil_taint_fork', 'vigil_taint_exit'];

export function withTaint(opts: BpfSensorOptions, ctx: Pick<SensorContext, 'provenance' | 'sharedMaps'>): BpfSensorOptions {
  const prov = ctx.provenance;
  if (!prov) return { ...opts, skipPrograms: [...(opts.skipPrograms ?? []), ...TAINT_PROGRAMS] };
  const base = opts.afterLoad;
  return {
    ...opts,
    layouts: [...opts.layouts, ...TAINT_LAYOUTS],
    ...(ctx.sharedMaps ? { sharedMaps: { registry: ctx.sharedMaps, names: [TAINT_MAP, MARKS_MAP] } } : {}),
    afterLoad: (obj) => {
      base?.(obj);
      const m = obj.map('net_settings');
      const zero = Buffer.alloc(4);
      const v = m.lookup(zero) ?? Buffer.alloc(VigilNetSettings.size);
      const off = VigilNetSettings.fields.flags.offset;
      v.writeUInt32LE(v.readUInt32LE(off) | NetSettingFlags.TAINT | (prov.loopback ? NetSettingFlags.TAINT_LOOPBACK : 0), off);
      m.update(zero, v);
    },
  };
}
