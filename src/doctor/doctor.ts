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
import { fanotifyPermissionEvents, probeMapType } from '../kernel/probes.js';
import { libbpfVersion } from '../kernel/version.js';
import { objectPath } from '../sensors/bpf-sensor.js';
import { ensureMounts, isMounted } from '../kernel/mounts.js';
import { probeEnforcement } from '../enforcement/index.js';
import { SENSORS } from '../sensors/index.js';

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
  enforcement: { level: EnforcementLevel; mechanism: string; reason: string };
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
  return r.ok ? 'loaded and attached' : r.error instanceof BpfError ? `${r.error.op}: ${r.error.code}` : String(r.error?.message);
}

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
    ...(bpfActive ? {} : { hint: 'add bpf to lsm= on the kernel command line (e.g. lsm=lockdown,capability,landlock,yama,apparmor,bpf)' }),
  });

  const lsm = tryProgram('probe_lsm');
  add({
    id: 'bpf_lsm',
    title: 'BPF LSM program',
    status: lsm.ok ? 'ok' : 'missing',
    detail: describe(lsm),
    ...(lsm.ok ? {} : { hint: lsm.error instanceof BpfError && lsm.error.hint ? lsm.error.hint : 'BPF LSM unavailable' }),
  });

  const fentry = tryProgram('probe_fentry');
  add({ id: 'trampoline', title: 'BPF trampolines (fentry)', status: fentry.ok ? 'ok' : 'missing', detail: describe(fentry) });

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
  for (const sensor of SENSORS) {
    const r = sensor.probe();
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

  const fan = fanotifyPermissionEvents();
  add({ id: 'fanotify', title: 'fanotify permission events', status: fan.ok ? 'ok' : 'missing', detail: fan.detail });

  const bpffs = isMounted('/sys/fs/bpf', 'bpf');
  add({ id: 'bpffs', title: 'bpffs (pinned enforcement)', status: bpffs ? 'ok' : 'missing', detail: bpffs ? '/sys/fs/bpf' : 'not mounted', ...(bpffs ? {} : { hint: 'mount -t bpf bpf /sys/fs/bpf' }) });

  // the real thing: load and attach vigil's exec guard in a scratch pin directory
  const guard = await probeEnforcement();
  add({
    id: 'exec_guard',
    title: 'Exec guard (deny rules)',
    status: guard.canLoadLsm ? 'ok' : 'missing',
    detail: guard.canLoadLsm ? `loads and attaches; sha256 rules ${guard.hashRules ? 'hashed in the kernel (IMA)' : 'bound to the inode they were added with'}` : (guard.reason ?? 'does not load'),
  });
  const enforcement: DoctorReport['enforcement'] = guard.level === 'enforce'
    ? { level: 'enforce', mechanism: 'BPF LSM (bprm_check_security): vigil deny rules block in the kernel', reason: 'the exec guard loaded and attached' }
    : {
        level: 'detect-only',
        mechanism: 'none',
        reason: `BPF LSM unavailable (${bpfActive ? (lsm.ok ? guard.reason : 'bpf is in the LSM list but this kernel refuses LSM programs (no BPF trampolines)') : 'bpf is not in the active LSM list'}): exec events are recorded and alerted on, nothing is blocked`,
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
