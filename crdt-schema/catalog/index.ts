// The fleet catalog's pure domain logic (issue 7): modules, versions and trust, composition,
// templates and assignments, instance and task lifecycles, pools. No I/O; docs/CATALOG.md.
export * from './limits.ts';
// The input helpers (objectOf, nameOf…) and ordering helpers stay internal to the catalog.
export { CatalogInputError, NAME_PATTERN, NODE_PATTERN } from './input.ts';
export * from './config.ts';
export * from './spec-lines.ts';
export * from './manifest.ts';
export * from './module.ts';
export * from './catalog.ts';
export * from './version.ts';
export * from './trust.ts';
export * from './promotion.ts';
export * from './problems.ts';
export * from './closure.ts';
export * from './cycles.ts';
export * from './conflicts.ts';
export * from './mask.ts';
export * from './filter.ts';
export * from './template.ts';
export * from './preview.ts';
export * from './assignments.ts';
export * from './state-machine.ts';
export * from './instance.ts';
export * from './task.ts';
export * from './pool.ts';
export * from './pool-reaper.ts';
export * from './desired.ts';
export * from './fleet-yaml.ts';
export * from './fleet-file.ts';
export * from './fleet-diff.ts';
export * from './fleet-export.ts';
