import { type Catalog, buildCatalog, effectiveFileSpec } from './catalog.ts';
import { type Closure, type ClosureRoot, resolveClosure } from './closure.ts';
import { type ConfigObject, mergeConfig } from './config.ts';
import { findConflicts } from './conflicts.ts';
import { findCycles } from './cycles.ts';
import { type FilterInput, type ModuleFilter, composeFilters, compositionFingerprint } from './filter.ts';
import { type Module, type Variety, effectivePriority } from './module.ts';
import { compareText, sortedUnique } from './order.ts';
import { type CompositionProblem, sortProblems } from './problems.ts';
import { type Template, type TemplateModule, followedRecommends } from './template.ts';

/** A module of a template's closure. */
export interface ClosureEntry {
  readonly module: string;
  readonly variety: Variety;
  readonly category: string;
  readonly effectivePriority: number;
  /** Chosen by the template (enabled in it), not only pulled in by a dependency. */
  readonly explicit: boolean;
  /** The closure modules that require or recommend it, sorted. */
  readonly requiredBy: readonly string[];
  /** The module's config with the template module's override laid over it. */
  readonly config: ConfigObject;
}

/** What a template would put on a node. Each list is sorted; each path and package once. */
export interface Footprint {
  readonly modules: readonly string[];
  readonly packages: readonly string[];
  readonly paths: readonly string[];
}

/** Everything `template preview` shows; the same for the same template and catalog, whatever their order. */
export interface TemplatePreview {
  readonly template: string;
  /** Highest effective priority first (the top of the overlay), then by name. */
  readonly closure: readonly ClosureEntry[];
  /** Error-severity problems: while there is one, the template is not ok and is not applied. */
  readonly conflicts: readonly CompositionProblem[];
  readonly warnings: readonly CompositionProblem[];
  /** One rsync filter per closure module, in name order. */
  readonly filter: readonly ModuleFilter[];
  /** {@link compositionFingerprint} of the filters. */
  readonly fingerprint: string;
  readonly footprint: Footprint;
  readonly ok: boolean;
}

/**
 * Composes a template over a catalog of checked modules: closure, conflicts and warnings,
 * filters, fingerprint and footprint, without changing anything. The template's neighbours for the
 * effective masks are the closure's modules, which is what a node given only this template runs.
 * A template naming a module not in the catalog is a problem in the preview, not an exception;
 * a catalog that breaks its own rules (a name twice, an unknown parent) throws CatalogInputError.
 */
export function previewTemplate(template: Template, modules: readonly Module[]): TemplatePreview {
  const catalog = buildCatalog(modules);
  const chosen = template.modules.filter((entry) => entry.enabled);
  const unknown: CompositionProblem[] = chosen
    .filter((entry) => !catalog.modules.has(entry.module))
    .map((entry) => ({ kind: 'unknown-module', severity: 'error', module: entry.module, message: `template ${template.name} names module ${entry.module}, which is not in the catalog` }));
  const roots: ClosureRoot[] = chosen.flatMap((entry) => {
    const module = catalog.modules.get(entry.module);
    return module === undefined ? [] : [{ name: module.name, recommends: followedRecommends(entry, module) }];
  });
  const closure = resolveClosure(catalog, roots);
  const problems = sortProblems([...unknown, ...closure.problems, ...findCycles(closure.edges), ...findConflicts(catalog, closure.members)]);
  const filter = composeFilters(closure.members.map((name) => filterInput(catalog, catalog.modules.get(name)!)));
  const conflicts = problems.filter((problem) => problem.severity === 'error');
  return {
    template: template.name,
    closure: closureEntries(catalog, closure, chosen),
    conflicts,
    warnings: problems.filter((problem) => problem.severity === 'warning'),
    filter,
    fingerprint: compositionFingerprint(filter),
    footprint: footprintOf(catalog, closure.members),
    ok: conflicts.length === 0,
  };
}

/** What the filter of `module` is made from, its child inheritance resolved. */
export function filterInput(catalog: Catalog, module: Module): FilterInput {
  return {
    name: module.name,
    effectivePriority: effectivePriority(module),
    immutable: module.immutable,
    mask: module.mask,
    fileSpec: effectiveFileSpec(catalog, module),
    dependencySpec: module.dependencySpec,
    protectedSpec: module.protectedSpec,
    packageSpec: module.packageSpec,
  };
}

function closureEntries(catalog: Catalog, closure: Closure, chosen: readonly TemplateModule[]): ClosureEntry[] {
  const chosenByName = new Map(chosen.map((entry) => [entry.module, entry]));
  const requiredBy = new Map<string, Set<string>>();
  for (const edge of closure.edges) requiredBy.set(edge.to, (requiredBy.get(edge.to) ?? new Set()).add(edge.from));
  const entries = closure.members.map((name): ClosureEntry => {
    const module = catalog.modules.get(name)!;
    const override = chosenByName.get(name)?.config;
    return {
      module: name,
      variety: module.variety,
      category: module.category.name,
      effectivePriority: effectivePriority(module),
      explicit: chosenByName.has(name),
      requiredBy: sortedUnique(requiredBy.get(name) ?? []),
      config: override === undefined ? module.config : mergeConfig(module.config, override),
    };
  });
  return entries.sort((a, b) => b.effectivePriority - a.effectivePriority || compareText(a.module, b.module));
}

function footprintOf(catalog: Catalog, members: readonly string[]): Footprint {
  const modules = members.map((name) => catalog.modules.get(name)!);
  return {
    modules: [...members],
    packages: sortedUnique(modules.flatMap((module) => module.packageSpec)),
    paths: sortedUnique(modules.flatMap((module) => effectiveFileSpec(catalog, module))),
  };
}
