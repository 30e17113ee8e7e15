import { type ConfigObject, configEquals, configOf } from './config.ts';
import { booleanOf, checkUnique, fail, listOf, nameOf, nodeOf, objectOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import type { Module } from './module.ts';
import { compareText, sortedUnique } from './order.ts';
import { type TemplatePreview, previewTemplate } from './preview.ts';
import type { Template } from './template.ts';

/** A module given to a node; `node:module` is its key, as in fleet.yaml. */
export interface Assignment {
  readonly node: string;
  readonly module: string;
  /** The template that produced it; absent for a module assigned by hand. */
  readonly template?: string;
  readonly config: ConfigObject;
  readonly enabled: boolean;
}

/** One change a diff would make. */
export interface AssignmentChange {
  readonly type: 'add' | 'update' | 'remove';
  readonly node: string;
  readonly module: string;
  readonly before?: Assignment;
  readonly after?: Assignment;
}

/** What applying would change: the dry run. */
export interface AssignmentDiff {
  /** Sorted by node, then module. */
  readonly changes: readonly AssignmentChange[];
  /** Assignments the template made and no longer names, kept because purgeStale is off. */
  readonly stale: readonly Assignment[];
  readonly unchanged: number;
}

/** Thrown when a template with error-severity problems is applied; `preview` says which. */
export class TemplateNotComposableError extends Error {
  override name = 'TemplateNotComposableError';
  readonly preview: TemplatePreview;

  constructor(preview: TemplatePreview) {
    super(`template ${preview.template} does not compose: ${preview.conflicts.map((problem) => problem.message).join('; ')}`);
    this.preview = preview;
  }
}

/** `node:module`. */
export function assignmentKey(assignment: Pick<Assignment, 'node' | 'module'>): string {
  return `${assignment.node}:${assignment.module}`;
}

/**
 * The assignments a template gives `nodes`: every module of its closure on every node, enabled,
 * with the template's config. Refuses a template whose preview is not ok, so a composition that
 * cannot build never reaches a node (the original only warned, because it applied on every
 * provisioning; here applying is an operator's decision, refused before anything is written).
 */
export function applyTemplate(template: Template, modules: readonly Module[], nodes: readonly string[]): { preview: TemplatePreview; assignments: Assignment[] } {
  const checkedNodes = nodesOf(nodes);
  const preview = previewTemplate(template, modules);
  if (!preview.ok) throw new TemplateNotComposableError(preview);
  const assignments = checkedNodes.flatMap((node) =>
    preview.closure.map((entry) => ({ node, module: entry.module, template: template.name, config: entry.config, enabled: true })),
  );
  return { preview, assignments: sortAssignments(assignments) };
}

/**
 * The dry run of giving a template's `desired` assignments to `scope.nodes` over `current`: adds,
 * updates (template, config or enabled differ) and, with purgeStale, removals of what this
 * template assigned on those nodes and no longer names. Assignments of other templates, by hand,
 * or on other nodes are never touched. Applying the result and diffing again yields no changes.
 */
export function diffAssignments(current: readonly Assignment[], desired: readonly Assignment[], scope: { readonly template: string; readonly nodes: readonly string[]; readonly purgeStale: boolean }): AssignmentDiff {
  checkAssignments(current, 'current assignments');
  checkAssignments(desired, 'desired assignments');
  const currentByKey = new Map(current.map((assignment) => [assignmentKey(assignment), assignment]));
  const desiredKeys = new Set(desired.map(assignmentKey));
  const nodes = new Set(scope.nodes);
  const changes: AssignmentChange[] = [];
  let unchanged = 0;
  for (const after of desired) {
    const before = currentByKey.get(assignmentKey(after));
    if (before === undefined) changes.push({ type: 'add', node: after.node, module: after.module, after });
    else if (sameAssignment(before, after)) unchanged++;
    else changes.push({ type: 'update', node: after.node, module: after.module, before, after });
  }
  const stale = current.filter((assignment) => assignment.template === scope.template && nodes.has(assignment.node) && !desiredKeys.has(assignmentKey(assignment)));
  if (scope.purgeStale) for (const before of stale) changes.push({ type: 'remove', node: before.node, module: before.module, before });
  return { changes: sortAssignments(changes), stale: scope.purgeStale ? [] : sortAssignments(stale), unchanged };
}

/** Checks an assignment from outside (a document, fleet.yaml). */
export function assignmentOf(value: unknown, path: string): Assignment {
  const raw = objectOf(value, path, ['node', 'module', 'template', 'config', 'enabled']);
  const assignment = {
    node: nodeOf(raw['node'], `${path}.node`),
    module: nameOf(raw['module'], `${path}.module`),
    config: configOf(raw['config'], `${path}.config`),
    enabled: booleanOf(raw['enabled'], `${path}.enabled`, true),
  };
  return raw['template'] === undefined ? assignment : { ...assignment, template: nameOf(raw['template'], `${path}.template`) };
}

function sameAssignment(a: Assignment, b: Assignment): boolean {
  return a.template === b.template && a.enabled === b.enabled && configEquals(a.config, b.config);
}

function nodesOf(nodes: readonly string[]): string[] {
  const checked = listOf(nodes, 'nodes', CATALOG_LIMITS.nodesPerApplyMax, nodeOf);
  if (checked.length === 0) fail('nodes', 'name at least one node to apply the template to');
  return sortedUnique(checked);
}

function checkAssignments(assignments: readonly Assignment[], path: string): void {
  if (assignments.length > CATALOG_LIMITS.assignmentsMax) fail(path, `at most ${CATALOG_LIMITS.assignmentsMax} assignments (got ${assignments.length})`);
  checkUnique(assignments, path, assignmentKey);
}

function sortAssignments<T extends { readonly node: string; readonly module: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => compareText(a.node, b.node) || compareText(a.module, b.module));
}
