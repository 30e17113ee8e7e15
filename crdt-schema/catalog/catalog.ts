import { checkUnique, fail } from './input.ts';
import { appendTo, compareText } from './order.ts';
import { CATALOG_LIMITS } from './limits.ts';
import type { Module } from './module.ts';

/** The modules a composition may draw on, indexed by name and by the capabilities they provide. */
export interface Catalog {
  readonly modules: ReadonlyMap<string, Module>;
  /** Capability → the modules whose manifest provides it, sorted by name. */
  readonly providers: ReadonlyMap<string, readonly string[]>;
}

/**
 * Indexes checked modules. Refuses more than `CATALOG_LIMITS.modulesMax` modules, a name used
 * twice, and a parent that is not in the catalog (a child's fileSpec comes from its parent).
 * The result does not depend on the order of `modules`.
 */
export function buildCatalog(modules: readonly Module[]): Catalog {
  if (modules.length > CATALOG_LIMITS.modulesMax) fail('catalog', `holds at most ${CATALOG_LIMITS.modulesMax} modules (got ${modules.length})`);
  checkUnique(modules, 'catalog', (module) => module.name);
  const sorted = [...modules].sort((a, b) => compareText(a.name, b.name));
  const byName = new Map(sorted.map((module) => [module.name, module]));
  const providers = new Map<string, string[]>();
  for (const module of sorted) {
    if (module.parent !== undefined && !byName.has(module.parent)) {
      fail(`module ${JSON.stringify(module.name)}.parent`, `names ${JSON.stringify(module.parent)}, which is not in the catalog`);
    }
    for (const capability of module.manifest.dependencies.provides) appendTo(providers, capability, module.name);
  }
  return { modules: byName, providers };
}

/**
 * What a module's blob includes. A child (a module with a parent) ships its parent's
 * dependencySpec and its own fileSpec is ignored, as the original's `file_spec` reader does.
 */
export function effectiveFileSpec(catalog: Catalog, module: Module): readonly string[] {
  if (module.parent === undefined) return module.fileSpec;
  return catalog.modules.get(module.parent)?.dependencySpec ?? module.fileSpec;
}
