/**
 * File provenance on this kernel (no BPF LSM here: monitor mode from
 * tracepoints): the scenario in scenario.ts.
 */
import { provenanceScenario } from './scenario.js';

provenanceScenario('file provenance (real BPF, monitor mode on this kernel)');
