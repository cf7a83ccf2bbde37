/**
 * Sending datagrams to a Unix socket (/dev/log), which Node's dgram module
 * cannot do (it has udp4 and udp6 only; a stream connect to a datagram socket
 * fails with EPROTOTYPE). libc's socket(AF_UNIX, SOCK_DGRAM) and sendto()
 * through koffi: non-blocking, so a full receiver gives EAGAIN rather than a
 * stalled agent; every send names the path, so a receiver that was restarted
 * (a new socket file) is found again.
 */
import { koffi } from './ffi.js';
import { errnoName } from './errors.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH_MAX = 108;

let fns: ReturnType<typeof load> | undefined;
function load() {
  const lib = koffi.load('libc.so.6');
  return {
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    sendto: lib.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
    close: lib.func('int close(int fd)'),
  };
}

/** An error from sendto(): `code` is the errno name (EAGAIN, ENOENT, ECONNREFUSED, EMSGSIZE…). */
export class UnixSendError extends Error {
  constructor(
    readonly code: string,
    path: string,
  ) {
    super(`sendto ${path}: ${code}`);
    this.name = 'UnixSendError';
  }
}

export class UnixDatagramSender {
  private fd: number;
  private readonly addr: Buffer;

  constructor(readonly path: string) {
    const p = Buffer.from(path);
    if (p.length === 0 || p.length >= SUN_PATH_MAX || p.includes(0)) throw new Error(`unix socket path must be 1-${SUN_PATH_MAX - 1} bytes without NUL: ${JSON.stringify(path)}`);
    this.addr = Buffer.alloc(2 + p.length + 1);
    this.addr.writeUInt16LE(AF_UNIX, 0);
    p.copy(this.addr, 2);
    fns ??= load();
    this.fd = fns.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
    if (this.fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM): ${errnoName(koffi.errno())}`);
  }

  /** One datagram; throws UnixSendError (EAGAIN when the receiver's queue is full). */
  send(buf: Buffer): void {
    if (this.fd < 0) throw new UnixSendError('EBADF', this.path);
    const n = Number(fns!.sendto(this.fd, buf, buf.length, 0, this.addr, this.addr.length));
    if (n < 0) throw new UnixSendError(errnoName(koffi.errno()), this.path);
  }

  close(): void {
    if (this.fd >= 0) fns!.close(this.fd);
    this.fd = -1;
  }
}
