import { libbpf, libc, type Ptr } from './ffi.js';
import { callInt, callPtr } from './call.js';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * An attachment of a program. destroy() detaches it unless it was pinned and
 * then disconnected (pinned links outlive the process: persistent enforcement).
 */
export class BpfLink {
  private handle: Ptr | null;
  constructor(
    handle: Ptr,
    readonly description: string,
  ) {
    this.handle = handle;
  }

  /** Open a link pinned in bpffs (adopt enforcement left by an earlier agent). */
  static openPinned(path: string): BpfLink {
    return new BpfLink(callPtr(`bpf_link__open(${path})`, () => libbpf().bpf_link__open(path)), `pinned ${path}`);
  }

  get fd(): number {
    return libbpf().bpf_link__fd(this.live()) as number;
  }

  /** The kernel's ids of this link and of its program (struct bpf_link_info: type, id, prog_id, ...). */
  get ids(): { link: number; prog: number } {
    const info = Buffer.alloc(64);
    const len = [info.length];
    callInt(`bpf_obj_get_info_by_fd(${this.description})`, () => libbpf().bpf_obj_get_info_by_fd(this.fd, info, len) as number);
    return { link: info.readUInt32LE(4), prog: info.readUInt32LE(8) };
  }

  get id(): number {
    return this.ids.link;
  }

  /** Whether the kernel still has a link with this id (its reference count is not zero). */
  static exists(id: number): boolean {
    const fd = libbpf().bpf_link_get_fd_by_id(id) as number;
    if (fd < 0) return false; // ENOENT: freed
    libc().close(fd);
    return true;
  }

  /** Whether the kernel still has a program with this id. */
  static progExists(id: number): boolean {
    const fd = libbpf().bpf_prog_get_fd_by_id(id) as number;
    if (fd < 0) return false;
    libc().close(fd);
    return true;
  }

  /**
   * Wait until these links are detached, up to timeoutMs; returns the link ids
   * not yet detached. A link's id disappears when its last reference is
   * dropped, but the detach (ops->release) runs after that, from a workqueue
   * when the last put came from an RCU callback (5.10 frees a bpffs inode that
   * way) or, on 6.3+, always. The program is put only after the release, so a
   * link is detached once its program's id is gone too (nothing else holds
   * the programs of vigil's pinned links).
   */
  static waitGone(links: { link: number; prog: number }[], timeoutMs = 10_000): number[] {
    const deadline = Date.now() + timeoutMs;
    const alive = (l: { link: number; prog: number }) => BpfLink.exists(l.link) || (l.prog !== 0 && BpfLink.progExists(l.prog));
    let left = links.filter(alive);
    while (left.length && Date.now() < deadline) {
      Atomics.wait(sleeper, 0, 0, 5);
      left = left.filter(alive);
    }
    return left.map((l) => l.link);
  }

  pin(path: string): void {
    callInt(`bpf_link__pin(${this.description}, ${path})`, () => libbpf().bpf_link__pin(this.live(), path) as number);
  }

  unpin(): void {
    callInt(`bpf_link__unpin(${this.description})`, () => libbpf().bpf_link__unpin(this.live()) as number);
  }

  /** Forget the link without detaching it (it stays attached while pinned). */
  disconnect(): void {
    libbpf().bpf_link__disconnect(this.live());
  }

  destroy(): void {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = null;
    libbpf().bpf_link__destroy(h);
  }

  private live(): Ptr {
    if (!this.handle) throw new Error(`link ${this.description} was destroyed`);
    return this.handle;
  }
}
