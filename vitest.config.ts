import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      // The node's own tests, unit to real-process integration (and the console's end-to-end test).
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'] } },
      // The console's component tests (Svelte, happy-dom): their own settings live beside them.
      'console/vitest.config.ts',
    ],
  },
});
