import { defineConfig } from 'vitest/config';

// The crash suite (`npm run test:chaos`): its own servers, which it kills and restarts, so no
// globalSetup; one file at a time, never part of the ordinary `vitest run`.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
