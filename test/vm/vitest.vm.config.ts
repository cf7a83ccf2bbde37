import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Privileged tests that run inside the test VM (test/vm/suite.mjs boots it):
// files named *.vm.test.ts, one at a time (they share the kernel's LSM hooks).
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  cacheDir: '/tmp/vigil-vitest-cache',
  test: {
    name: 'vm',
    include: ['test/**/*.vm.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
