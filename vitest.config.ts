import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      // The node's own tests, unit to real-process integration.
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/e2e/**'] } },
      // The console's component tests (Svelte, happy-dom): their own settings live beside them.
      'console/vitest.config.ts',
      // The console in Chromium against real node processes: run after the others, alone, so a
      // browser and its fleet do not compete for the two cores with the timing-sensitive
      // integration tests (or they with it).
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
