import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere without privileges; `kernel` loads real BPF
// programs on this machine (root, tracepoints) and runs its files one at a time.
export default defineConfig({
  test: {
    // each run's temporary files in a directory of its own, removed when it ends
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          // *.vm.test.ts run inside a VM: node test/vm/suite.mjs (docs/vm-tests.md)
          exclude: ['test/**/*.kernel.test.ts', 'test/**/*.vm.test.ts', 'test/vm/**'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/**/*.kernel.test.ts'],
          exclude: ['test/vm/**'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
