import type { Catalog } from './catalog.ts';
import { compareText } from './order.ts';
import type { Module } from './module.ts';
import type { CompositionProblem } from './problems.ts';

/** A module chosen directly (enabled in a template), with the recommends it follows. */
export interface ClosureRoot {
  readonly name: string;
  /** The recommends entries this root follows (its template module's recommends override applied). */
  readonly recommends: ReadonlySet<string>;
}

/** A dependency followed into the closure. */
export interface DependencyEdge {
  readonly from: string;
  readonly to: string;
  readonly type: 'requires' | 'recommends';
}

/** The modules a set of roots brings in, and why. */
export interface Closure {
  /** Every module in the closure, sorted by name. */
  readonly members: readonly string[];
  /** Sorted by from, to, type. */
  readonly edges: readonly DependencyEdge[];
  /** Missing or ambiguous dependencies (errors) and recommendations (warnings), unsorted. */
  readonly problems: readonly CompositionProblem[];
}

type Resolution = { readonly names: readonly string[] } | { readonly missing: true } | { readonly providers: readonly string[] };

/**
 * The dependency closure of `roots`: every module reachable over `requires` entries, and over
 * `recommends` entries a module follows — a root those its override keeps, a module pulled in
 * transitively all of its own. An entry names a module, or a capability: a capability is met by
 * the roots that provide it, else by its one provider in the catalog; none is a missing
 * dependency, several an ambiguous one (name one in the template). Capabilities resolve against
 * the roots and the catalog only, never against what the walk has reached so far, so the closure
 * does not depend on the order anything is visited in. Roots must be in the catalog.
 */
export function resolveClosure(catalog: Catalog, roots: readonly ClosureRoot[]): Closure {
  const rootsByName = new Map(roots.map((root) => [root.name, root]));
  const members = new Set<string>();
  const edges: DependencyEdge[] = [];
  const problems: CompositionProblem[] = [];
  const queue = [...rootsByName.keys()].sort(compareText);
  for (const name of queue) members.add(name);
  // Each module is queued once (members guards it), so the walk is bounded by the catalog size.
  for (let index = 0; index < queue.length; index++) {
    const module = catalog.modules.get(queue[index]!)!;
    const follows = rootsByName.get(module.name)?.recommends;
    const wanted = [
      ...module.manifest.dependencies.requires.map((entry) => ({ entry, type: 'requires' as const })),
      ...module.manifest.dependencies.recommends.filter((entry) => follows === undefined || follows.has(entry)).map((entry) => ({ entry, type: 'recommends' as const })),
    ];
    for (const { entry, type } of wanted) {
      const resolution = resolveEntry(catalog, rootsByName, entry);
      if (!('names' in resolution)) {
        problems.push(unresolved(module, entry, type, resolution));
        continue;
      }
      for (const to of resolution.names) {
        edges.push({ from: module.name, to, type });
        if (!members.has(to)) {
          members.add(to);
          queue.push(to);
        }
      }
    }
  }
  edges.sort((a, b) => compareText(a.from, b.from) || compareText(a.to, b.to) || compareText(a.type, b.type));
  return { members: [...members].sort(compareText), edges, problems };
}

function resolveEntry(catalog: Catalog, roots: ReadonlyMap<string, ClosureRoot>, entry: string): Resolution {
  if (catalog.modules.has(entry)) return { names: [entry] };
  const providers = catalog.providers.get(entry) ?? [];
  const chosen = providers.filter((name) => roots.has(name));
  if (chosen.length > 0) return { names: chosen };
  if (providers.length === 1) return { names: providers };
  if (providers.length === 0) return { missing: true };
  return { providers };
}

function unresolved(module: Module, entry: string, type: DependencyEdge['type'], resolution: Resolution): CompositionProblem {
  const providers = 'providers' in resolution ? resolution.providers : [];
  const what = providers.length > 0 ? `${JSON.stringify(entry)}, which several modules provide (${providers.join(', ')}); name one of them in the template` : `${JSON.stringify(entry)}, which no module in the catalog is or provides`;
  if (type === 'recommends') {
    return { kind: 'missing-recommendation', severity: 'warning', module: module.name, dependency: entry, message: `${module.name} recommends ${what}; left out` };
  }
  const message = `${module.name} requires ${what}`;
  if (providers.length > 0) return { kind: 'ambiguous-dependency', severity: 'error', module: module.name, dependency: entry, providers, message };
  return { kind: 'missing-dependency', severity: 'error', module: module.name, dependency: entry, message };
}
