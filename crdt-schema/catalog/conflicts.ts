import { type Catalog, effectiveFileSpec } from './catalog.ts';
import { appendTo, compareText } from './order.ts';
import type { Module } from './module.ts';
import { overlapPath } from './spec-lines.ts';
import type { CompositionProblem } from './problems.ts';

/**
 * The original's three conflict kinds among the modules of a closure (`members`, sorted):
 * - a `conflicts` entry naming a member, or a capability a member other than the declarer
 *   provides (error, one per declaration);
 * - more than one instance-variety module in a category (error);
 * - a member's protectedSpec overlapping another member's fileSpec by prefix (warning: the
 *   build leaves those paths out of the other's blob, but the operator should know).
 */
export function findConflicts(catalog: Catalog, members: readonly string[]): CompositionProblem[] {
  const modules = members.map((name) => catalog.modules.get(name)!);
  return [...declaredConflicts(catalog, modules), ...instanceCollisions(modules), ...protectedOverlaps(catalog, modules)];
}

function declaredConflicts(catalog: Catalog, modules: readonly Module[]): CompositionProblem[] {
  const inClosure = new Set(modules.map((module) => module.name));
  const problems: CompositionProblem[] = [];
  for (const module of modules) {
    for (const declared of module.manifest.dependencies.conflicts) {
      const named = catalog.modules.has(declared) ? [declared] : (catalog.providers.get(declared) ?? []);
      for (const other of named) {
        if (other === module.name || !inClosure.has(other)) continue;
        const via = other === declared ? '' : ` (it provides ${declared})`;
        const message = `${module.name} conflicts with ${other}${via}, and both are in the closure`;
        problems.push({ kind: 'module-conflict', severity: 'error', module: module.name, conflictsWith: other, declared, message });
      }
    }
  }
  return problems;
}

function instanceCollisions(modules: readonly Module[]): CompositionProblem[] {
  const byCategory = new Map<string, string[]>();
  for (const module of modules) {
    if (module.variety !== 'instance') continue;
    appendTo(byCategory, module.category.name, module.name);
  }
  const problems: CompositionProblem[] = [];
  for (const [category, names] of byCategory) {
    if (names.length < 2) continue;
    const message = `category ${category} holds ${names.length} instance-variety modules (${names.join(', ')}); only one instance module may ship per category`;
    problems.push({ kind: 'instance-collision', severity: 'error', category, modules: names, message });
  }
  return problems;
}

function protectedOverlaps(catalog: Catalog, modules: readonly Module[]): CompositionProblem[] {
  const index = new FileSpecIndex(modules.map((module) => ({ module: module.name, lines: effectiveFileSpec(catalog, module) })));
  const problems: CompositionProblem[] = [];
  for (const claimer of modules) {
    const claimsByOther = new Map<string, string[]>();
    for (const claim of claimer.protectedSpec) {
      for (const other of index.overlapping(claim)) {
        if (other !== claimer.name) appendTo(claimsByOther, other, claim);
      }
    }
    for (const [other, paths] of [...claimsByOther].sort(([a], [b]) => compareText(a, b))) {
      const message = `${other}'s fileSpec covers paths ${claimer.name}'s protectedSpec claims (${paths.join(', ')}); the build leaves them out of ${other}'s blob and only ${claimer.name} ships them`;
      problems.push({ kind: 'protected-overlap', severity: 'warning', claimer: claimer.name, other, paths, message });
    }
  }
  return problems;
}

/**
 * Which modules' fileSpec lines overlap a path, by the original's prefix rule, without comparing
 * every claim with every line: lines sorted by their overlap path, so a claim finds the lines at
 * or under it by binary search and the lines above it by looking up each of its ancestors.
 */
class FileSpecIndex {
  private readonly sorted: { readonly path: string; readonly module: string }[];
  private readonly byPath = new Map<string, string[]>();

  constructor(specs: readonly { readonly module: string; readonly lines: readonly string[] }[]) {
    this.sorted = specs.flatMap(({ module, lines }) => lines.map((line) => ({ path: overlapPath(line), module })));
    this.sorted.sort((a, b) => compareText(a.path, b.path) || compareText(a.module, b.module));
    for (const { path, module } of this.sorted) appendTo(this.byPath, path, module);
  }

  /** The modules with a fileSpec line overlapping `claim`, each once. */
  overlapping(claim: string): Set<string> {
    const path = overlapPath(claim);
    const found = new Set<string>();
    for (let at = this.firstAtOrAfter(path); at < this.sorted.length && this.sorted[at]!.path.startsWith(path); at++) {
      const entry = this.sorted[at]!;
      if (entry.path.length === path.length || entry.path[path.length] === '/') found.add(entry.module);
    }
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      for (const module of this.byPath.get(path.slice(0, slash)) ?? []) found.add(module);
    }
    return found;
  }

  private firstAtOrAfter(path: string): number {
    let low = 0;
    let high = this.sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.sorted[middle]!.path < path) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
