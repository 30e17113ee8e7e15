// Builders for catalog tests: modules and templates from a few fields, checked as real input is.
import { type Module, type Template, moduleOf, templateOf } from '../../crdt-schema/index.ts';

/** What a test says about a module; everything else takes the defaults. */
export interface ModuleSketch {
  readonly variety?: 'config' | 'instance' | 'subscription';
  readonly category?: string;
  readonly position?: number;
  readonly priority?: number;
  readonly parent?: string;
  readonly immutable?: boolean;
  readonly requires?: readonly string[];
  readonly recommends?: readonly string[];
  readonly conflicts?: readonly string[];
  readonly provides?: readonly string[];
  readonly mask?: readonly string[];
  readonly fileSpec?: readonly string[];
  readonly packageSpec?: readonly string[];
  readonly dependencySpec?: readonly string[];
  readonly protectedSpec?: readonly string[];
  readonly config?: Record<string, unknown>;
}

/** A checked module named `name`. */
export function module(name: string, sketch: ModuleSketch = {}): Module {
  return moduleOf({
    name,
    variety: sketch.variety ?? 'subscription',
    category: { name: sketch.category ?? 'base', position: sketch.position ?? 1 },
    priority: sketch.priority ?? 0,
    ...(sketch.parent === undefined ? {} : { parent: sketch.parent }),
    immutable: sketch.immutable ?? false,
    config: sketch.config ?? {},
    manifest: {
      schema_version: 1,
      dependencies: { requires: sketch.requires ?? [], recommends: sketch.recommends ?? [], conflicts: sketch.conflicts ?? [], provides: sketch.provides ?? [] },
    },
    mask: sketch.mask ?? [],
    fileSpec: sketch.fileSpec ?? [],
    packageSpec: sketch.packageSpec ?? [],
    dependencySpec: sketch.dependencySpec ?? [],
    protectedSpec: sketch.protectedSpec ?? [],
  });
}

/** A checked template choosing `modules` (enabled, priority 0) unless given as objects. */
export function template(name: string, modules: readonly (string | Record<string, unknown>)[]): Template {
  return templateOf({ name, modules: modules.map((entry) => (typeof entry === 'string' ? { module: entry } : entry)) });
}
