/**
 * `vigil doctor`: what this kernel and machine give vigil, found by trying
 * (loading and attaching real programs) rather than by reading version numbers,
 * and the enforcement level that follows.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { BpfObject } from '../kernel/object.js';
import { Btf, Kind } from '../kernel/btf.js';
import { BpfError } from '../kernel/errors.js';
import { probeMapType } from '../kernel/probes.js';
import { libbpfVersion } from '../kernel/version.js';
import { objectPath, sensorObjectPath } from '../sensors/bpf-sensor.js';
import { ensureMounts, isMounted } from '../kernel/mounts.js';
import { GUARD_HOOKS, HASH_NEEDS, ORIGIN_NEEDS, fanotifyUnavailable, memfdLimit, probeEnforcement } from '../enforcement/index.js';
import { bpfVariant } from '../kernel/variant.js';
import { SENSORS } from '../sensors/index.js';
import { provenanceCheck, tamperCheck } from '../provenance/doctor.js';
import { TAMPER_OBJECT } from '../provenance/tamper.js';

export type CheckStatus = 'ok' | 'missing' | 'error' | 'info';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
}

export type EnforcementLevel = 'enforce' | 'detect-only';

export interface DoctorReport {
  kernel: string;
  libbpf: string;
  checks: Check[];
  /** backend: what `vigil run` (enforcement.backend auto) enforces with here */
  enforcement: { level: EnforcementLevel; backend: 'lsm' | 'fanotify' | 'detect-only'; mechanism: string; reason: string };
}

const SECURITYFS = '/sys/kernel/security';

function readText(p: string): string | null {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Load one program of the probe object alone, attach it, detach. */
export function tryProgram(name: string, attach?: (o: BpfObject) => void): { ok: boolean; error?: BpfError | Error } {
  let obj: BpfObject | null = null;
  try {
    obj = BpfObject.open(objectPath('probe.bpf.o'));
    for (const p of obj.programs()) if (p.name !== name) p.setAutoload(false);
    obj.load();
    if (attach) attach(obj);
    else obj.program(name).attach();
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e as Error };
  } finally {
    obj?.close();
  }
}

function describe(r: { ok: boolean; error?: Error }): string {
  return r.ok ? 'loaded and attached' : describeError(r.error);
}

/** "op: ECODE [prog 'x': the verifier's last line]" */
function describeError(e: Error | undefined): string {
  if (!(e instanceof BpfError)) return String(e?.message);
  return `${e.op}: ${e.code}${e.reason ? ` [${e.reason}]` : ''}`;
}

const LSM_PARAM = 'add bpf to lsm= on the kernel command line (e.g. lsm=lockdown,capability,landlock,yama,apparmor,bpf)';

/**
 * Why a minimal LSM program does not load, told apart by what else fails:
 * trampolines refused (fentry fails the same way), no BPF LSM in the kernel
 * (no bpf_lsm_* hook in its BTF), or a refusal the verifier explains.
 */
export function lsmRefusal(lsm: { ok: boolean; error?: Error }, fentry: { ok: boolean; error?: Error }, btf: Btf | null): { cause: string; hint: string } {
  const code = lsm.error instanceof BpfError ? lsm.error.code : undefined;
  const fcode = fentry.error instanceof BpfError ? fentry.error.code : undefined;
  if (!fentry.ok && code && code === fcode) {
    return {
      cause: `this kernel refuses BPF trampolines (an fentry program fails the same way, ${code}), and LSM programs attach through them`,
      hint: 'BPF LSM needs BPF trampolines, which this kernel (or the hypervisor or sandbox it runs in) refuses; run vigil on a kernel that loads fentry/lsm programs to enforce',
    };
  }
  if (btf && !btf.find('bpf_lsm_bprm_check_security', Kind.FUNC)) {
    return {
      cause: 'this kernel has no BPF LSM (no bpf_lsm_* hooks in its BTF: built without CONFIG_BPF_LSM)',
      hint: 'BPF LSM needs a kernel built with CONFIG_BPF_LSM=y (Linux 5.7+)',
    };
  }
  const reason = lsm.error instanceof BpfError && lsm.error.reason ? lsm.error.reason : undefined;
  return {
    cause: `the kernel refused a minimal LSM program: ${reason ?? describeError(lsm.error)}`,
    hint: lsm.error instanceof BpfError && lsm.error.hint ? lsm.error.hint : 'BPF LSM unavailable',
  };
}

/** vigil watch's BPF LSM guards (bpf/watch/) */
const WATCH_GUARD_OBJECTS = ['shell_guard.bpf.o', 'file_guard.bpf.o', 'net_guard.bpf.o'];

const XATTR_KFUNCS = ['bpf_get_file_xattr', 'bpf_get_dentry_xattr', 'bpf_path_d_path', 'bpf_set_dentry_xattr'];

export async function runDoctor(): Promise<DoctorReport> {
  ensureMounts();
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  const kernel = release();
  add({ id: 'kernel', title: 'Kernel', status: 'info', detail: kernel });

  let lib = 'unknown';
  try {
    lib = libbpfVersion();
    add({ id: 'libbpf', title: 'libbpf', status: 'ok', detail: `libbpf.so.1 ${lib}` });
  } catch (e) {
    add({ id: 'libbpf', title: 'libbpf', status: 'missing', detail: (e as Error).message, hint: 'apt-get install libbpf1' });
  }

  const root = process.getuid?.() === 0;
  add({ id: 'root', title: 'Privileges', status: root ? 'ok' : 'missing', detail: root ? 'running as root' : `uid ${process.getuid?.()}`, ...(root ? {} : { hint: 'run vigil as root' }) });

  const btfPath = '/sys/kernel/btf/vmlinux';
  let btf: Btf | null = null;
  if (existsSync(btfPath)) {
    try {
      btf = Btf.parse(readFileSync(btfPath));
      add({ id: 'btf', title: 'Kernel BTF', status: 'ok', detail: `${btfPath} (${Math.round(statSync(btfPath).size / 1024)} KiB)` });
    } catch (e) {
      add({ id: 'btf', title: 'Kernel BTF', status: 'error', detail: (e as Error).message });
    }
  } else {
    add({ id: 'btf', title: 'Kernel BTF', status: 'missing', detail: `${btfPath} absent`, hint: 'CO-RE needs CONFIG_DEBUG_INFO_BTF=y' });
  }

  const lockdown = readText(`${SECURITYFS}/lockdown`);
  const lockMode = lockdown ? (/\[(\w+)\]/.exec(lockdown)?.[1] ?? lockdown) : 'unknown';
  add({
    id: 'lockdown',
    title: 'Lockdown',
    status: lockMode === 'confidentiality' ? 'error' : 'info',
    detail: lockMode,
    ...(lockMode === 'confidentiality' ? { hint: 'lockdown=confidentiality forbids BPF reads of kernel memory: sensors cannot run' } : {}),
  });

  const lsms = readText(`${SECURITYFS}/lsm`);
  const bpfActive = lsms ? lsms.split(',').includes('bpf') : false;
  add({
    id: 'lsm_list',
    title: 'Active LSMs',
    status: bpfActive ? 'ok' : 'missing',
    detail: lsms ?? 'securityfs not readable',
    ...(bpfActive ? {} : { hint: LSM_PARAM }),
  });

  const lsm = tryProgram('probe_lsm');
  const fentry = tryProgram('probe_fentry');
  const refusal = lsm.ok ? null : lsmRefusal(lsm, fentry, btf);
  add({
    id: 'bpf_lsm',
    title: 'BPF LSM program',
    status: lsm.ok ? 'ok' : 'missing',
    detail: lsm.ok ? `loaded and attached${bpfActive ? '' : ' (but it never runs: bpf is not in the active LSM list)'}` : `${describe(lsm)}: ${refusal!.cause}`,
    ...(refusal ? { hint: bpfActive ? `${refusal.hint} (bpf is in the active LSM list: that is not what is missing)` : `${refusal.hint}; and ${LSM_PARAM}` } : {}),
  });

  add({ id: 'trampoline', title: 'BPF trampolines (fentry)', status: fentry.ok ? 'ok' : 'missing', detail: describe(fentry) });

  const build = bpfVariant();
  add({
    id: 'bpf_build',
    title: 'BPF object build',
    status: 'info',
    detail: build.variant === 'compat'
      ? `compat (x.compat.bpf.o: bounded-loop path walks, 5.10 helpers): ${build.reason}`
      : `default (x.bpf.o: bpf_loop path walks): ${build.reason}`,
  });

  const rb = probeMapType(27);
  add({ id: 'ringbuf', title: 'Ring buffer map', status: rb === 1 ? 'ok' : 'missing', detail: rb === 1 ? 'BPF_MAP_TYPE_RINGBUF supported' : `probe returned ${rb}`, ...(rb === 1 ? {} : { hint: 'needs Linux 5.8+' }) });

  const tracefs = existsSync('/sys/kernel/tracing/events') || existsSync('/sys/kernel/debug/tracing/events');
  const tp = tryProgram('probe_tracepoint');
  add({ id: 'tracepoint', title: 'Tracepoints', status: tp.ok ? 'ok' : 'missing', detail: `${describe(tp)}${tracefs ? '' : ' (tracefs not mounted)'}` });
  const tpb = tryProgram('probe_tp_btf');
  add({ id: 'tp_btf', title: 'BTF tracepoints', status: tpb.ok ? 'ok' : 'missing', detail: describe(tpb) });
  const raw = tryProgram('probe_raw_tp');
  add({ id: 'raw_tp', title: 'Raw tracepoints', status: raw.ok ? 'ok' : 'missing', detail: describe(raw) });

  // the real sensors: each loads and attaches its own objects as `vigil run` would
  const sensorOk: Record<string, boolean> = {};
  for (const sensor of SENSORS) {
    const r = sensor.probe();
    sensorOk[sensor.name] = r.ok;
    add({
      id: `sensor_${sensor.name}`,
      title: `${sensor.name} sensor`,
      status: r.ok ? 'ok' : 'missing',
      detail: r.detail,
      ...(r.ok ? {} : { hint: r.hint ?? `vigil run without this sensor: --sensors ${SENSORS.filter((x) => x !== sensor).map((x) => x.name).join(',')}` }),
    });
  }

  const libc = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib64/libc.so.6'].find((p) => existsSync(p));
  const up = libc
    ? tryProgram('probe_uprobe', (o) => o.program('probe_uprobe').attachUprobe(libc, { funcName: 'getpid' }))
    : { ok: false, error: new Error('libc.so.6 not found') };
  add({ id: 'uprobe', title: 'Uprobes (TLS capture)', status: up.ok ? 'ok' : 'missing', detail: describe(up) });

  if (btf) {
    const have = XATTR_KFUNCS.filter((k) => btf!.find(k, Kind.FUNC));
    add({
      id: 'kfuncs',
      title: 'xattr kfuncs (provenance marks)',
      status: have.length === XATTR_KFUNCS.length ? 'ok' : have.length ? 'info' : 'missing',
      detail: XATTR_KFUNCS.map((k) => `${k}${have.includes(k) ? '' : ' (absent)'}`).join(', '),
    });
  }

  // the exec guard's second backend: a real FAN_CLASS_CONTENT group and an FAN_OPEN_EXEC_PERM mark (docs/enforcement.md)
  const fanWhy = fanotifyUnavailable();
  add({
    id: 'fanotify',
    title: 'fanotify permission events',
    status: fanWhy ? 'missing' : 'ok',
    detail: fanWhy ?? `FAN_CLASS_CONTENT group with FAN_OPEN_EXEC_PERM marks: deny rules can be enforced by a running agent; not covered by this backend: ${memfdLimit()}`,
    ...(fanWhy ? { hint: 'needs root (CAP_SYS_ADMIN), Linux 5.0+ and CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y' } : {}),
  });

  const bpffs = isMounted('/sys/fs/bpf', 'bpf');
  add({ id: 'bpffs', title: 'bpffs (pinned enforcement)', status: bpffs ? 'ok' : 'missing', detail: bpffs ? '/sys/fs/bpf' : 'not mounted', ...(bpffs ? {} : { hint: 'mount -t bpf bpf /sys/fs/bpf' }) });

  // the real thing: load and attach vigil's exec guard in a scratch pin directory
  const guard = await probeEnforcement();
  // the guard's own refusal, told apart from BPF LSM being unusable at all
  const guardErr = guard.error instanceof BpfError ? guard.error : undefined;
  const guardWhy = guard.canLoadLsm
    ? ''
    : !lsm.ok
      ? `${guard.object} not loaded (${describeError(guard.error)}): BPF LSM programs are refused here, see "BPF LSM program"`
      : `vigil's ${guard.object} was refused although a minimal LSM program loads: ${describeError(guard.error)}`;
  add({
    id: 'exec_guard',
    title: 'Exec guard (deny rules)',
    status: guard.canLoadLsm ? 'ok' : 'missing',
    detail: guard.canLoadLsm ? `${guard.object} loads and attaches (path and inode rules) at ${GUARD_HOOKS.join(', ')}` : guardWhy,
    ...(guard.canLoadLsm ? {} : { hint: !lsm.ok ? refusal!.hint : (guardErr?.hint ?? 'see the verifier reason above') }),
  });
  if (guard.canLoadLsm) {
    add({
      id: 'exec_guard_sha256',
      title: 'Exec guard sha256 rules',
      status: guard.hashRules ? 'ok' : 'missing',
      detail: guard.hashRules
        ? 'hashed in the kernel at exec and at executable mmap (bpf_ima_file_hash, cached per inode): copies of denied content are blocked'
        : (guard.hashUnavailable ?? HASH_NEEDS),
      ...(guard.hashRules ? {} : { hint: 'path and inode rules work; a sha256 rule blocks only the file it was added with (its inode), not copies of that content' }),
    });
    add({
      id: 'exec_guard_origin',
      title: 'Provenance marks read in the kernel',
      status: guard.originRules ? 'ok' : 'missing',
      detail: guard.originRules
        ? 'the exec guard reads a file\'s security.bpf.vigil.mark at exec and executable mmap (bpf_get_file_xattr, once per inode until its ctime changes): a marked file missing from the kernel\'s map (a lost store, a full map, a file carried with its attributes) is refused all the same'
        : (guard.originUnavailable ?? ORIGIN_NEEDS),
      ...(guard.originRules ? {} : { hint: 'marks are still checked at exec: the agent puts the stored marks back in the kernel\'s map at start; a mark missing from the store is not enforced until the file is marked again' }),
    });
  }
  // vigil watch's LSM guards (shells, files, network: docs/watch.md), loaded and attached for real;
  // with an empty tree they refuse nothing
  if (lsm.ok) {
    const failed: string[] = [];
    for (const name of WATCH_GUARD_OBJECTS) {
      let obj: BpfObject | null = null;
      try {
        obj = BpfObject.open(sensorObjectPath(name));
        obj.load();
        obj.attachAll();
      } catch (e) {
        failed.push(`${obj?.name ?? name}: ${describeError(e as Error)}`);
      } finally {
        obj?.close();
      }
    }
    add({
      id: 'watch_guards',
      title: 'vigil watch guards (deny shells, files, connections in a tree)',
      status: failed.length ? 'missing' : 'ok',
      detail: failed.length ? `refused: ${failed.join('; ')}` : `${WATCH_GUARD_OBJECTS.map((n) => sensorObjectPath(n).split('/').pop()).join(', ')} load and attach`,
      ...(failed.length ? { hint: 'policies with action: deny cannot be enforced here; action: alert works' } : {}),
    });
  } else {
    add({
      id: 'watch_guards',
      title: 'vigil watch guards (deny shells, files, connections in a tree)',
      status: 'missing',
      detail: 'not loaded: BPF LSM programs are refused here, see "BPF LSM program"',
      hint: 'vigil watch refuses a policy with action: deny here; action: alert works',
    });
  }
  add(
    provenanceCheck({
      lsm: lsm.ok && bpfActive,
      lsmWhy: !bpfActive ? 'bpf is not in the active LSM list' : !lsm.ok ? refusal!.cause : undefined,
      sensors: !!sensorOk.network && !!sensorOk.file,
    }),
  );
  // tamper protection of origin records: loaded (the verifier checks the hooks' arguments), not attached
  let tamperLoad: { ok: boolean; why?: string } | undefined;
  if (lsm.ok && bpfActive) {
    let obj: BpfObject | null = null;
    try {
      obj = BpfObject.open(sensorObjectPath(TAMPER_OBJECT));
      obj.load();
      tamperLoad = { ok: true };
    } catch (e) {
      tamperLoad = { ok: false, why: `${obj?.name ?? TAMPER_OBJECT}: ${describeError(e as Error)}` };
    } finally {
      obj?.close();
    }
  }
  add(tamperCheck({ lsm: lsm.ok && bpfActive, lsmWhy: !bpfActive ? 'bpf is not in the active LSM list' : !lsm.ok ? refusal!.cause : undefined, ...(tamperLoad ? { load: tamperLoad } : {}) }));
  const why = !bpfActive
    ? 'bpf is not in the active LSM list'
    : !lsm.ok
      ? refusal!.cause
      : `vigil's ${guard.object} was refused: ${guardErr?.reason ?? describeError(guard.error)}`;
  const enforcement: DoctorReport['enforcement'] = guard.level === 'enforce'
    ? { level: 'enforce', backend: 'lsm', mechanism: 'BPF LSM (bprm_check_security): vigil deny rules block in the kernel', reason: 'the exec guard loaded and attached' }
    : !fanWhy
      ? {
          level: 'enforce',
          backend: 'fanotify',
          mechanism: 'fanotify (FAN_OPEN_EXEC_PERM answered by the running agent): vigil deny rules block while `vigil run` runs',
          reason: `BPF LSM unavailable (${why}); fanotify permission events work`,
        }
      : {
          level: 'detect-only',
          backend: 'detect-only',
          mechanism: 'none',
          reason: `BPF LSM unavailable (${why}) and fanotify permission events unavailable (${fanWhy}): exec events are recorded and alerted on, nothing is blocked`,
        };
  // what the kernel binding's hints say to do elsewhere ("run `vigil doctor`") is not said in doctor
  return {
    kernel,
    libbpf: lib,
    checks: checks.map((c) => ({ ...c, detail: inDoctor(c.detail), ...(c.hint ? { hint: inDoctor(c.hint) } : {}) })),
    enforcement: { ...enforcement, reason: inDoctor(enforcement.reason) },
  };
}

const MARK: Record<CheckStatus, string> = { ok: '✓', missing: '✗', error: '!', info: '·' };

/** A hint or message as doctor shows it: its references to `vigil doctor` itself left out. */
export function inDoctor(s: string): string {
  return s
    .replace(/[;,]?\s*(run|see) `?vigil doctor`?( for details)?/g, '')
    .replace(/[;,]?\s*`vigil doctor` (shows|tells)[^;)]*/g, '')
    .replace(/\s*\(\)/g, '');
}

export function formatReport(r: DoctorReport): string {
  const w = Math.max(...r.checks.map((c) => c.title.length));
  const lines = r.checks.map((c) => `${MARK[c.status]} ${c.title.padEnd(w)}  ${c.detail}${c.hint && c.status !== 'ok' ? `\n  ${' '.repeat(w)}  → ${c.hint}` : ''}`);
  lines.push('', `Enforcement: ${r.enforcement.level.toUpperCase()} — ${r.enforcement.mechanism}`, `  ${r.enforcement.reason}`);
  return lines.join('\n');
}
