import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/cleanup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files each use their own SQLite file and PostgreSQL schema, so they may run in parallel.
    fileParallelism: true,
  },
});
