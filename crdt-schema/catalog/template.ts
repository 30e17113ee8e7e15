import { type ConfigObject, configOf } from './config.ts';
import { booleanOf, checkUnique, integerOf, listOf, nameOf, nameSetOf, objectOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import type { Module } from './module.ts';
import { compareText } from './order.ts';

/**
 * Which of a module's recommends a template follows, as the original's `recommends_override`:
 * `replace` is the whole list (`[]` turns recommends off); otherwise the module's own recommends,
 * less `exclude`, plus `include`.
 */
export interface RecommendsOverride {
  readonly replace?: readonly string[];
  readonly exclude: readonly string[];
  readonly include: readonly string[];
}

/** One module of a template. */
export interface TemplateModule {
  readonly module: string;
  /** A disabled module is not chosen by the template (another module may still require it). */
  readonly enabled: boolean;
  /** 0-999; orders the template's modules (it does not change effective priority, as in the original). */
  readonly priority: number;
  /** Laid over the module's config (deep merge). */
  readonly config: ConfigObject;
  readonly recommendsOverride?: RecommendsOverride;
}

/** A named, ordered set of modules that nodes are given together. */
export interface Template {
  readonly name: string;
  /** Highest priority first, then by module name. */
  readonly modules: readonly TemplateModule[];
}

/** Checks a template from outside; throws {@link CatalogInputError}. Its modules come out ordered. */
export function templateOf(value: unknown): Template {
  const raw = objectOf(value, 'template', ['name', 'modules']);
  const name = nameOf(raw['name'], 'template.name');
  const path = `template ${JSON.stringify(name)}.modules`;
  const modules = listOf(raw['modules'], path, CATALOG_LIMITS.templateModulesMax, templateModuleOf);
  checkUnique(modules, path, (entry) => entry.module);
  return { name, modules: modules.sort((a, b) => b.priority - a.priority || compareText(a.module, b.module)) };
}

function templateModuleOf(value: unknown, path: string): TemplateModule {
  const raw = objectOf(value, path, ['module', 'enabled', 'priority', 'config', 'recommendsOverride']);
  const entry: TemplateModule = {
    module: nameOf(raw['module'], `${path}.module`),
    enabled: booleanOf(raw['enabled'], `${path}.enabled`, true),
    priority: integerOf(raw['priority'] ?? 0, `${path}.priority`, 0, CATALOG_LIMITS.priorityMax),
    config: configOf(raw['config'], `${path}.config`),
  };
  if (raw['recommendsOverride'] === undefined) return entry;
  return { ...entry, recommendsOverride: overrideOf(raw['recommendsOverride'], `${path}.recommendsOverride`) };
}

function overrideOf(value: unknown, path: string): RecommendsOverride {
  const raw = objectOf(value, path, ['replace', 'exclude', 'include']);
  const max = CATALOG_LIMITS.dependencyEntriesMax;
  const override = { exclude: nameSetOf(raw['exclude'], `${path}.exclude`, max), include: nameSetOf(raw['include'], `${path}.include`, max) };
  if (raw['replace'] === undefined) return override;
  return { ...override, replace: nameSetOf(raw['replace'], `${path}.replace`, max) };
}

/** The recommends entries a template module follows: its module's recommends with the override applied. */
export function followedRecommends(entry: TemplateModule, module: Module): ReadonlySet<string> {
  const override = entry.recommendsOverride;
  if (override?.replace !== undefined) return new Set(override.replace);
  const followed = new Set(module.manifest.dependencies.recommends);
  for (const name of override?.exclude ?? []) followed.delete(name);
  for (const name of override?.include ?? []) followed.add(name);
  return followed;
}
