/**
 * File provenance on this kernel (no BPF LSM here: monitor mode from
 * tracepoints): the scenario in scenario.ts.
 */
import { describe } from 'vitest';
import { provenanceScenario } from './scenario.js';

describe('in-process agent', () => provenanceScenario('file provenance (real BPF, monitor mode on this kernel)'));
