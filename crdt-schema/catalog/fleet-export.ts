import { Document, isMap } from 'yaml';
import { type Assignment, assignmentKey } from './assignments.ts';
import type { ConfigObject } from './config.ts';
import type { DesiredCatalog } from './desired.ts';
import type { Manifest } from './manifest.ts';
import type { Module } from './module.ts';
import type { Pool } from './pool.ts';
import type { Template, TemplateModule } from './template.ts';

type Fields = Record<string, unknown>;

/**
 * The catalog as a fleet.yaml in the original's shape (templates, modules, assignments keyed
 * `node:module`, pools), entries in key order and fields left out where they hold their default,
 * so `parseFleetFile(exportFleetFile(x))` gives back exactly x's modules, templates, assignments
 * and pools. Every section is written, even empty: applying the export owns the whole catalog.
 * Module versions and trust policies are not fleet.yaml's and are not written.
 */
export function exportFleetFile(current: DesiredCatalog): string {
  const document = new Document({
    templates: keyed(current.templates, (template) => template.name, templateFields),
    modules: keyed(current.modules, (module) => module.name, moduleFields),
    assignments: keyed(current.assignments, assignmentKey, assignmentFields),
    pools: keyed(current.pools, (pool) => pool.name, poolFields),
    // A config object shared by many entries is written out each time: fleet.yaml refuses aliases.
  }, { aliasDuplicateObjects: false });
  // One line per assignment: a fleet has many of them, and a line each reads (and diffs in git) best.
  const assignments = document.get('assignments');
  if (isMap(assignments)) for (const pair of assignments.items) if (isMap(pair.value)) pair.value.flow = true;
  document.commentBefore = ' fleet.yaml written by powernode fleet export (docs/CATALOG.md §fleet.yaml)';
  // No folding: a long command or glob line stays on one line, as it was written.
  return document.toString({ lineWidth: 0 });
}

function keyed<T>(values: readonly T[], keyOf: (value: T) => string, fields: (value: T) => Fields): Fields {
  const out: Fields = {};
  for (const value of values) Object.defineProperty(out, keyOf(value), { value: fields(value), enumerable: true, writable: true, configurable: true });
  return out;
}

function moduleFields(module: Module): Fields {
  const out: Fields = { variety: module.variety, category: { name: module.category.name, position: module.category.position } };
  if (module.priority !== 0) out['priority'] = module.priority;
  if (module.parent !== undefined) out['parent'] = module.parent;
  if (hasKeys(module.config)) out['config'] = module.config;
  if (module.initStart !== undefined) out['init_start'] = module.initStart;
  if (module.initStop !== undefined) out['init_stop'] = module.initStop;
  if (module.initRestart !== undefined) out['init_restart'] = module.initRestart;
  if (module.rebootRequired) out['reboot_required'] = true;
  if (module.immutable) out['immutable'] = true;
  const manifest = manifestFields(module.manifest);
  if (manifest !== undefined) out['manifest'] = manifest;
  const specs = { mask: module.mask, file_spec: module.fileSpec, package_spec: module.packageSpec, dependency_spec: module.dependencySpec, protected_spec: module.protectedSpec };
  for (const [field, lines] of Object.entries(specs)) if (lines.length > 0) out[field] = [...lines];
  return out;
}

/** The manifest in its file format (snake_case), or nothing for a manifest that declares nothing. */
function manifestFields(manifest: Manifest): Fields | undefined {
  const dependencies = nonEmptyLists({ ...manifest.dependencies });
  const security = nonEmptyLists({ capabilities: manifest.security.capabilities, egress_allow: manifest.security.egressAllow });
  if (manifest.security.privileged) security['privileged'] = true;
  const out: Fields = { schema_version: manifest.schemaVersion };
  if (hasKeys(dependencies)) out['dependencies'] = dependencies;
  if (manifest.services.length > 0) {
    out['services'] = manifest.services.map((service) => ({
      name: service.name,
      ...(service.command === undefined ? {} : { command: service.command }),
      ...(service.ports.length === 0 ? {} : { ports: [...service.ports] }),
    }));
  }
  if (hasKeys(security)) out['security'] = security;
  return Object.keys(out).length === 1 ? undefined : out;
}

function templateFields(template: Template): Fields {
  return { modules: keyed(template.modules, (entry) => entry.module, templateModuleFields) };
}

function templateModuleFields(entry: TemplateModule): Fields {
  const out: Fields = {};
  if (!entry.enabled) out['enabled'] = false;
  if (entry.priority !== 0) out['priority'] = entry.priority;
  if (hasKeys(entry.config)) out['config'] = entry.config;
  const override = entry.recommendsOverride;
  if (override !== undefined) {
    // Written even when empty: an override that is present reads back as present.
    const fields = nonEmptyLists({ exclude: override.exclude, include: override.include });
    out['recommends_override'] = override.replace === undefined ? fields : { replace: [...override.replace], ...fields };
  }
  return out;
}

function assignmentFields(assignment: Assignment): Fields {
  const out: Fields = {};
  if (assignment.template !== undefined) out['template'] = assignment.template;
  if (hasKeys(assignment.config)) out['config'] = assignment.config;
  if (!assignment.enabled) out['enabled'] = false;
  return out;
}

function poolFields(pool: Pool): Fields {
  return { template: pool.template, target_size: pool.target, min_size: pool.min, max_size: pool.max, lifecycle_class: pool.lifecycle, status: pool.status };
}

function nonEmptyLists(lists: Readonly<Record<string, readonly string[]>>): Fields {
  const out: Fields = {};
  for (const [field, list] of Object.entries(lists)) if (list.length > 0) out[field] = [...list];
  return out;
}

function hasKeys(value: ConfigObject | Fields): boolean {
  return Object.keys(value).length > 0;
}
