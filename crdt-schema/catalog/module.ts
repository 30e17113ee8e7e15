import { type ConfigObject, configOf } from './config.ts';
import { booleanOf, fail, integerOf, nameOf, objectOf, oneOf, textOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import { type Manifest, manifestInput, manifestOf } from './manifest.ts';
import { SPEC_FIELDS, specLinesOf } from './spec-lines.ts';

/**
 * config: settings for every node; instance: one per category per node (an instance-variety
 * collision is an error); subscription: a base others may override as children.
 */
export const VARIETIES = ['config', 'instance', 'subscription'] as const;
export type Variety = (typeof VARIETIES)[number];

/** The category a module belongs to; its position ranks the whole category. */
export interface Category {
  readonly name: string;
  readonly position: number;
}

/** A module of the catalog, as {@link moduleOf} checked it. */
export interface Module {
  readonly name: string;
  readonly variety: Variety;
  readonly category: Category;
  /** 0-999; ranks the module within its category. */
  readonly priority: number;
  /** The subscription base this module overrides: its fileSpec is then the parent's dependencySpec. */
  readonly parent?: string;
  readonly config: ConfigObject;
  readonly initStart?: string;
  readonly initStop?: string;
  readonly initRestart?: string;
  readonly rebootRequired: boolean;
  /**
   * The original's `lock_spec` (`immutable?`): a locked module's fileSpec and dependencySpec are
   * kept out of every lower-priority neighbour's blob.
   */
  readonly immutable: boolean;
  readonly manifest: Manifest;
  /** Paths excluded from this module's own blob (build cruft). */
  readonly mask: readonly string[];
  /** Paths this module's blob includes. */
  readonly fileSpec: readonly string[];
  /** Packages installed into this module's build root. */
  readonly packageSpec: readonly string[];
  /** The fileSpec this module's children inherit; reserved from peers when immutable. */
  readonly dependencySpec: readonly string[];
  /** Paths this module claims as sensitive: no neighbour's blob may ship them. */
  readonly protectedSpec: readonly string[];
}

const MODULE_FIELDS = [
  'name', 'variety', 'category', 'priority', 'parent', 'config', 'initStart', 'initStop', 'initRestart',
  'rebootRequired', 'immutable', 'manifest', ...SPEC_FIELDS,
] as const;

/** Checks a module from outside (an operator, fleet.yaml, a document); throws {@link CatalogInputError}. */
export function moduleOf(value: unknown): Module {
  const raw = objectOf(value, 'module', MODULE_FIELDS);
  const name = nameOf(raw['name'], 'module.name');
  const path = `module ${JSON.stringify(name)}`;
  const parent = raw['parent'] === undefined ? undefined : nameOf(raw['parent'], `${path}.parent`);
  if (parent === name) fail(`${path}.parent`, 'a module cannot be its own parent');
  const module: Module = {
    name,
    variety: oneOf(raw['variety'], `${path}.variety`, VARIETIES),
    category: categoryOf(raw['category'], `${path}.category`),
    priority: integerOf(raw['priority'] ?? 0, `${path}.priority`, 0, CATALOG_LIMITS.priorityMax),
    config: configOf(raw['config'], `${path}.config`),
    rebootRequired: booleanOf(raw['rebootRequired'], `${path}.rebootRequired`, false),
    immutable: booleanOf(raw['immutable'], `${path}.immutable`, false),
    manifest: manifestOf(raw['manifest'], `${path}.manifest`),
    mask: specLinesOf(raw['mask'], `${path}.mask`),
    fileSpec: specLinesOf(raw['fileSpec'], `${path}.fileSpec`),
    packageSpec: specLinesOf(raw['packageSpec'], `${path}.packageSpec`),
    dependencySpec: specLinesOf(raw['dependencySpec'], `${path}.dependencySpec`),
    protectedSpec: specLinesOf(raw['protectedSpec'], `${path}.protectedSpec`),
  };
  return { ...module, ...optionalFields(raw, path, parent) };
}

/** A checked module as input again (its manifest in file format): what {@link moduleOf} reads back to the same module. */
export function moduleInput(module: Module): Record<string, unknown> {
  return { ...module, manifest: manifestInput(module.manifest) };
}

function optionalFields(raw: Record<string, unknown>, path: string, parent: string | undefined): Partial<Module> {
  const out: { parent?: string; initStart?: string; initStop?: string; initRestart?: string } = {};
  if (parent !== undefined) out.parent = parent;
  for (const field of ['initStart', 'initStop', 'initRestart'] as const) {
    if (raw[field] !== undefined) out[field] = textOf(raw[field], `${path}.${field}`, CATALOG_LIMITS.commandCharsMax);
  }
  return out;
}

function categoryOf(value: unknown, path: string): Category {
  const raw = objectOf(value, path, ['name', 'position']);
  return { name: nameOf(raw['name'], `${path}.name`), position: integerOf(raw['position'], `${path}.position`, 0, CATALOG_LIMITS.categoryPositionMax) };
}

/** The original's weight for overlay order and mask carry-down: category position × 1000 + priority. */
export const CATEGORY_WEIGHT = 1000;

/** Effective priority: higher is mounted later (takes precedence in the overlay). */
export function effectivePriority(module: Pick<Module, 'category' | 'priority'>): number {
  return module.category.position * CATEGORY_WEIGHT + module.priority;
}
