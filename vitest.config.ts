import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // GPU test files run in child processes: a native crash in Dawn fails one file, not the run
    // (platform notes). Two forks: this machine has 2 cores and lavapipe uses them all anyway.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
