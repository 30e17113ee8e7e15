#!/usr/bin/env node
// Launcher: powernode needs Node >= 24 (it runs its TypeScript sources directly). npm puts the
// project's Node 24 (the npm "node" package) first on PATH; when started some other way with an
// older Node, re-run under that Node.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(realpathSync(fileURLToPath(import.meta.url)));
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const node24 = join(here, '..', '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node24)) {
    process.stderr.write(`powernode needs Node 24 or later (this is ${process.version}): run "npm ci" in the project first\n`);
    process.exit(1);
  }
  const result = spawnSync(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
const { main } = await import(join(here, '..', 'cli.ts'));
process.exitCode = await main(process.argv.slice(2));
