import { libbpf, type Ptr } from './ffi.js';
import { callInt, callPtr } from './call.js';

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
