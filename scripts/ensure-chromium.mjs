// Makes sure Debian's Chromium is installed for the console's end-to-end tests and benchmark,
// installing it with apt-get when it is missing (CI and developer machines run as root).
// Prints the browser's path. Playwright's own browser download cannot work here: browsers come
// from the system's packages. Usage: node scripts/ensure-chromium.mjs
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CHROMIUM_PATH = process.env['POWERNODE_CHROMIUM'] ?? '/usr/bin/chromium';

/** The flags the project's browser tests start Chromium with (headless, quiet on a closed network). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function aptGet(args) {
  const result = spawnSync('apt-get', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

/** Returns the path of Chromium, installing it first if needed; throws saying what to do. */
export function ensureChromium() {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (process.getuid?.() !== 0) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}: run "sudo apt-get install --no-install-recommends chromium" (or set POWERNODE_CHROMIUM)`);
  }
  const install = ['install', '-y', '-q', '--no-install-recommends', 'chromium'];
  let attempt = aptGet(install);
  if (!attempt.ok) {
    // Package lists may be missing or stale on a fresh machine.
    aptGet(['update', '-q']);
    attempt = aptGet(install);
  }
  if (!attempt.ok || !existsSync(CHROMIUM_PATH)) throw new Error(`installing Chromium with apt-get failed:\n${attempt.output.slice(-2_000)}`);
  return CHROMIUM_PATH;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.stdout.write(`${ensureChromium()}\n`);
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
