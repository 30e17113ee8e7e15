#!/usr/bin/env node
// Launcher. powernode needs Node >= 24; npm puts the project's Node 24 (the npm "node" package)
// first on PATH, and when started with an older Node this re-runs under that one. It runs the
// type-stripped build in .build/ (rebuilt here when a source changed), so a node process does not
// carry Node's type stripper, and it starts long-running nodes with a small young generation:
// both keep an idle node's memory down (docs/BENCHMARKS.md).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = realpathSync(fileURLToPath(import.meta.url));
const root = join(dirname(self), '..', '..');
const args = process.argv.slice(2);

if (Number(process.versions.node.split('.')[0]) < 24) {
  const node24 = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node24)) {
    process.stderr.write(`powernode needs Node 24 or later (this is ${process.version}): run "npm ci" in the project first\n`);
    process.exit(1);
  }
  const result = spawnSync(node24, [self, ...args], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

// V8 settings for node processes: a 1 MiB young generation keeps an idle node in a 10-node fleet
// near 142 MB instead of 210 MB (docs/BENCHMARKS.md; --optimize-for-size saves ~8 MB more but
// slows a bulk join by a second). POWERNODE_NODE_FLAGS replaces them ('' for V8's defaults).
const NODE_FLAGS = (process.env['POWERNODE_NODE_FLAGS'] ?? '--max-semi-space-size=1').split(' ').filter(Boolean);
const longRunning = args[0] === 'up' || (args[0] === 'node' && args[1] === 'start');
// glibc malloc settings, unless the environment sets them: one arena for all threads instead of
// one per thread, and free memory at the top of the heap returned to the system beyond 128 KiB
// (glibc otherwise raises that threshold up to 64 MiB after large frees, so an idle node keeps
// what its last burst of work allocated). ~7 MB less per idle node (docs/BENCHMARKS.md).
const MALLOC_ENV = { MALLOC_ARENA_MAX: '1', MALLOC_TRIM_THRESHOLD_: '131072' };
const reexec = !NODE_FLAGS.every((flag) => process.execArgv.includes(flag)) || Object.keys(MALLOC_ENV).some((name) => process.env[name] === undefined);
if (longRunning && reexec && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, ...NODE_FLAGS, self, ...args], { ...MALLOC_ENV, ...process.env });
}

const { runtimeSources } = await import(pathToFileURL(join(root, 'scripts', 'runtime-sources.mjs')).href);
const manifest = join(root, '.build', 'manifest.json');
const current = JSON.stringify(runtimeSources(root));
const built = existsSync(manifest) ? readFileSync(manifest, 'utf8').trim() : '';
if (built !== current) {
  const build = spawnSync(process.execPath, ['--no-warnings', join(root, 'scripts', 'build-runtime.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) {
    process.stderr.write('powernode: building the runtime failed\n');
    process.exit(1);
  }
}
const { main } = await import(pathToFileURL(join(root, '.build', 'agent', 'cli.js')).href);
process.exitCode = await main(args);
