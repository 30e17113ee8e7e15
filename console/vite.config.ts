import adapter from '@sveltejs/adapter-static';
import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// The console is a single-page app: every node serves build/ as static files and answers any
// path without a file extension with index.html (agent/api/console-files.ts).
export default defineConfig({
  plugins: [
    sveltekit({
      adapter: adapter({ fallback: 'index.html', precompress: true }),
      // Absolute asset paths: index.html is also the answer for /node/PEERID.
      paths: { relative: false },
      output: { bundleStrategy: 'single' },
      // The page holds a signing key: only its own scripts may run (SvelteKit hashes its boot
      // script into the policy). It may call any node's API, since the operator can switch nodes.
      csp: {
        mode: 'hash',
        directives: {
          'default-src': ['self'],
          'script-src': ['self'],
          'style-src': ['self', 'unsafe-inline'],
          'img-src': ['self', 'data:'],
          'connect-src': ['self', 'http:', 'https:', 'ws:', 'wss:'],
          'object-src': ['none'],
          'base-uri': ['none'],
          'form-action': ['self'],
        },
      },
    }),
  ],
});
