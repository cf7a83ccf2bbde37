/**
 * fanotify permission events (libc via koffi): the exec guard's second backend
 * where BPF LSM is not active (src/enforcement/fanotify-*.ts).
 *
 * Protocol (fanotify(7)): a FAN_CLASS_CONTENT group marks filesystems (or
 * mounts) for FAN_OPEN_EXEC_PERM (and FAN_OPEN_PERM); each read() returns
 * whole `struct fanotify_event_metadata` records (24 bytes on every arch:
 * u32 event_len, u8 vers, u8 reserved, u16 metadata_len, u64 mask, s32 fd,
 * s32 pid), each with an open fd of the file (FMODE_NONOTIFY: using it raises
 * no event). The process that triggered a permission event sleeps until a
 * `struct fanotify_response {s32 fd; u32 response}` with FAN_ALLOW or FAN_DENY
 * is written back; then the fd is closed. When the group's fd is closed (the
 * agent exits or is killed) the kernel allows every pending event.
 *
 * Every function here is synchronous and meant for a worker thread that does
 * nothing else (koffi works in workers); nothing here opens a file on a marked
 * filesystem (the listener would wait for itself).
 */
import { koffi } from './ffi.js';

export const FAN_CLOEXEC = 0x1;
export const FAN_NONBLOCK = 0x2;
export const FAN_CLASS_CONTENT = 0x4;
export const FAN_UNLIMITED_QUEUE = 0x10;
export const FAN_UNLIMITED_MARKS = 0x20;

export const FAN_MODIFY = 0x2;
export const FAN_CLOSE_WRITE = 0x8;
export const FAN_Q_OVERFLOW = 0x4000;
export const FAN_OPEN_PERM = 0x10000;
export const FAN_OPEN_EXEC_PERM = 0x40000;

export const FAN_MARK_ADD = 0x1;
export const FAN_MARK_REMOVE = 0x2;
export const FAN_MARK_MOUNT = 0x10;
export const FAN_MARK_IGNORED_MASK = 0x20;
export const FAN_MARK_FLUSH = 0x80;
export const FAN_MARK_FILESYSTEM = 0x100;
/** Linux 5.19+: an inode mark that does not pin the inode in the inode cache (lost when it is evicted) */
export const FAN_MARK_EVICTABLE = 0x200;

export const FAN_ALLOW = 0x1;
export const FAN_DENY = 0x2;

export const FANOTIFY_METADATA_VERSION = 3;
export const EVENT_METADATA_LEN = 24;

const O_RDONLY = 0;
const O_LARGEFILE = 0x8000;
const O_CLOEXEC = 0x80000;
const AT_FDCWD = -100;

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;

let lib: ReturnType<typeof load> | undefined;

function load() {
  const c = koffi.load('libc.so.6');
  return {
    fanotify_init: c.func('int fanotify_init(unsigned int flags, unsigned int event_f_flags)'),
    fanotify_mark: c.func('int fanotify_mark(int fd, unsigned int flags, uint64_t mask, int dirfd, const char *path)'),
    read: c.func('long read(int fd, _Out_ uint8_t *buf, size_t count)'),
    write: c.func('long write(int fd, const uint8_t *buf, size_t count)'),
    close: c.func('int close(int fd)'),
    poll: c.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)'),
    pipe2: c.func('int pipe2(_Out_ uint8_t *fds, int flags)'),
    unshare: c.func('int unshare(int flags)'),
    open: c.func('int open(const char *path, int flags)'),
    pread: c.func('long pread(int fd, _Out_ uint8_t *buf, size_t count, int64_t offset)'),
    memfd_create: c.func('int memfd_create(const char *name, unsigned int flags)'),
    socket: c.func('int socket(int domain, int type, int protocol)'),
    clock_gettime: c.func('int clock_gettime(int clk, _Out_ int64_t *ts)'),
    fstat: c.func('int fstat(int fd, _Out_ uint8_t *st)'),
    readlink: c.func('long readlink(const char *path, _Out_ uint8_t *buf, size_t size)'),
    sendto: c.func('long sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)'),
  };
}

function libc() {
  return (lib ??= load());
}

export class FanotifyError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: ${errnoText(errno)}`);
    this.name = 'FanotifyError';
  }
}

const NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 18: 'EXDEV', 22: 'EINVAL', 24: 'EMFILE', 28: 'ENOSPC', 38: 'ENOSYS', 61: 'ENODATA', 95: 'EOPNOTSUPP' };

export function errnoText(n: number): string {
  return NAMES[n] ?? `errno ${n}`;
}

/**
 * fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK |
 * FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS, O_RDONLY | O_LARGEFILE | O_CLOEXEC).
 * Needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS.
 */
export function fanotifyInit(): number {
  const fd = libc().fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) throw new FanotifyError('fanotify_init(FAN_CLASS_CONTENT)', koffi.errno());
  return fd;
}

/** Add (or remove) a mark; returns 0 or the errno (EXDEV/EINVAL: no filesystem mark here). */
export function fanotifyMark(fd: number, flags: number, mask: number, path: string): number {
  const r = libc().fanotify_mark(fd, flags, BigInt(mask), AT_FDCWD, path);
  return r < 0 ? koffi.errno() : 0;
}

/**
 * Add to the ignore mask of the inode of an open file (an event's fd): events in
 * `mask` on that inode are no longer raised for this group until the mask is
 * cleared. Without FAN_MARK_IGNORED_SURV_MODIFY the kernel clears it when the
 * file is modified (FS_MODIFY: write, truncate), so a rewritten file is asked
 * about again. `evictable` (Linux 5.19+) does not pin the inode in memory.
 * Returns 0 or the errno (EINVAL for FAN_MARK_EVICTABLE before 5.19).
 */
export function fanotifyIgnoreFd(fd: number, fileFd: number, mask: number, evictable: boolean): number {
  const r = libc().fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | (evictable ? FAN_MARK_EVICTABLE : 0), BigInt(mask), fileFd, null);
  return r < 0 ? koffi.errno() : 0;
}

/** Remove every inode mark of the group (FAN_MARK_FLUSH without a mount or filesystem flag): the ignore marks; 0 or the errno. */
export function fanotifyFlushInodeMarks(fd: number): number {
  const r = libc().fanotify_mark(fd, FAN_MARK_FLUSH, 0n, AT_FDCWD, null);
  return r < 0 ? koffi.errno() : 0;
}

/** read() into buf: bytes read, 0 when nothing is queued (EAGAIN), or -errno. */
export function readEvents(fd: number, buf: Buffer): number {
  const n = Number(libc().read(fd, buf, buf.length));
  if (n >= 0) return n;
  const e = koffi.errno();
  return e === 11 ? 0 : -e;
}

export interface EventMeta {
  len: number;
  mask: number;
  fd: number;
  pid: number;
}

/** The records in buf[0..n): version-checked, whole records only. */
export function* parseEvents(buf: Buffer, n: number): Generator<EventMeta> {
  let off = 0;
  while (off + EVENT_METADATA_LEN <= n) {
    const len = buf.readUInt32LE(off);
    const vers = buf.readUInt8(off + 4);
    if (vers !== FANOTIFY_METADATA_VERSION || len < EVENT_METADATA_LEN || off + len > n) return;
    yield { len, mask: Number(buf.readBigUInt64LE(off + 8)), fd: buf.readInt32LE(off + 16), pid: buf.readInt32LE(off + 20) };
    off += len;
  }
}

const resp = Buffer.alloc(8);

/** Write {fd, FAN_ALLOW|FAN_DENY}; 0 or the errno (ENOENT: the event is gone). */
export function respond(groupFd: number, eventFd: number, allow: boolean): number {
  resp.writeInt32LE(eventFd, 0);
  resp.writeUInt32LE(allow ? FAN_ALLOW : FAN_DENY, 4);
  const r = Number(libc().write(groupFd, resp, 8));
  return r === 8 ? 0 : koffi.errno();
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

/** pread on an event's fd (does not move its offset, raises no event). */
export function preadFd(fd: number, buf: Buffer, len: number, offset: number): number {
  const n = Number(libc().pread(fd, buf, len, offset));
  return n < 0 ? -koffi.errno() : n;
}

/** open(path, O_RDONLY|O_CLOEXEC) for /proc files (never on a marked filesystem); -errno on failure. */
export function openProc(path: string): number {
  const fd = libc().open(path, O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -koffi.errno() : fd;
}

/** A pipe (read end, write end), both close-on-exec and non-blocking. */
export function makePipe(): [number, number] {
  const fds = Buffer.alloc(8);
  if (libc().pipe2(fds, O_CLOEXEC | 0x800) < 0) throw new FanotifyError('pipe2', koffi.errno());
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/**
 * unshare(CLONE_FILES) for the calling thread: its own copy of the fd table.
 * The listener needs it: closing an event's fd drops every POSIX (fcntl) lock
 * the *fd table's owner* holds on that file, so a listener sharing the agent's
 * table would release SQLite's locks each time the agent opened its own store
 * (SQLITE_IOERR_SHORT_READ followed). With a table of its own, the event fds
 * and their closes are the listener's alone.
 */
export function unshareFiles(): void {
  if (libc().unshare(0x400) < 0) throw new FanotifyError('unshare(CLONE_FILES)', koffi.errno());
}

/**
 * poll() over fds, each with its events; returns revents per fd (all 0 on
 * timeout), or throws on a real error (EINTR counts as a timeout).
 */
export function pollFds(fds: Array<[fd: number, events: number]>, timeoutMs: number): number[] {
  const b = Buffer.alloc(8 * fds.length);
  fds.forEach(([fd, ev], i) => {
    b.writeInt32LE(fd, i * 8);
    b.writeInt16LE(ev, i * 8 + 4);
  });
  const r = libc().poll(b, fds.length, timeoutMs);
  if (r < 0) {
    const e = koffi.errno();
    if (e === 4) return fds.map(() => 0);
    throw new FanotifyError('poll', e);
  }
  return fds.map((_, i) => b.readInt16LE(i * 8 + 6));
}

/**
 * A memfd of our own (MFD_CLOEXEC): its /proc/self/fd path reaches the kernel's
 * internal tmpfs that every memfd lives on, so a filesystem mark through it
 * covers fexecve of any memfd. -errno on failure.
 */
export function memfdCreate(name: string): number {
  const fd = libc().memfd_create(name, 1);
  return fd < 0 ? -koffi.errno() : fd;
}

/**
 * systemd's notification socket ($NOTIFY_SOCKET: a path, or "@name" for the
 * abstract namespace): send(msg) for WATCHDOG=1 pings. Non-blocking datagrams;
 * null when the variable is not set.
 */
export function sdNotifier(socketPath: string | undefined): ((msg: string) => number) | null {
  if (!socketPath) return null;
  const path = Buffer.from(socketPath);
  if (path.length >= 108) return null;
  const addr = Buffer.alloc(2 + 108);
  addr.writeUInt16LE(1, 0); // AF_UNIX
  path.copy(addr, 2);
  let len = 2 + path.length + 1;
  if (socketPath.startsWith('@')) {
    addr[2] = 0; // abstract: no terminating NUL counted
    len = 2 + path.length;
  }
  const fd = libc().socket(1, 2 | O_CLOEXEC | 0x800, 0); // SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK
  if (fd < 0) return null;
  return (msg: string) => {
    const b = Buffer.from(msg);
    const r = Number(libc().sendto(fd, b, b.length, 0, addr, len));
    return r < 0 ? koffi.errno() : 0;
  };
}

const ts = [0, 0];
/** CPU time of the calling thread in µs (CLOCK_THREAD_CPUTIME_ID): what the listener itself spends. */
export function threadCpuUs(): number {
  libc().clock_gettime(3, ts);
  return Number(ts[0]) * 1e6 + Math.floor(Number(ts[1]) / 1000);
}

/** struct stat of x86-64 and of the generic layout (arm64): dev, ino, size, mtim, ctim at the same offsets; st_mode differs. */
const MODE_OFF = process.arch === 'x64' ? 24 : 16;
const statBuf = Buffer.alloc(256);

export interface FileStat {
  /** userspace dev_t (glibc's makedev encoding, as Node's stat().dev) */
  dev: number;
  ino: number;
  mode: number;
  size: number;
  /** "mtime.sec.nsec:ctime.sec.nsec": changes when the content or the inode changes */
  version: string;
}

/** fstat(2) without Node's Stats object (a few µs less per permission event); null on failure. */
export function fstatFd(fd: number): FileStat | null {
  if (libc().fstat(fd, statBuf) < 0) return null;
  return {
    dev: Number(statBuf.readBigUInt64LE(0)),
    ino: Number(statBuf.readBigUInt64LE(8)),
    mode: statBuf.readUInt32LE(MODE_OFF),
    size: Number(statBuf.readBigInt64LE(48)),
    version: `${statBuf.readBigInt64LE(88)}.${statBuf.readBigInt64LE(96)}:${statBuf.readBigInt64LE(104)}.${statBuf.readBigInt64LE(112)}`,
  };
}

const linkBuf = Buffer.alloc(4096);
/** readlink(2) of /proc/thread-self/fd/N: the path of an event's file (null on failure). */
export function fdPath(fd: number): string | null {
  const n = Number(libc().readlink(`/proc/thread-self/fd/${fd}`, linkBuf, linkBuf.length));
  return n < 0 ? null : linkBuf.toString('utf8', 0, n);
}
