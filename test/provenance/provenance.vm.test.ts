/**
 * File provenance in the VM suite (docs/vm-tests.md): the same scenario as on
 * the host (scenario.ts) on 5.10 (compat build), 6.1, 6.12 and 6.18, where BPF
 * LSM is active: marking and propagation from tracepoints, and doctor saying
 * that marked files are still not blocked (no exec policy yet).
 */
import { describe } from 'vitest';
import { provenanceScenario } from './scenario.js';

if (process.env.VIGIL_IN_VM === '1') provenanceScenario(`file provenance in the VM (${process.env.VIGIL_VM_KERNEL ?? 'kernel'})`);
else describe.skip('file provenance in the VM (VIGIL_IN_VM unset: host run skipped)', () => {});
