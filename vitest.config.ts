import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Tests sit beside the code they test, and test/ holds the end-to-end ones.
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '.ctem/**', 'test-results/**'],
    globalSetup: ['test/globalSetup.ts'],
    // Real servers (PostgreSQL, Temporal, sshd) are shared per run; files still run in parallel.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
