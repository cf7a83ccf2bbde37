#!/usr/bin/env node
// @ts-check
/**
 * vigil VM test runner: boots a Debian kernel under qemu (TCG) with BPF LSM active,
 * shares the host root read-only and the work tree read-write over 9p, runs one shell
 * command inside as root and returns its exit code and output.
 *
 * Library:
 *   import { runInVm } from './test/vm/run.mjs';
 *   const r = await runInVm({ kernel: '6.1', command: 'cat /sys/kernel/security/lsm' });
 *   // r.code, r.output, r.serial, r.kernelRelease, r.durationMs, r.timedOut, r.logFile
 *
 * CLI:
 *   node test/vm/run.mjs [--kernel 5.10|6.1|6.12|lts|newest] [--timeout SEC] [--mem 2G]
 *                        [--smp 2] [--cwd DIR] [--ram DIR,...] [--quiet] -- COMMAND [ARGS...]
 *   Exit status: the command's (124 on timeout, 125 if the VM failed to boot or run it).
 *
 * See docs/vm-tests.md.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync,
  writeFileSync, chmodSync, renameSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../..');
export const CACHE = process.env.VIGIL_VM_CACHE ?? join(HERE, '.cache');
export const DEFAULT_KERNELS = ['5.10', '6.1', '6.12', 'lts'];
export const LSM_LIST = 'lockdown,capability,landlock,yama,bpf';
/** Exit code used when the VM itself failed (boot, mounts, no exit marker). */
export const EXIT_HARNESS = 125;
export const EXIT_TIMEOUT = 124;

/**
 * Fetch (or find cached) kernel `alias` via kernels.sh.
 * @param {string} alias 5.10 | 6.1 | 6.12 | lts | newest
 * @returns {{alias: string, release: string, dir: string}}
 */
export function ensureKernel(alias) {
  const out = execFileSync(join(HERE, 'kernels.sh'), [alias], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, VIGIL_VM_CACHE: CACHE },
  });
  const line = out.trim().split('\n').pop() ?? '';
  const [a, release, dir] = line.split(' ');
  if (!a || !release || !dir) throw new Error(`kernels.sh ${alias}: unexpected output: ${out}`);
  return { alias: a, release, dir };
}

/** the base initramfs's folders */
const INITRAMFS_DIRS = ['bin', 'modules', 'proc', 'sys', 'dev', 'newroot', 'ctl'];

/**
 * Build (or reuse) the busybox initramfs for an unpacked kernel directory.
 * Cached by a hash of init.sh, the module list and busybox.
 * @param {string} kdir
 * @returns {string} path of the uncompressed cpio archive
 */
export function ensureInitramfs(kdir) {
  const init = readFileSync(join(HERE, 'init.sh'));
  const order = readFileSync(join(kdir, 'modules', 'order'), 'utf8');
  const busybox = '/bin/busybox';
  const h = createHash('sha256').update(init).update(order).update(readFileSync(busybox)).digest('hex').slice(0, 16);
  const out = join(kdir, `initramfs-${h}.cpio`);
  if (existsSync(out)) return out;
  const stage = mkdtempSync(join(tmpdir(), 'vigil-initramfs-'));
  try {
    for (const d of INITRAMFS_DIRS) mkdirSync(join(stage, d));
    copyFileSync(busybox, join(stage, 'bin', 'busybox'));
    chmodSync(join(stage, 'bin', 'busybox'), 0o755);
    writeFileSync(join(stage, 'init'), init, { mode: 0o755 });
    for (const m of order.split('\n').filter(Boolean)) copyFileSync(join(kdir, 'modules', `${m}.ko`), join(stage, 'modules', `${m}.ko`));
    copyFileSync(join(kdir, 'modules', 'order'), join(stage, 'modules', 'order'));
    execFileSync('/bin/sh', ['-c', `cd "${stage}" && find . | cpio -o -H newc --quiet > "${out}.tmp"`]);
    renameSync(`${out}.tmp`, out);
    for (const f of readdirSync(kdir)) if (f.startsWith('initramfs-') && join(kdir, f) !== out) rmSync(join(kdir, f), { force: true });
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return out;
}

/** @param {string} s */
export function shellQuote(s) {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * What the guest does not need of node_modules (paths under it): the TypeScript compiler
 * (tsc runs on the host), the browser driver (console tests run on the host), and the
 * sources and object files of the native addons (only their .node files are loaded).
 */
const RAM_SKIP = [
  'node_modules/typescript', 'node_modules/playwright-core', 'node_modules/.cache', 'node_modules/.vite',
  'node_modules/.vite-temp', 'node_modules/better-sqlite3/deps', 'node_modules/better-sqlite3/src',
  'node_modules/better-sqlite3/build/Release/obj', 'node_modules/better-sqlite3/build/Release/obj.target',
  'node_modules/better-sqlite3/build/Release/.deps', 'node_modules/better-sqlite3/build/deps',
  'test/vm/.cache',
];
/** top-level names of the base initramfs (its folders and /init), which a RAM folder must not shadow */
const INITRAMFS_NAMES = new Set([...INITRAMFS_DIRS, 'init']);

/**
 * A newc cpio of work-tree folders, appended to the initramfs (the kernel unpacks
 * concatenated archives in order): init bind-mounts each over its 9p copy. Under TCG a
 * file lookup over 9p costs about a millisecond, and starting the vigil CLI makes ~2,000
 * of them (module resolution): 7-11 s a start over 9p, 3-4 s from RAM (measured on 6.1).
 * @param {string} work host work tree
 * @param {string[]} dirs folders relative to it (node_modules, dist, ...)
 * @param {string} out the archive is appended to this file (a copy of the base initramfs)
 */
export function ramArchive(work, dirs, out) {
  for (const d of dirs) {
    if (!/^[A-Za-z0-9_.-]+$/.test(d) || d.startsWith('.') || INITRAMFS_NAMES.has(d)) throw new Error(`ram: ${JSON.stringify(d)} is not a top-level folder name the initramfs can hold`);
    if (!existsSync(join(work, d))) throw new Error(`ram: ${join(work, d)} does not exist`);
  }
  const prune = RAM_SKIP.map((p) => `-path ${shellQuote(p)}`).join(' -o ');
  execFileSync('/bin/sh', ['-c', `cd ${shellQuote(work)} && find ${dirs.map(shellQuote).join(' ')} \\( ${prune} \\) -prune -o -print | cpio -o -H newc --quiet >> ${shellQuote(out)}`]);
}

/**
 * @typedef {object} VmOptions
 * @property {string} [kernel] alias (6.1, 6.12, lts, newest); default 6.1
 * @property {string | string[]} command shell command line, or argv (quoted for you)
 * @property {string} [cwd] working directory inside the guest (default: the work tree)
 * @property {string} [workTree] host directory shared read-write (default: this repo)
 * @property {Record<string, string>} [env] extra environment for the command
 * @property {number} [timeoutMs] whole-VM timeout (default 600 s)
 * @property {string} [memory] qemu -m (default 2G)
 * @property {number} [smp] qemu -smp (default 2)
 * @property {string} [append] extra kernel command line
 * @property {string[]} [qemuArgs] extra qemu arguments (e.g. ['-icount', 'shift=0'] for benchmarks)
 * @property {boolean} [stream] copy the command's output to process.stdout as it comes
 * @property {string} [logDir] where serial logs of failed runs are kept (default .cache/logs)
 * @property {string[]} [ram] work-tree folders the guest reads from RAM instead of 9p (see ramArchive)
 */

/**
 * @typedef {object} VmResult
 * @property {number} code command exit status (124 timeout, 125 harness failure)
 * @property {string} output the command's output (stdout and stderr, in order)
 * @property {string} serial everything the serial console printed (kernel, init, command)
 * @property {string} kernel alias
 * @property {string} kernelRelease
 * @property {number} durationMs
 * @property {boolean} timedOut
 * @property {boolean} harnessFailed the VM did not run the command to completion
 * @property {string | undefined} logFile serial log kept for a failed run
 */

/**
 * Boot a VM, run the command, return its status and output.
 * @param {VmOptions} opts
 * @returns {Promise<VmResult>}
 */
export async function runInVm(opts) {
  const alias = opts.kernel ?? '6.1';
  const k = ensureKernel(alias);
  const baseInitrd = ensureInitramfs(k.dir);
  const work = resolve(opts.workTree ?? REPO);
  const cwd = opts.cwd ?? work;
  const nonce = randomBytes(8).toString('hex');
  const ctl = mkdtempSync(join(tmpdir(), 'vigil-vm-'));
  const cmd = Array.isArray(opts.command) ? opts.command.map(shellQuote).join(' ') : opts.command;
  const envLines = Object.entries(opts.env ?? {}).map(([n, v]) => `export ${n}=${shellQuote(v)}`);
  writeFileSync(join(ctl, 'cmd.sh'), `${envLines.join('\n')}\n${cmd}\n`);
  writeFileSync(join(ctl, 'env'), [
    `VIGIL_VM_WORK=${shellQuote(work)}`, `VIGIL_VM_NONCE=${nonce}`, `VIGIL_VM_CWD=${shellQuote(cwd)}`,
    `VIGIL_VM_RAM=${shellQuote((opts.ram ?? []).join(' '))}`,
  ].join('\n') + '\n');
  let initrd = baseInitrd;
  if (opts.ram?.length) {
    initrd = join(ctl, 'initrd.cpio');
    try {
      copyFileSync(baseInitrd, initrd);
      ramArchive(work, opts.ram, initrd);
    } catch (e) {
      rmSync(ctl, { recursive: true, force: true });
      throw e;
    }
  }

  const append = [
    'console=ttyS0', 'quiet', 'panic=-1', `lsm=${LSM_LIST}`, 'mitigations=off',
    'nokaslr', 'tsc=reliable', opts.append ?? '',
  ].filter(Boolean).join(' ');
  const args = [
    '-machine', 'q35', '-cpu', 'max', '-smp', String(opts.smp ?? 2), '-m', opts.memory ?? '2G',
    '-nographic', '-no-reboot', '-nic', 'none',
    '-kernel', join(k.dir, 'vmlinuz'), '-initrd', initrd, '-append', append,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${work},mount_tag=work,security_model=none,multidevs=remap`,
    '-virtfs', `local,path=${ctl},mount_tag=ctl,security_model=none,multidevs=remap`,
    ...(opts.qemuArgs ?? []),
  ];
  const t0 = Date.now();
  const begin = `VIGIL-VM-BEGIN ${nonce}`;
  const exitRe = new RegExp(`VIGIL-VM-EXIT (?:${nonce}|init) (\\d+)`);
  let serial = '';
  let streamed = 0; // chars of the command output already written to stdout
  let timedOut = false;
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 600_000);
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (/** @type {string} */ d) => {
    // drop CRs and the firmware's terminal control sequences
    serial += d.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '');
    if (opts.stream) {
      const b = serial.indexOf(begin);
      if (b < 0) return;
      const start = b + begin.length + 1;
      let end = serial.length;
      const m = serial.slice(start).search(/VIGIL-VM-EXIT /);
      if (m >= 0) end = start + m;
      else {
        // Hold back a possibly incomplete marker at the end.
        const nl = serial.lastIndexOf('\n');
        end = Math.max(start, nl + 1);
      }
      if (start + streamed < end) {
        process.stdout.write(serial.slice(start + streamed, end));
        streamed = end - start;
      }
    }
  });
  let qemuErr = '';
  child.stderr.on('data', (/** @type {string} */ d) => { qemuErr += d; });
  const status = await new Promise((res) => child.on('close', (c, s) => res(c ?? s)));
  clearTimeout(timer);
  rmSync(ctl, { recursive: true, force: true });

  const durationMs = Date.now() - t0;
  const b = serial.indexOf(begin);
  const em = exitRe.exec(serial);
  let output = '';
  if (b >= 0) output = serial.slice(b + begin.length + 1, em && em.index > b ? em.index : undefined);
  let code;
  let harnessFailed = false;
  if (timedOut) code = EXIT_TIMEOUT;
  else if (em) code = Number(em[1]);
  else { code = EXIT_HARNESS; harnessFailed = true; }
  if (em && em[0].includes(' init ')) harnessFailed = true;
  if (qemuErr.trim()) serial += `\n[qemu stderr, exit ${status}]\n${qemuErr}`;

  let logFile;
  if (code !== 0) {
    const dir = opts.logDir ?? join(CACHE, 'logs');
    mkdirSync(dir, { recursive: true });
    logFile = join(dir, `${k.release}-${new Date(t0).toISOString().replace(/[:.]/g, '-')}.log`);
    writeFileSync(logFile, serial);
  }
  return { code, output, serial, kernel: alias, kernelRelease: k.release, durationMs, timedOut, harnessFailed, logFile };
}

/**
 * Human-readable failure report: what failed, then the tail of the serial log.
 * @param {VmResult} r
 * @param {number} [lines]
 */
export function failureReport(r, lines = 60) {
  const what = r.timedOut ? `timed out after ${(r.durationMs / 1000).toFixed(0)} s`
    : r.harnessFailed ? 'the VM did not run the command (boot or init failure)'
      : `command exited with status ${r.code}`;
  // A command that ran and failed has already shown its output: show the rest of the
  // console (kernel messages: oopses, verifier warnings, init errors) instead.
  const text = r.harnessFailed || r.timedOut ? r.serial : r.serial.replace(r.output, '[... command output ...]\n');
  const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
  return `vigil-vm: kernel ${r.kernel} (${r.kernelRelease}): ${what}\n` +
    `---- serial console (last ${lines} lines) ----\n${tail}\n` +
    `---- full serial log: ${r.logFile ?? '(not kept)'} ----\n`;
}

async function cli() {
  const argv = process.argv.slice(2);
  /** @type {VmOptions} */
  const opts = { command: '', stream: true };
  let quiet = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { const v = argv[++i]; if (v === undefined) throw new Error(`${a} needs a value`); return v; };
    if (a === '--') { i++; break; }
    else if (a === '--kernel' || a === '-k') opts.kernel = val();
    else if (a === '--timeout') opts.timeoutMs = Number(val()) * 1000;
    else if (a === '--mem') opts.memory = val();
    else if (a === '--smp') opts.smp = Number(val());
    else if (a === '--ram') opts.ram = val().split(',').filter(Boolean);
    else if (a === '--cwd') opts.cwd = val();
    else if (a === '--append') opts.append = val();
    else if (a === '--quiet' || a === '-q') quiet = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node test/vm/run.mjs [--kernel 5.10|6.1|6.12|lts|newest] [--timeout SEC] [--mem 2G] [--smp N] [--cwd DIR] [--append ARGS] [--ram DIR,...] [--quiet] -- COMMAND [ARGS...]\n');
      return 0;
    } else break;
  }
  const rest = argv.slice(i);
  if (rest.length === 0) throw new Error('no command given (usage: run.mjs [options] -- COMMAND ...)');
  opts.command = rest.length === 1 ? /** @type {string} */ (rest[0]) : rest;
  const r = await runInVm(opts);
  if (!quiet) process.stderr.write(`vigil-vm: ${r.kernel} (${r.kernelRelease}) exit ${r.code} in ${(r.durationMs / 1000).toFixed(1)} s\n`);
  if (r.code !== 0) process.stderr.write(failureReport(r));
  return r.code;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli().then((c) => process.exit(c), (e) => { process.stderr.write(`vigil-vm: ${e?.stack ?? e}\n`); process.exit(EXIT_HARNESS); });
}
