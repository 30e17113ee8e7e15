// Builds the console (console/ → console/build, SvelteKit with adapter-static) unless its sources
// are unchanged since the last build. Run by `npm ci` (prepare) and by the console's end-to-end
// test set-up; `--force` builds whatever the manifest says.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const consoleDir = join(root, 'console');
const manifestFile = join(root, 'node_modules', '.cache', 'powernode-console-build.json');
const INPUTS = ['src', 'static', 'vite.config.ts', 'package.json'];

/** Every input file with its size and time, sorted, plus the installed toolchain's versions. */
function sourcesManifest() {
  const files = [];
  for (const input of INPUTS) {
    const path = join(consoleDir, input);
    if (!existsSync(path)) continue;
    const names = statSync(path).isDirectory() ? readdirSync(path, { recursive: true }).map((name) => join(input, name)) : [input];
    for (const name of names) {
      const info = statSync(join(consoleDir, name));
      if (info.isFile()) files.push([name, info.size, info.mtimeMs]);
    }
  }
  files.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const versions = ['@sveltejs/kit', 'svelte', 'vite', '@sveltejs/adapter-static'].map((name) => {
    try {
      return `${name}@${JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version}`;
    } catch {
      return `${name}@missing`;
    }
  });
  return JSON.stringify({ files, versions });
}

/** Builds when needed; returns true when it built. Throws with vite's output when the build fails. */
export function buildConsole({ force = false } = {}) {
  const current = sourcesManifest();
  const built = existsSync(manifestFile) ? readFileSync(manifestFile, 'utf8') : '';
  if (!force && built === current && existsSync(join(consoleDir, 'build', 'index.html'))) return false;
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  // SvelteKit 3 needs Node >= 22.17: outside npm scripts the system's Node may be older.
  const node24 = join(root, 'node_modules', 'node', 'bin', 'node');
  const node = Number(process.versions.node.split('.')[0]) < 24 && existsSync(node24) ? node24 : process.execPath;
  // NODE_ENV=production whatever the caller's (vitest sets "test", which makes Vite build Svelte's
  // development runtime: a fifth more JavaScript and dev-only checks).
  const env = { ...process.env, NODE_ENV: 'production' };
  const result = spawnSync(node, [vite, 'build', '--logLevel', 'warn'], { cwd: consoleDir, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`building the console failed:\n${result.stdout}${result.stderr}`);
  mkdirSync(dirname(manifestFile), { recursive: true });
  writeFileSync(manifestFile, current);
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const built = buildConsole({ force: process.argv.includes('--force') });
    process.stderr.write(built ? 'console built into console/build\n' : 'console/build is up to date\n');
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
