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

  /** The kernel's id of this link (struct bpf_link_info: type, id, prog_id, ...). */
  get id(): number {
    const info = Buffer.alloc(64);
    const len = [info.length];
    callInt(`bpf_obj_get_info_by_fd(${this.description})`, () => libbpf().bpf_obj_get_info_by_fd(this.fd, info, len) as number);
    return info.readUInt32LE(4);
  }

  /** Whether the kernel still has a link with this id (attached, or not yet freed). */
  static exists(id: number): boolean {
    const fd = libbpf().bpf_link_get_fd_by_id(id) as number;
    if (fd < 0) return false; // ENOENT: freed
    libc().close(fd);
    return true;
  }

  /**
   * Wait until the links with these ids are gone (detached), up to timeoutMs.
   * Unpinning drops the pin's reference late on some kernels: 5.10 frees a
   * bpffs inode from an RCU callback and the link from a workqueue, so closing
   * our own last fd does not detach at once there. Returns the ids still present.
   */
  static waitGone(ids: number[], timeoutMs = 5000): number[] {
    const deadline = Date.now() + timeoutMs;
    let left = ids.filter((id) => BpfLink.exists(id));
    while (left.length && Date.now() < deadline) {
      Atomics.wait(sleeper, 0, 0, 5);
      left = left.filter((id) => BpfLink.exists(id));
    }
    return left;
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
