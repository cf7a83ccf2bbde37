import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Privileged tests that run inside the test VM (test/vm/suite.mjs boots it),
// one file at a time (they share the kernel's LSM hooks).
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  cacheDir: '/tmp/vigil-vitest-cache',
  test: {
    name: 'vm',
    // *.vm.test.ts need BPF LSM; the sensor and binding kernel tests run here too,
    // so the same objects are proven on every kernel of the suite (CO-RE portability)
    include: ['test/**/*.vm.test.ts', 'test/sensors/*.kernel.test.ts', 'test/kernel/*.kernel.test.ts'],
    fileParallelism: false,
    // one worker loads the shared modules once for all files (under TCG a fresh module graph per
    // file cost 100-160 s of each kernel's run); every file still stops what it started
    isolate: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
