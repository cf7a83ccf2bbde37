/**
 * Which build of the BPF objects this kernel takes. bpf/Makefile builds every
 * object twice (see bpf/include/vigil_bpf.h):
 *
 *   <name>.bpf.o         default: path walks with bpf_loop (5.17+), bpf_get_current_task_btf (5.11+)
 *   <name>.compat.bpf.o  compat: bounded loops in a global function, only 5.10 helpers
 *
 * Chosen once per process by asking the kernel (libbpf_probe_bpf_helper loads a
 * tiny program that calls the helper), not by version number, so backports count.
 * Like Tetragon's per-kernel objects (bpf_execve_event.o / _v511.o / _v61.o,
 * picked at load time by probing), with two classes instead of four.
 *
 * VIGIL_BPF_VARIANT=compat|default forces a build (tests run the compat build on
 * new kernels this way); unset or `auto` probes.
 */
import { libbpf } from './ffi.js';
import { errnoName } from './errors.js';

export type BpfVariant = 'default' | 'compat';

export interface VariantChoice {
  variant: BpfVariant;
  /** how it was chosen, for doctor and logs */
  reason: string;
  forced: boolean;
}

// uapi enum bpf_prog_type / enum bpf_func_id
const BPF_PROG_TYPE_TRACEPOINT = 5;
const BPF_FUNC_get_current_task_btf = 158;
const BPF_FUNC_loop = 181;

/**
 * Helpers the default build calls from tracing programs, and the kernel they came in.
 * Probed with a tracepoint program: libbpf 1.1 cannot probe helpers for
 * BPF_PROG_TYPE_TRACING or LSM (it returns -EOPNOTSUPP), and both helpers are
 * offered to every tracing program type alike.
 */
const DEFAULT_NEEDS: Array<{ name: string; id: number; since: string }> = [
  { name: 'bpf_loop', id: BPF_FUNC_loop, since: '5.17' },
  { name: 'bpf_get_current_task_btf', id: BPF_FUNC_get_current_task_btf, since: '5.11' },
];

/** libbpf_probe_bpf_helper: 1 supported, 0 not, <0 the probe itself failed (-errno). */
export function probeHelper(progType: number, helperId: number): number {
  return libbpf().libbpf_probe_bpf_helper(progType, helperId, null) as number;
}

let cached: VariantChoice | undefined;

/** The build to load on this kernel (probed once, then cached). */
export function bpfVariant(): VariantChoice {
  if (cached) return cached;
  const env = process.env.VIGIL_BPF_VARIANT;
  if (env === 'compat' || env === 'default') {
    cached = { variant: env, reason: `forced by VIGIL_BPF_VARIANT=${env}`, forced: true };
    return cached;
  }
  if (env && env !== 'auto') {
    throw new Error(`VIGIL_BPF_VARIANT=${env}: expected compat, default or auto`);
  }
  const missing: string[] = [];
  for (const h of DEFAULT_NEEDS) {
    const r = probeHelper(BPF_PROG_TYPE_TRACEPOINT, h.id);
    if (r === 0) missing.push(`${h.name} (Linux ${h.since}+)`);
    else if (r < 0) {
      // the probe could not run (no privileges, no BPF): loading will fail and say why;
      // the default build's error is the more useful one
      cached = { variant: 'default', reason: `helper probe failed (${errnoName(-r)}): assuming the default build`, forced: false };
      return cached;
    }
  }
  cached = missing.length
    ? { variant: 'compat', reason: `this kernel has no ${missing.join(', no ')}: bounded-loop build`, forced: false }
    : { variant: 'default', reason: 'bpf_loop present', forced: false };
  return cached;
}

/** Forget the cached choice (tests that change VIGIL_BPF_VARIANT). */
export function resetBpfVariant(): void {
  cached = undefined;
}

/** x.bpf.o -> x.compat.bpf.o for the compat build; other names unchanged. */
export function variantObjectPath(path: string, variant: BpfVariant = bpfVariant().variant): string {
  if (variant === 'default' || !path.endsWith('.bpf.o') || path.endsWith('.compat.bpf.o')) return path;
  return `${path.slice(0, -'.bpf.o'.length)}.compat.bpf.o`;
}
