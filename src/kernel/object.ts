/**
 * BPF objects and programs: open an ELF object, load it (CO-RE relocation and
 * verification happen here), attach programs, reach maps. One BpfObject per
 * .bpf.o; close() detaches everything that was not pinned.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { koffi, libbpf, type Ptr } from './ffi.js';
import { callInt, callPtr } from './call.js';
import { BpfError } from './errors.js';
import { BpfLink } from './link.js';
import { BpfMap } from './map.js';
import { Btf } from './btf.js';

export interface UprobeOptions {
  /** process to trace; -1 = every process (default) */
  pid?: number;
  /** symbol to attach to (libbpf resolves it in the ELF's symbol tables) */
  funcName?: string;
  /** offset inside the function (or absolute file offset when funcName is unset) */
  offset?: number;
  retprobe?: boolean;
  cookie?: bigint;
}

export class BpfProgram {
  constructor(
    readonly handle: Ptr,
    private readonly owner: BpfObject,
  ) {}

  get name(): string {
    return libbpf().bpf_program__name(this.handle) as string;
  }

  get section(): string {
    return libbpf().bpf_program__section_name(this.handle) as string;
  }

  get fd(): number {
    return libbpf().bpf_program__fd(this.handle) as number;
  }

  /** Before load: exclude a program this kernel cannot take (e.g. an LSM hook). */
  setAutoload(on: boolean): void {
    callInt(`bpf_program__set_autoload(${this.name})`, () => libbpf().bpf_program__set_autoload(this.handle, on) as number);
  }

  get autoload(): boolean {
    return Boolean(libbpf().bpf_program__autoload(this.handle));
  }

  /** Attach as its SEC() name says (tracepoint/, raw_tp/, tp_btf/, lsm/, uprobe/...). */
  attach(): BpfLink {
    return this.track(callPtr(`bpf_program__attach(${this.name} [${this.section}])`, () => libbpf().bpf_program__attach(this.handle)));
  }

  attachTracepoint(category: string, name: string): BpfLink {
    return this.track(
      callPtr(`bpf_program__attach_tracepoint(${this.name}, ${category}/${name})`, () =>
        libbpf().bpf_program__attach_tracepoint(this.handle, category, name),
      ),
    );
  }

  attachRawTracepoint(name: string): BpfLink {
    return this.track(
      callPtr(`bpf_program__attach_raw_tracepoint(${this.name}, ${name})`, () =>
        libbpf().bpf_program__attach_raw_tracepoint(this.handle, name),
      ),
    );
  }

  attachLsm(): BpfLink {
    return this.track(callPtr(`bpf_program__attach_lsm(${this.name})`, () => libbpf().bpf_program__attach_lsm(this.handle)));
  }

  /** Bare SEC("uprobe") programs: give the binary and the symbol here. */
  attachUprobe(binaryPath: string, opts: UprobeOptions = {}): BpfLink {
    // struct bpf_uprobe_opts { size_t sz; size_t ref_ctr_offset; __u64 bpf_cookie; bool retprobe; const char *func_name; } = 40 bytes
    const o = Buffer.alloc(40);
    o.writeBigUInt64LE(40n, 0);
    o.writeBigUInt64LE(opts.cookie ?? 0n, 16);
    o.writeUInt8(opts.retprobe ? 1 : 0, 24);
    let nameBuf: Buffer | null = null;
    if (opts.funcName) {
      nameBuf = Buffer.from(`${opts.funcName}\0`);
      o.writeBigUInt64LE(BigInt(addressOf(nameBuf)), 32);
    }
    const what = `${binaryPath}:${opts.funcName ?? `0x${(opts.offset ?? 0).toString(16)}`}${opts.retprobe ? ' (ret)' : ''}`;
    const link = callPtr(`bpf_program__attach_uprobe_opts(${this.name}, ${what})`, () =>
      libbpf().bpf_program__attach_uprobe_opts(this.handle, opts.pid ?? -1, binaryPath, opts.offset ?? 0, o),
    );
    void nameBuf; // kept alive across the call above
    return this.track(link);
  }

  private track(handle: Ptr): BpfLink {
    const link = new BpfLink(handle, `${this.owner.name}:${this.name}`);
    this.owner.links.push(link);
    return link;
  }
}

function addressOf(buf: Buffer): bigint {
  return koffi.address(buf);
}

export interface OpenOptions {
  /** max_entries overrides applied before load, by map name */
  maxEntries?: Record<string, number>;
  /** programs not to load (by name) */
  skipPrograms?: string[];
}

export class BpfObject {
  readonly path: string;
  readonly name: string;
  readonly links: BpfLink[] = [];
  private handle: Ptr | null;
  private loaded = false;
  private btfCache: Btf | undefined;

  private constructor(path: string, handle: Ptr) {
    this.path = path;
    this.handle = handle;
    this.name = basename(path);
  }

  /** Open (parse) an object file. Nothing touches the kernel until load(). */
  static open(path: string, opts: OpenOptions = {}): BpfObject {
    if (!existsSync(path)) {
      throw new BpfError({ op: `bpf_object__open_file(${path})`, errno: 2, hint: 'object not built: run `make -C bpf` (or npm run build)' });
    }
    const obj = new BpfObject(path, callPtr(`bpf_object__open_file(${path})`, () => libbpf().bpf_object__open_file(path, null)));
    try {
      for (const [mapName, n] of Object.entries(opts.maxEntries ?? {})) {
        const m = obj.mapHandle(mapName);
        callInt(`bpf_map__set_max_entries(${mapName}, ${n})`, () => libbpf().bpf_map__set_max_entries(m, n) as number);
      }
      for (const p of opts.skipPrograms ?? []) obj.program(p).setAutoload(false);
    } catch (e) {
      obj.close();
      throw e;
    }
    return obj;
  }

  /** Relocate (CO-RE), create maps, verify and load programs. */
  load(): this {
    // name the sections in the op so errors (and their hints) say what was refused
    const sections = this.programs().filter((p) => p.autoload).map((p) => p.section);
    callInt(`bpf_object__load(${this.name} [${sections.join(', ')}])`, () => libbpf().bpf_object__load(this.live()) as number);
    this.loaded = true;
    return this;
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  program(name: string): BpfProgram {
    const h = libbpf().bpf_object__find_program_by_name(this.live(), name);
    if (!h) throw new BpfError({ op: `find program ${name} in ${this.name}`, errno: 2, hint: `programs: ${this.programs().map((p) => p.name).join(', ')}` });
    return new BpfProgram(h, this);
  }

  programs(): BpfProgram[] {
    const out: BpfProgram[] = [];
    let p: Ptr | null = null;
    while ((p = libbpf().bpf_object__next_program(this.live(), p))) out.push(new BpfProgram(p, this));
    return out;
  }

  map(name: string): BpfMap {
    if (!this.loaded) throw new BpfError({ op: `map ${name} of ${this.name}`, errno: 9, hint: 'load() the object first' });
    return BpfMap.fromHandle(this.mapHandle(name));
  }

  mapNames(): string[] {
    const out: string[] = [];
    let m: Ptr | null = null;
    while ((m = libbpf().bpf_object__next_map(this.live(), m))) out.push(libbpf().bpf_map__name(m) as string);
    return out;
  }

  /** Before load: reuse an existing (pinned) map's fd instead of creating one. */
  reuseMap(name: string, fd: number): void {
    callInt(`bpf_map__reuse_fd(${name})`, () => libbpf().bpf_map__reuse_fd(this.mapHandle(name), fd) as number);
  }

  /**
   * Attach every program that is set to load, as its section says. A bare
   * section ("tracepoint", "tp", "raw_tp", "kprobe"...) names no target: such a
   * program is a tail-call target and is not attached.
   */
  attachAll(): BpfLink[] {
    const links: BpfLink[] = [];
    for (const p of this.programs()) if (p.autoload && p.section.includes('/')) links.push(p.attach());
    return links;
  }

  /** The object's BTF (record layouts are checked against it). */
  btf(): Btf {
    if (this.btfCache) return this.btfCache;
    const b = callPtr(`bpf_object__btf(${this.name})`, () => libbpf().bpf_object__btf(this.live()), 'object has no BTF: build with clang -g');
    const size = [0];
    const raw = callPtr('btf__raw_data', () => libbpf().btf__raw_data(b, size));
    const bytes = Buffer.from(koffi.view(raw, size[0]!)).subarray(0, size[0]);
    this.btfCache = Btf.parse(Buffer.from(bytes));
    return this.btfCache;
  }

  /** Detach unpinned links, free maps and programs. Idempotent. */
  close(): void {
    for (const l of this.links.splice(0)) l.destroy();
    if (this.handle) {
      libbpf().bpf_object__close(this.handle);
      this.handle = null;
    }
  }

  private mapHandle(name: string): Ptr {
    const h = libbpf().bpf_object__find_map_by_name(this.live(), name);
    if (!h) throw new BpfError({ op: `find map ${name} in ${this.name}`, errno: 2, hint: `maps: ${this.mapNames().join(', ')}` });
    return h;
  }

  private live(): Ptr {
    if (!this.handle) throw new Error(`BPF object ${this.name} is closed`);
    return this.handle;
  }
}
