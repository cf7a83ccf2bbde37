/**
 * Maps one agent shares between BPF objects (e.g. the provenance state of
 * bpf/include/vigil_taint.h, written by the network sensor and read by the file
 * sensor). The first object that loads a map creates it and registers it here;
 * every later object declaring a map of that name reuses it (bpf_map__reuse_fd)
 * instead of creating its own. The registry does not own the maps: they live as
 * long as the first object holding them (the agent closes sensors together).
 */
import type { BpfMap } from '../kernel/index.js';

export class SharedMaps {
  private readonly maps = new Map<string, BpfMap>();

  get(name: string): BpfMap | undefined {
    return this.maps.get(name);
  }

  /** Register a loaded object's map (the first one wins). */
  offer(map: BpfMap): void {
    if (!this.maps.has(map.name)) this.maps.set(map.name, map);
  }

  names(): string[] {
    return [...this.maps.keys()];
  }
}
