import type { Assignment } from './assignments.ts';
import type { Module } from './module.ts';
import type { Pool } from './pool.ts';
import type { Template } from './template.ts';
import type { TrustPolicy } from './trust.ts';
import type { ModuleVersion } from './version.ts';

/**
 * The fleet's desired catalog as operators declared it: what the replicated `desired/catalog`
 * document folds into (crdt-schema/desired-doc.ts), what fleet.yaml is compared with and exported
 * from, and what the pure functions of this folder take. Every list is sorted by its key (module,
 * template and pool by name; assignments by node, then module; versions by module, then number;
 * trust by module) and holds each key once.
 */
export interface DesiredCatalog {
  readonly modules: readonly Module[];
  readonly templates: readonly Template[];
  readonly assignments: readonly Assignment[];
  readonly pools: readonly Pool[];
  readonly versions: readonly ModuleVersion[];
  readonly trust: readonly TrustPolicy[];
}

/** A catalog with nothing in it. */
export const EMPTY_DESIRED_CATALOG: DesiredCatalog = { modules: [], templates: [], assignments: [], pools: [], versions: [], trust: [] };
