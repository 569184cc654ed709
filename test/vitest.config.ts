import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real Chromium, HAProxy and s3rver per file. Three files at a time on a 2-core machine: with two, the cores were
    // busy 61 % of the run (565 s of CPU in 461 s), the rest went to deadlines, drains and timers the files wait out.
    pool: 'forks',
    maxWorkers: 3,
  },
});
