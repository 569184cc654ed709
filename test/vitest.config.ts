import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real Chromium, HAProxy and s3rver per file: two files at a time suits a 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
