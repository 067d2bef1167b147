import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Files run in parallel, each with its own database and Redis key prefix (test/helpers/env.ts).
    pool: 'forks',
  },
});
