// Strips TypeScript types from the runtime sources into .build/, so a node process does not
// load Node's type stripper (a WASM module that stays resident, ~17 MB) at run time.
// Run by `npm ci` (prepare) and by the powernode launcher whenever a source is newer.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtimeSources } from './runtime-sources.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, '.build');
const staging = `${target}.tmp-${process.pid}`;

// Relative imports of .ts files become .js; bare package imports are left alone.
const relativeTs = /(['"])(\.{1,2}\/[^'"\n]+)\.ts\1/g;

rmSync(staging, { recursive: true, force: true });
const sources = runtimeSources(root);
for (const { path } of sources) {
  // .mjs files (worker scripts) are plain JavaScript already: copied as they are.
  const source = readFileSync(join(root, path), 'utf8');
  const code = path.endsWith('.mjs') ? source : stripTypeScriptTypes(source, { mode: 'strip' }).replace(relativeTs, '$1$2.js$1');
  const out = join(staging, path.replace(/\.ts$/, '.js'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, code);
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(staging, 'package.json'), `${JSON.stringify({ type: 'module', version, private: true })}\n`);
writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(sources)}\n`);

const old = `${target}.old-${process.pid}`;
try {
  renameSync(target, old);
} catch {
  // No previous build.
}
try {
  renameSync(staging, target);
} catch {
  // Another process finished a build at the same moment; keep theirs.
  rmSync(staging, { recursive: true, force: true });
}
rmSync(old, { recursive: true, force: true });
