// The TypeScript sources a node process runs, with their sizes and times, sorted: the build's
// manifest. The launcher compares it with the last build to decide whether to rebuild.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const RUNTIME_DIRS = ['crdt-schema', 'mesh', 'actors', 'agent', 'sim'];

export function runtimeSources(root) {
  const out = [];
  for (const dir of RUNTIME_DIRS) {
    let names = [];
    try {
      names = readdirSync(join(root, dir), { recursive: true });
    } catch {
      continue;
    }
    for (const name of names) {
      const runtimeFile = (name.endsWith('.ts') && !name.endsWith('.d.ts')) || name.endsWith('.mjs');
      if (!runtimeFile || name.includes('node_modules') || name.split('/').includes('bin')) continue;
      const path = join(dir, name);
      const info = statSync(join(root, path));
      out.push({ path, size: info.size, mtimeMs: info.mtimeMs });
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}
