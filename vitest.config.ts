import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/**/*.test.ts',
      'activities/**/*.test.ts',
      'domain/**/*.test.ts',
      'bots/**/*.test.ts',
      'workflows/**/*.test.ts',
      'cli/**/*.test.ts',
      'db/**/*.test.ts',
      'worker/**/*.test.ts',
    ],
    globalSetup: ['test/globalSetup.ts'],
    // Real servers (PostgreSQL, Temporal, sshd) are shared per run; files still run in parallel.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
