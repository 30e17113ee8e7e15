import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineProject } from 'vitest/config';

// The console's component tests: Svelte components and runes modules compiled for the browser,
// run in happy-dom. A project of the root vitest.config.ts, so `npm test` runs them.
export default defineProject({
  plugins: [svelte({ configFile: false })],
  resolve: { conditions: ['browser'] },
  test: {
    name: 'console',
    root: import.meta.dirname,
    include: ['test/**/*.test.ts'],
    environment: 'happy-dom',
  },
});
