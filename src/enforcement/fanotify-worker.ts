/**
 * The fanotify backend's answering thread (a worker_thread: never the agent's
 * event loop). It owns the fanotify group: marks every filesystem where
 * executables can live (and mounts that appear later: /proc/self/mountinfo
 * polled for POLLPRI), blocks in poll(), reads permission events, decides from
 * the decision table the agent shares with it (SharedArrayBuffer keyed by
 * (dev, ino)) and the path and sha256 rule sets posted with it, answers
 * FAN_ALLOW or FAN_DENY, closes the event's fd, and only then tells the agent
 * (postMessage) what it decided.
 *
 * Rules: the agent writes a new table, posts {rules} and then bumps the
 * generation in the shared control block; before each batch of events the
 * worker compares generations and takes the posted rules synchronously
 * (receiveMessageOnPort): a rule added before an exec is in force for it.
 *
 * Deadline: a decision that needs a sha256 not in the cache hashes the file in
 * chunks; past the deadline (from the read that brought the event) it answers
 * the fail mode (open: allow; closed: deny), counts it and reports it.
 *
 * Nothing here opens a file on a marked filesystem after the marks are placed
 * (the process would wait on its own event): /proc only, and the events' fds.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import {
  FAN_MARK_ADD, FAN_MARK_FILESYSTEM, FAN_MARK_REMOVE, FAN_MARK_MOUNT, FAN_OPEN_EXEC_PERM, FAN_OPEN_PERM, FAN_Q_OVERFLOW, POLLERR, POLLIN, POLLPRI,
  closeFd, errnoText, fanotifyFlushInodeMarks, fanotifyIgnoreFd, fanotifyInit, fanotifyMark, fdPath, fstatFd, makePipe, memfdCreate, sdNotifier, threadCpuUs, unshareFiles, openProc, parseEvents, pollFds, preadFd, readEvents, respond,
} from '../kernel/fanotify.js';
import { bootTimeNs } from '../kernel/clock.js';
import { Action, DecisionFlags, kernelDev } from './abi.js';
import { Ctl, MATCH, lookupInode, type FanotifyRules, type FanotifyWorkerData, type WorkerDecision, type WorkerMessage } from './fanotify-shared.js';

const data = workerData as FanotifyWorkerData;
const port = parentPort as MessagePort;
const ctl = new Int32Array(data.ctl);
const post = (m: WorkerMessage): void => port.postMessage(m);

let rules: FanotifyRules = { gen: 0, table: new Float64Array(new SharedArrayBuffer(8 * 3 * 16)), cap: 16, entries: 0, paths: new Map(), hashes: new Map(), globalMonitor: false, exempt: new Set() };
let appliedGen = -1;

function takeRules(force = false): void {
  if (!force && Atomics.load(ctl, Ctl.GEN) === appliedGen) return;
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (!m) break;
    const msg = m.message as { type: string } & Record<string, unknown>;
    if (msg.type === 'rules') {
      const r = msg as unknown as { gen: number; table: SharedArrayBuffer; cap: number; entries: number; paths: Array<[string, number]>; hashes: Array<[string, number]>; globalMonitor: boolean; exempt: string[] };
      rules = { gen: r.gen, table: new Float64Array(r.table), cap: r.cap, entries: r.entries, paths: new Map(r.paths), hashes: new Map(r.hashes), globalMonitor: r.globalMonitor, exempt: new Set(r.exempt) };
      appliedGen = r.gen;
      if (fd >= 0) {
        // verdicts cached in the kernel were given under the old rules
        flushIgnores();
        applyMask();
      }
    } else if (msg.type === 'stop') {
      stopping = true;
    }
  }
}

// ---- marks ---------------------------------------------------------------

/** Filesystem types where no executable lives (or that cannot be marked usefully). */
const PSEUDO = new Set([
  'proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'securityfs', 'debugfs', 'tracefs', 'bpf', 'pstore', 'mqueue', 'configfs',
  'fusectl', 'binfmt_misc', 'efivarfs', 'nsfs', 'autofs', 'rpc_pipefs', 'selinuxfs', 'hugetlbfs', 'devtmpfs',
]);

interface MountLine { dev: string; mountpoint: string; fstype: string }

function mounts(): MountLine[] {
  const out: MountLine[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ dev: f[2]!, mountpoint: unescape(f[4]!), fstype: f[sep + 1]! });
  }
  return out;
}

/** Marked filesystems ("fs:DEV") and mounts ("mnt:PATH"), each with the flags and path to mark it by. */
const targets = new Map<string, { flags: number; path: string }>();
const MASK = FAN_OPEN_EXEC_PERM | (data.loader ? FAN_OPEN_PERM : 0);
/**
 * The mask in force: MASK while at least one rule exists, else 0 (no rule, no
 * marks: no exec or open on the host waits for this process).
 */
let mask = 0;

function markAll(): void {
  const all = mounts();
  let want: MountLine[];
  if (data.mounts) {
    // only the filesystems holding the configured paths (tests, or a host that wants fewer marks)
    const devs = new Set<string>();
    for (const p of data.mounts) {
      const m = all.filter((x) => p === x.mountpoint || p.startsWith(x.mountpoint.endsWith('/') ? x.mountpoint : `${x.mountpoint}/`)).sort((a, b) => b.mountpoint.length - a.mountpoint.length)[0];
      if (m) devs.add(m.dev);
    }
    want = all.filter((x) => devs.has(x.dev));
  } else {
    want = all.filter((x) => !PSEUDO.has(x.fstype));
  }
  for (const m of want) {
    if (targets.has(`fs:${m.dev}`) || targets.has(`mnt:${m.mountpoint}`)) continue;
    // try with the full mask (whether this kind of mark is allowed here), then keep the mask in force
    const e = fanotifyMark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MASK, m.mountpoint);
    let kind: 'filesystem' | 'mount' = 'filesystem';
    let flags = FAN_MARK_FILESYSTEM;
    if (e !== 0) {
      const e2 = fanotifyMark(fd, FAN_MARK_ADD | FAN_MARK_MOUNT, MASK, m.mountpoint);
      if (e2 !== 0) {
        post({ type: 'mark-failed', path: m.mountpoint, fstype: m.fstype, error: `filesystem mark: ${errnoText(e)}, mount mark: ${errnoText(e2)}` });
        continue;
      }
      kind = 'mount';
      flags = FAN_MARK_MOUNT;
    }
    if (mask !== MASK) fanotifyMark(fd, FAN_MARK_REMOVE | flags, MASK & ~mask, m.mountpoint);
    targets.set(kind === 'filesystem' ? `fs:${m.dev}` : `mnt:${m.mountpoint}`, { flags, path: m.mountpoint });
    Atomics.store(ctl, Ctl.MARKS, targets.size);
    post({ type: 'mark', kind, path: m.mountpoint, fstype: m.fstype, ...(kind === 'mount' ? { why: errnoText(e) } : {}) });
  }
}

/**
 * memfds live on the kernel's internal tmpfs, mounted nowhere: mark it through
 * a memfd of our own (/proc/self/fd/N), so fexecve of a memfd is checked too.
 */
function markMemfd(): void {
  const m = memfdCreate('vigil-fanotify');
  if (m < 0) {
    post({ type: 'mark-failed', path: 'memfd', fstype: 'tmpfs (memfd)', error: `memfd_create: ${errnoText(-m)}` });
    return;
  }
  const path = `/proc/thread-self/fd/${m}`;
  let flags = FAN_MARK_FILESYSTEM;
  const e = fanotifyMark(fd, FAN_MARK_ADD | flags, MASK, path);
  if (e !== 0) {
    flags = FAN_MARK_MOUNT;
    const e2 = fanotifyMark(fd, FAN_MARK_ADD | flags, MASK, path);
    if (e2 !== 0) {
      // kernels refuse sb and mount marks on internal mounts: fexecve of a memfd is not seen
      post({ type: 'mark-failed', path: 'memfd', fstype: 'tmpfs (memfd)', error: `filesystem mark: ${errnoText(e)}, mount mark: ${errnoText(e2)} (the kernel refuses marks on its internal mount; vm.memfd_noexec=2, Linux 6.3+, refuses fexecve of every memfd)` });
      closeFd(m);
      return;
    }
  }
  if (mask !== MASK) fanotifyMark(fd, FAN_MARK_REMOVE | flags, MASK & ~mask, path);
  targets.set('fs:memfd', { flags, path });
  Atomics.store(ctl, Ctl.MARKS, targets.size);
  post({ type: 'mark', kind: 'filesystem', path: 'memfd', fstype: 'tmpfs (memfd)' });
}

/** Put the mask in force on every target: add the new bits first, then remove the old ones (no gap). */
function setMask(next: number): void {
  if (next === mask) return;
  for (const t of targets.values()) {
    if (next) fanotifyMark(fd, FAN_MARK_ADD | t.flags, next, t.path);
    if (mask & ~next) fanotifyMark(fd, FAN_MARK_REMOVE | t.flags, mask & ~next, t.path);
  }
  mask = next;
  Atomics.store(ctl, Ctl.ACTIVE, next ? 1 : 0);
}

function applyMask(): void {
  const any = rules.paths.size > 0 || rules.hashes.size > 0 || rules.entries > 0;
  setMask(any ? MASK : 0);
}

// ---- the verdict cache in the kernel: inode ignore marks ------------------

/**
 * After FAN_ALLOW for a regular file that no rule matches, the worker adds the
 * event's bits to the ignore mask of that file's inode (FAN_MARK_IGNORED_MASK on
 * the event's fd; fanotify_mark(2)): the next execs (and, for opens, the next
 * opens) of that inode raise no event and never wait for this thread. The mark
 * is made without FAN_MARK_IGNORED_SURV_MODIFY, so the kernel clears it when the
 * file is written or truncated (FS_MODIFY): a rewritten file is decided again
 * (and hashed again for sha256 rules). Every rule change removes all of them
 * (FAN_MARK_FLUSH) before the first decision under the new rules. Made before
 * the answer is written, so the FAN_OPEN_PERM the kernel raises right after an
 * exec's FAN_OPEN_EXEC_PERM is not raised at all.
 *
 * FAN_MARK_EVICTABLE (5.19+) keeps the marks from pinning inodes in memory (an
 * evicted inode loses its mark: it is asked about again). Older kernels refuse
 * the flag (EINVAL): the marks pin their inodes there, so at most
 * IGNORE_MAX_PINNED are kept before all are flushed. FAN_MARK_IGNORED_MASK (not
 * 6.0's FAN_MARK_IGNORE) because it works on every kernel this supports and
 * the marks are on files, where both mean the same.
 */
const IGNORE_MAX_PINNED = 16384;
const useIgnores = data.ignoreCache !== false;
let evictable = true;
let ignores = 0; // placed since the last flush
const ignoreErrors = new Set<number>();

function ignore(efd: number, bits: number): void {
  if (!evictable && ignores >= IGNORE_MAX_PINNED) flushIgnores();
  let e = fanotifyIgnoreFd(fd, efd, bits, evictable);
  if (e === 22 && evictable) {
    evictable = false; // before 5.19
    e = fanotifyIgnoreFd(fd, efd, bits, false);
  }
  if (e) {
    // counted each time, said once per errno (a filesystem that refuses inode marks would say it per exec)
    Atomics.add(ctl, Ctl.ERRORS, 1);
    if (!ignoreErrors.has(e)) {
      ignoreErrors.add(e);
      post({ type: 'error', error: `ignore mark (allow verdicts not cached in the kernel for such files; counted in errors): ${errnoText(e)}` });
    }
    return;
  }
  ignores++;
  Atomics.add(ctl, Ctl.IGNORES, 1);
}

function flushIgnores(): void {
  if (ignores === 0) return;
  const e = fanotifyFlushInodeMarks(fd);
  if (e) {
    Atomics.add(ctl, Ctl.ERRORS, 1);
    post({ type: 'error', error: `removing the ignore marks (FAN_MARK_FLUSH): ${errnoText(e)}` });
    return; // counted; retried at the next change
  }
  ignores = 0;
  Atomics.add(ctl, Ctl.FLUSHES, 1);
}

// ---- deciding --------------------------------------------------------------

const hashCache = new Map<string, string>(); // "dev:ino:mtimeNs:ctimeNs:size" -> hex
const HASH_CACHE_MAX = 65536;
const chunk = Buffer.alloc(1 << 20);
const head = Buffer.alloc(4);

/** sha256 of the event's file, or null when the deadline passed first. */
function sha256Of(efd: number, key: string, size: number, deadline: number): string | null {
  const hit = hashCache.get(key);
  if (hit) return hit;
  const h = createHash('sha256');
  let off = 0;
  while (off < size) {
    const n = preadFd(efd, chunk, Math.min(chunk.length, size - off), off);
    if (n <= 0) break;
    h.update(n === chunk.length ? chunk : chunk.subarray(0, n));
    off += n;
    if (off < size && performance.now() > deadline) return null;
  }
  const hex = h.digest('hex');
  Atomics.add(ctl, Ctl.HASHES, 1);
  if (hashCache.size >= HASH_CACHE_MAX) hashCache.delete(hashCache.keys().next().value as string);
  hashCache.set(key, hex);
  return hex;
}

/** ELF or #! script: the opens the loader guard hashes (libraries, programs, scripts). */
function looksExecutable(efd: number): boolean {
  const n = preadFd(efd, head, 4, 0);
  if (n < 2) return false;
  return (n === 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) || (head[0] === 0x23 && head[1] === 0x21);
}

interface Verdict {
  allow: boolean;
  decision?: Omit<WorkerDecision, 'type' | 'task' | 'ktimeNs'>;
  /** no rule matched a regular file: the event bits to ignore on its inode from now on */
  cache?: number;
}

let stopping = false;
const selfPid = data.selfPid;

function decide(efd: number, pid: number, mask: number, deadline: number): Verdict {
  const exec = (mask & FAN_OPEN_EXEC_PERM) !== 0;
  const st = fstatFd(efd);
  if (!st) throw new Error('fstat of the event fd failed');
  lastStat = st;
  const { dev, ino } = st;
  let val = lookupInode(rules.table, rules.cap, dev, ino);
  let match: number = MATCH.inode;
  let path: string | null = null;
  const needPath = () => (path ??= fdPath(efd) ?? readlinkSync(`/proc/thread-self/fd/${efd}`));
  if (val < 0 && exec && rules.paths.size) {
    const v = rules.paths.get(needPath());
    if (v !== undefined) {
      val = v;
      match = MATCH.path;
    }
  }
  let failed = false;
  if (val < 0 && rules.hashes.size && (st.mode & 0o170000) === 0o100000 && (exec || looksExecutable(efd))) {
    const key = `${dev}:${ino}:${st.version}:${st.size}`;
    const hex = sha256Of(efd, key, st.size, deadline);
    if (hex === null) failed = true;
    else {
      const v = rules.hashes.get(hex);
      if (v !== undefined) {
        val = v;
        match = MATCH.sha256;
      }
    }
  }
  if (failed) {
    Atomics.add(ctl, Ctl.DEADLINE, 1);
    post({ type: 'deadline', pid, path: needPath(), failMode: data.failMode, deadlineMs: data.deadlineMs });
    return { allow: data.failMode === 'open' };
  }
  if (val < 0) return { allow: true, cache: (st.mode & 0o170000) === 0o100000 ? (exec ? MASK : FAN_OPEN_PERM) : 0 };
  const ruleId = Math.floor(val / 2);
  const enforce = val % 2 === 1;
  let flags = 0;
  let exempt = pid === 1 || rules.exempt.has(`${dev}:${ino}`);
  if (!exempt && data.exemptChildren) {
    const ppid = parentOf(pid);
    exempt = ppid === selfPid;
  }
  if (exempt) flags |= DecisionFlags.EXEMPT;
  if (rules.globalMonitor) flags |= DecisionFlags.GLOBAL_MONITOR;
  const block = enforce && !exempt && !rules.globalMonitor;
  return {
    allow: !block,
    decision: {
      pid, ruleId, match, action: block ? Action.BLOCKED : Action.WOULD_BLOCK, mode: enforce ? 2 : 1, flags,
      dev: kernelDev(dev), ino: String(ino), path: needPath(), perm: exec ? 'exec' : 'open',
    },
  };
}

function parentOf(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** What the agent needs of the process to describe it (read after answering: it is still there). */
function taskOf(pid: number): WorkerDecision['task'] {
  const t = { pid, tgid: pid, ppid: 0, uid: 0, gid: 0, euid: 0, loginuid: 4294967295, sessionid: 4294967295, startTicks: 0, comm: '' };
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    t.comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    t.ppid = Number(rest[1]);
    t.startTicks = Number(rest[19]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = /\nUid:\s+(\d+)\s+(\d+)/.exec(status);
    const gid = /\nGid:\s+(\d+)/.exec(status);
    if (uid) {
      t.uid = Number(uid[1]);
      t.euid = Number(uid[2]);
    }
    if (gid) t.gid = Number(gid[1]);
    t.loginuid = Number(readFileSync(`/proc/${pid}/loginuid`, 'utf8'));
    t.sessionid = Number(readFileSync(`/proc/${pid}/sessionid`, 'utf8'));
  } catch {
    /* gone already: what we have */
  }
  return t;
}

// ---- the loop ---------------------------------------------------------------

/**
 * A fd table of this thread's own (see unshareFiles): the wake pipe is made
 * first (the agent writes its end), then the copies of the agent's files,
 * sockets and BPF objects are closed here (in this table only) so that this
 * thread never keeps them open after the agent closes them. Event loop
 * plumbing (eventfd, epoll, pipes) and stdio stay.
 */
const [wakeR, wakeW] = makePipe();
try {
  unshareFiles();
  for (const n of readdirSync('/proc/thread-self/fd')) {
    const f = Number(n);
    if (f <= 2 || f === wakeR || f === wakeW) continue;
    let target: string;
    try {
      target = readlinkSync(`/proc/thread-self/fd/${n}`);
    } catch {
      continue;
    }
    if (target.startsWith('/') || target.startsWith('socket:') || /^anon_inode:(bpf|\[perf_event\]|\[fanotify\])/.test(target)) closeFd(f);
  }
} catch (e) {
  post({ type: 'fatal', error: (e as Error).message });
  process.exit(0);
}

let fd = -1;
try {
  fd = fanotifyInit();
} catch (e) {
  post({ type: 'fatal', error: (e as Error).message });
  process.exit(0);
}
const mountinfo = openProc('/proc/self/mountinfo');
try {
  markAll();
  markMemfd();
} catch (e) {
  post({ type: 'fatal', error: `marking filesystems: ${(e as Error).message}` });
  closeFd(fd);
  process.exit(0);
}
takeRules(true);
applyMask();
post({ type: 'ready', wakeFd: wakeW, marks: Atomics.load(ctl, Ctl.MARKS) });

let lastExec: { pid: number; dev: number; ino: number; allow: boolean } | null = null;
/** the stat decide() took of the last event (the exec's, reused for its FAN_OPEN_PERM twin) */
let lastStat: { dev: number; ino: number } | null = null;
function sameFile(efd: number, f: { dev: number; ino: number }): boolean {
  const g = fstatFd(efd);
  return g !== null && g.dev === f.dev && g.ino === f.ino;
}

/**
 * systemd's watchdog (WatchdogSec in the unit): pinged from this thread, the
 * one that answers, at half the interval. A stopped or wedged listener stops
 * pinging; systemd then kills the agent (WatchdogSignal), the kernel allows
 * the waiting execs as the group closes, and Restart= starts it again.
 */
const watchdogUs = Number(process.env.WATCHDOG_USEC ?? 0);
const watchdogPid = Number(process.env.WATCHDOG_PID ?? selfPid);
const notify = watchdogUs > 0 && watchdogPid === selfPid ? sdNotifier(process.env.NOTIFY_SOCKET) : null;
const pingEveryMs = notify ? Math.max(50, Math.floor(watchdogUs / 2000)) : 0;
let lastPing = 0;
function ping(): void {
  if (!notify) return;
  const now = performance.now();
  if (now - lastPing < pingEveryMs) return;
  lastPing = now;
  if (notify('WATCHDOG=1') !== 0) Atomics.add(ctl, Ctl.ERRORS, 1);
}

const buf = Buffer.alloc(64 * 1024);
const pending: WorkerDecision[] = [];
while (!stopping) {
  ping();
  const rev = pollFds([[fd, POLLIN], [wakeR, POLLIN], ...(mountinfo >= 0 ? ([[mountinfo, POLLPRI]] as Array<[number, number]>) : [])], notify ? Math.min(1000, pingEveryMs) : 1000);
  if (rev[1]) {
    takeRules(true);
    if (stopping) break;
    const drain = Buffer.alloc(64);
    while (readEvents(wakeR, drain) > 0);
  }
  if (mountinfo >= 0 && rev[2]! & (POLLPRI | POLLERR)) {
    try {
      markAll();
    } catch (e) {
      post({ type: 'error', error: `re-marking after a mount change: ${(e as Error).message}` });
    }
  }
  if (!(rev[0]! & POLLIN)) {
    takeRules();
    continue;
  }
  for (;;) {
    const n = readEvents(fd, buf);
    if (n <= 0) {
      if (n < 0) post({ type: 'error', error: `read(fanotify): ${errnoText(-n)}` });
      break;
    }
    const t0 = performance.now();
    const cpu0 = threadCpuUs();
    const deadline = t0 + data.deadlineMs;
    takeRules();
    for (const ev of parseEvents(buf, n)) {
      if (ev.mask & FAN_Q_OVERFLOW || ev.fd < 0) {
        Atomics.add(ctl, Ctl.OVERFLOW, 1);
        continue;
      }
      Atomics.add(ctl, ev.mask & FAN_OPEN_EXEC_PERM ? Ctl.EXECS : Ctl.OPENS, 1);
      let v: Verdict;
      lastStat = null;
      // an exec raises FAN_OPEN_EXEC_PERM, then FAN_OPEN_PERM for the same open: one decision
      const same = !(ev.mask & FAN_OPEN_EXEC_PERM) && lastExec !== null && lastExec.pid === ev.pid && sameFile(ev.fd, lastExec);
      if (same) {
        v = { allow: lastExec!.allow };
        lastExec = null;
      } else if (ev.pid === selfPid) {
        Atomics.add(ctl, Ctl.SELF, 1);
        v = { allow: true };
      } else {
        try {
          v = decide(ev.fd, ev.pid, ev.mask, deadline);
        } catch (e) {
          Atomics.add(ctl, Ctl.ERRORS, 1);
          post({ type: 'error', error: `deciding on pid ${ev.pid}: ${(e as Error).message}` });
          v = { allow: data.failMode === 'open' };
        }
      }
      // a rule matched (rare): describe the process while it waits for the answer (it may exit right after)
      if (v.decision) pending.push({ type: 'decision', ...v.decision, ktimeNs: bootTimeNs().toString(), task: taskOf(ev.pid) });
      // (with an ignore mark placed below the kernel raises no FAN_OPEN_PERM twin)
      if (ev.mask & FAN_OPEN_EXEC_PERM && data.loader && !(v.cache && useIgnores)) {
        const f = ev.pid === selfPid || !lastStat ? fstatFd(ev.fd) : lastStat;
        lastExec = f ? { pid: ev.pid, dev: f.dev, ino: f.ino, allow: v.allow } : null;
      }
      if (v.cache && useIgnores) ignore(ev.fd, v.cache);
      const err = respond(fd, ev.fd, v.allow);
      if (err) post({ type: 'error', error: `answering pid ${ev.pid}: ${errnoText(err)}` });
      closeFd(ev.fd);
      Atomics.add(ctl, v.allow ? Ctl.ALLOWED : Ctl.DENIED, 1);
      const us = Math.round((performance.now() - t0) * 1000);
      Atomics.add(ctl, Ctl.SUM_US, us);
      if (us > Atomics.load(ctl, Ctl.MAX_US)) Atomics.store(ctl, Ctl.MAX_US, us);
    }
    Atomics.add(ctl, Ctl.CPU_US, threadCpuUs() - cpu0);
    // every answer of the batch is written: now tell the agent
    for (const d of pending) post(d);
    pending.length = 0;
  }
}
closeFd(fd); // the kernel allows whatever is still pending
closeFd(wakeR);
closeFd(wakeW);
if (mountinfo >= 0) closeFd(mountinfo);
post({ type: 'stopped' });
