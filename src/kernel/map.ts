/**
 * BPF maps: typed access by key/value Buffers. Works on a map of a loaded
 * object or on a pinned map opened by path (e.g. `vigil deny` writing into the
 * running agent's maps).
 */
import { koffi, libbpf, libc, type Ptr } from './ffi.js';
import { callInt } from './call.js';
import { BpfError } from './errors.js';

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

// enum bpf_map_type values used by the binding
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  RINGBUF: 27,
  INODE_STORAGE: 28,
  TASK_STORAGE: 29,
} as const;

const PERCPU_TYPES = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);

export interface MapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

let possibleCpus: number | undefined;
export function numPossibleCpus(): number {
  return (possibleCpus ??= callInt('libbpf_num_possible_cpus', () => libbpf().libbpf_num_possible_cpus() as number));
}

export class BpfMap {
  readonly fd: number;
  readonly info: MapInfo;
  /** libbpf map handle when the map belongs to a loaded object */
  readonly handle: Ptr | null;
  private readonly ownsFd: boolean;

  private constructor(fd: number, info: MapInfo, handle: Ptr | null, ownsFd: boolean) {
    this.fd = fd;
    this.info = info;
    this.handle = handle;
    this.ownsFd = ownsFd;
  }

  /** Wrap a map of an object (after load: the fd is valid). */
  static fromHandle(handle: Ptr): BpfMap {
    const l = libbpf();
    const name = l.bpf_map__name(handle) as string;
    const fd = l.bpf_map__fd(handle) as number;
    if (fd < 0) throw new BpfError({ op: `bpf_map__fd(${name})`, errno: 9, hint: 'the object is not loaded yet' });
    return new BpfMap(
      fd,
      {
        name,
        type: l.bpf_map__type(handle) as number,
        keySize: l.bpf_map__key_size(handle) as number,
        valueSize: l.bpf_map__value_size(handle) as number,
        maxEntries: l.bpf_map__max_entries(handle) as number,
      },
      handle,
      false,
    );
  }

  /** Open a pinned map (bpffs path); close() releases the fd. */
  static openPinned(path: string): BpfMap {
    const fd = callInt(`bpf_obj_get(${path})`, () => libbpf().bpf_obj_get(path) as number);
    try {
      return new BpfMap(fd, mapInfoByFd(fd, path), null, true);
    } catch (e) {
      libc().close(fd);
      throw e;
    }
  }

  get name(): string {
    return this.info.name;
  }

  /** The kernel's id of this map (two fds name the same map when their ids are equal). */
  get id(): number {
    const info = Buffer.alloc(88);
    callInt(`bpf_obj_get_info_by_fd(${this.info.name})`, () => libbpf().bpf_obj_get_info_by_fd(this.fd, info, [info.length]) as number);
    return info.readUInt32LE(4);
  }

  get isPerCpu(): boolean {
    return PERCPU_TYPES.has(this.info.type);
  }

  /** Bytes of a value as the syscall sees it (per-CPU maps: one 8-byte-aligned slot per possible CPU). */
  get valueBytes(): number {
    if (!this.isPerCpu) return this.info.valueSize;
    return roundUp8(this.info.valueSize) * numPossibleCpus();
  }

  lookup(key: Buffer): Buffer | null {
    this.checkKey(key);
    const value = Buffer.alloc(this.valueBytes);
    const rc = libbpf().bpf_map_lookup_elem(this.fd, key, value) as number;
    if (rc < 0) {
      const errno = koffi.errno();
      if (errno === 2) return null; // ENOENT
      throw new BpfError({ op: `bpf_map_lookup_elem(${this.name})`, errno });
    }
    return value;
  }

  /** Per-CPU values split into one Buffer per possible CPU. */
  lookupPerCpu(key: Buffer): Buffer[] | null {
    const all = this.lookup(key);
    if (!all) return null;
    const slot = roundUp8(this.info.valueSize);
    const out: Buffer[] = [];
    for (let off = 0; off < all.length; off += slot) out.push(all.subarray(off, off + this.info.valueSize));
    return out;
  }

  update(key: Buffer, value: Buffer, flags = BPF_ANY): void {
    this.checkKey(key);
    if (value.length !== this.valueBytes) {
      throw new BpfError({
        op: `bpf_map_update_elem(${this.name})`,
        errno: 22,
        hint: `value is ${value.length} bytes, the map takes ${this.valueBytes}`,
      });
    }
    callInt(`bpf_map_update_elem(${this.name})`, () => libbpf().bpf_map_update_elem(this.fd, key, value, flags) as number);
  }

  /** Delete a key; returns false when it was not there. */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    const rc = libbpf().bpf_map_delete_elem(this.fd, key) as number;
    if (rc < 0) {
      const errno = koffi.errno();
      if (errno === 2) return false;
      throw new BpfError({ op: `bpf_map_delete_elem(${this.name})`, errno });
    }
    return true;
  }

  /** Iterate over keys (a snapshot walk with bpf_map_get_next_key). */
  *keys(): IterableIterator<Buffer> {
    let cur: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.info.keySize);
      const rc = libbpf().bpf_map_get_next_key(this.fd, cur, next) as number;
      if (rc < 0) {
        const errno = koffi.errno();
        if (errno === 2) return;
        throw new BpfError({ op: `bpf_map_get_next_key(${this.name})`, errno });
      }
      yield next;
      cur = next;
    }
  }

  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }

  pin(path: string): void {
    callInt(`bpf_obj_pin(${this.name}, ${path})`, () => libbpf().bpf_obj_pin(this.fd, path) as number);
  }

  close(): void {
    if (this.ownsFd) libc().close(this.fd);
  }

  private checkKey(key: Buffer): void {
    if (key.length !== this.info.keySize) {
      throw new BpfError({
        op: `map ${this.name}`,
        errno: 22,
        hint: `key is ${key.length} bytes, the map takes ${this.info.keySize}`,
      });
    }
  }
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/** struct bpf_map_info (the leading fields we read). */
function mapInfoByFd(fd: number, what: string): MapInfo {
  const info = Buffer.alloc(88);
  const len = [info.length];
  callInt(`bpf_obj_get_info_by_fd(${what})`, () => libbpf().bpf_obj_get_info_by_fd(fd, info, len) as number);
  // __u32 type, id, key_size, value_size, max_entries, map_flags; char name[16]
  const name = info.toString('utf8', 24, 40).replace(/\0.*$/s, '');
  return {
    type: info.readUInt32LE(0),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    name,
  };
}
