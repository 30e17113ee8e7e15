import { type Assignment, assignmentKey } from './assignments.ts';
import { buildCatalog } from './catalog.ts';
import { type ConfigValue, configEquals } from './config.ts';
import type { DesiredCatalog } from './desired.ts';
import type { FleetFile, FleetFileNotice } from './fleet-file.ts';
import { type FleetFileProblem, capFleetProblems, childPath, positionOf, sortFleetProblems } from './fleet-yaml.ts';
import { CatalogInputError } from './input.ts';
import type { Module } from './module.ts';
import { compareText } from './order.ts';
import type { Pool } from './pool.ts';
import { previewTemplate } from './preview.ts';
import type { Template } from './template.ts';

/** The kinds fleet.yaml manages, in the order changes are listed. */
export const FLEET_KINDS = ['module', 'template', 'pool', 'assignment'] as const;
export type FleetKind = (typeof FLEET_KINDS)[number];

/** The value each kind holds. */
export interface FleetValues {
  readonly module: Module;
  readonly template: Template;
  readonly pool: Pool;
  readonly assignment: Assignment;
}

/**
 * One change applying a file would make. `key` is the name (module, template, pool) or
 * `node:module` (assignment); an add has `after`, a remove `before`, an update both.
 */
export type FleetChange = {
  readonly [K in FleetKind]: { readonly type: 'add' | 'update' | 'remove'; readonly kind: K; readonly key: string; readonly before?: FleetValues[K]; readonly after?: FleetValues[K] };
}[FleetKind];

/** An entry named by kind and key. */
export interface FleetEntryRef {
  readonly kind: FleetKind;
  readonly key: string;
}

export interface FleetDiffOptions {
  /**
   * Remove what a section of the file leaves out (the original's destroy, which it never applied
   * unattended). Off by default: such entries are listed as `kept` and left alone.
   */
  readonly prune?: boolean;
}

/** The dry run: a full change list, or the problems that stop the file from applying at all. */
export type FleetDiff =
  | {
      readonly ok: true;
      /** Sorted by kind (module, template, pool, assignment), then key (assignments by node, then module). */
      readonly changes: readonly FleetChange[];
      /** Entries of a section the file has, absent from it, kept because prune is off; same order. */
      readonly kept: readonly FleetEntryRef[];
      readonly unchanged: number;
      readonly notices: readonly FleetFileNotice[];
    }
  | { readonly ok: false; readonly problems: readonly FleetFileProblem[] };

/** Thrown by {@link applyFleetChanges} when a change does not fit the catalog it is applied to. */
export class StaleFleetChangeError extends Error {
  override name = 'StaleFleetChangeError';
  readonly change: FleetChange;

  constructor(change: FleetChange, problem: string) {
    super(`${change.type} ${change.kind} ${change.key}: ${problem}; diff the file against the catalog again`);
    this.change = change;
  }
}

const SECTIONS = { module: 'modules', template: 'templates', pool: 'pools', assignment: 'assignments' } as const;

/**
 * What applying `file` to `current` would change, as the original's diff engine: each section the
 * file has is the whole of its kind, so an entry the file adds or changes is an add or update, and
 * one it leaves out is a remove with `prune` (else listed as kept); a section the file lacks
 * leaves its kind alone. The outcome is then checked as a whole: every template of the file must
 * compose (previewTemplate) and the file's module changes must not break another template;
 * every assignment and pool must name a module or template the outcome holds. Any problem makes
 * the result a list of problems and no changes. Applying the changes and diffing again gives none.
 */
export function diffFleetFile(file: FleetFile, current: DesiredCatalog, options: FleetDiffOptions = {}): FleetDiff {
  const prune = options.prune ?? false;
  const found: Found = { changes: [], kept: [], unchanged: 0 };
  diffKind('module', file.modules, current.modules, prune, found);
  diffKind('template', file.templates, current.templates, prune, found);
  diffKind('pool', file.pools, current.pools, prune, found);
  diffKind('assignment', file.assignments, current.assignments, prune, found);
  const changes = found.changes.sort(compareChanges);
  const outcome = applyFleetChanges(current, changes);
  const problems = outcomeProblems(file, current, outcome, changes);
  if (problems.length > 0) return { ok: false, problems: capFleetProblems(sortFleetProblems(problems)) };
  return { ok: true, changes, kept: found.kept.sort(compareChanges), unchanged: found.unchanged, notices: file.notices };
}

/**
 * `current` with `changes` carried out (pure): each list comes back sorted by key. Refuses, with
 * {@link StaleFleetChangeError}, an add of a key already held, and an update or remove whose
 * `before` is not what `current` holds — the catalog moved on since the diff was made.
 */
export function applyFleetChanges(current: DesiredCatalog, changes: readonly FleetChange[]): DesiredCatalog {
  const held = {
    module: new Map<string, unknown>(current.modules.map((value) => [value.name, value])),
    template: new Map<string, unknown>(current.templates.map((value) => [value.name, value])),
    pool: new Map<string, unknown>(current.pools.map((value) => [value.name, value])),
    assignment: new Map<string, unknown>(current.assignments.map((value) => [assignmentKey(value), value])),
  };
  for (const change of changes) applyOne(held[change.kind], change);
  const values = <K extends FleetKind>(kind: K) => [...held[kind].values()] as FleetValues[K][];
  const byName = <T extends { readonly name: string }>(list: T[]) => list.sort((a, b) => compareText(a.name, b.name));
  return {
    ...current,
    modules: byName(values('module')),
    templates: byName(values('template')),
    pools: byName(values('pool')),
    assignments: values('assignment').sort((a, b) => compareText(a.node, b.node) || compareText(a.module, b.module)),
  };
}

/** The key of a value of `kind`. */
export function fleetKeyOf<K extends FleetKind>(kind: K, value: FleetValues[K]): string {
  return kind === 'assignment' ? assignmentKey(value as Assignment) : (value as Module | Template | Pool).name;
}

interface Found {
  readonly changes: FleetChange[];
  readonly kept: FleetEntryRef[];
  unchanged: number;
}

function diffKind<K extends FleetKind>(kind: K, desired: readonly FleetValues[K][] | undefined, current: readonly FleetValues[K][], prune: boolean, found: Found): void {
  if (desired === undefined) return;
  const held = new Map(current.map((value) => [fleetKeyOf(kind, value), value]));
  const wanted = new Set<string>();
  for (const after of desired) {
    const key = fleetKeyOf(kind, after);
    wanted.add(key);
    const before = held.get(key);
    if (before === undefined) found.changes.push({ type: 'add', kind, key, after } as FleetChange);
    else if (sameValue(before, after)) found.unchanged++;
    else found.changes.push({ type: 'update', kind, key, before, after } as FleetChange);
  }
  for (const [key, before] of held) {
    if (wanted.has(key)) continue;
    if (prune) found.changes.push({ type: 'remove', kind, key, before } as FleetChange);
    else found.kept.push({ kind, key });
  }
}

function applyOne(held: Map<string, unknown>, change: FleetChange): void {
  const existing = held.get(change.key);
  if (change.type === 'add') {
    if (existing !== undefined) throw new StaleFleetChangeError(change, 'the catalog already holds it');
  } else if (existing === undefined || change.before === undefined || !sameValue(existing, change.before)) {
    throw new StaleFleetChangeError(change, 'the catalog does not hold what the change was made against');
  }
  if (change.type === 'remove') {
    held.delete(change.key);
    return;
  }
  if (change.after === undefined || fleetKeyOf(change.kind, change.after) !== change.key) throw new StaleFleetChangeError(change, 'its value does not have its key');
  held.set(change.key, change.after);
}

/** Checked catalog values are JSON values with no absent-but-present fields, so value equality is config equality. */
function sameValue(a: unknown, b: unknown): boolean {
  return configEquals(a as ConfigValue, b as ConfigValue);
}

function compareChanges(a: FleetEntryRef, b: FleetEntryRef): number {
  const byKind = FLEET_KINDS.indexOf(a.kind) - FLEET_KINDS.indexOf(b.kind);
  if (byKind !== 0 || a.kind !== 'assignment') return byKind || compareText(a.key, b.key);
  const [nodeA = '', moduleA = ''] = a.key.split(':');
  const [nodeB = '', moduleB = ''] = b.key.split(':');
  return compareText(nodeA, nodeB) || compareText(moduleA, moduleB);
}

/** What would be wrong with the catalog after the changes, pointed at the file where it can be. */
function outcomeProblems(file: FleetFile, current: DesiredCatalog, outcome: DesiredCatalog, changes: readonly FleetChange[]): FleetFileProblem[] {
  const problem = (kind: FleetFileProblem['kind'], path: string, message: string): FleetFileProblem => ({ kind, path, ...positionOf(file.positions, path, 'key'), message: `${path}: ${message}` });
  try {
    buildCatalog(outcome.modules);
  } catch (error) {
    if (!(error instanceof CatalogInputError)) throw error;
    return [problem('reference', catalogPath(error.path), error.message.slice(error.path.length + 2))];
  }
  return [
    ...templateProblems(file, current, outcome, changes, problem),
    ...referenceProblems(file, current, outcome, problem),
  ];
}

type ProblemAt = (kind: FleetFileProblem['kind'], path: string, message: string) => FleetFileProblem;

/** Every template of the file must compose; a template it does not list must not stop composing because of it. */
function templateProblems(file: FleetFile, current: DesiredCatalog, outcome: DesiredCatalog, changes: readonly FleetChange[], problem: ProblemAt): FleetFileProblem[] {
  const inFile = new Set((file.templates ?? []).map((template) => template.name));
  const modulesChanged = changes.some((change) => change.kind === 'module');
  const problems: FleetFileProblem[] = [];
  for (const template of outcome.templates) {
    if (!inFile.has(template.name) && !modulesChanged) continue;
    const preview = previewTemplate(template, outcome.modules);
    if (preview.ok) continue;
    const why = preview.conflicts.map((conflict) => conflict.message).join('; ');
    if (inFile.has(template.name)) problems.push(problem('composition', childPath('templates', template.name), `does not compose: ${why}`));
    else if (composes(template, current.modules)) problems.push(problem('composition', 'modules', `the file's module changes stop template ${template.name} (not in this file) from composing: ${why}`));
  }
  return problems;
}

function composes(template: Template, modules: readonly Module[]): boolean {
  try {
    return previewTemplate(template, modules).ok;
  } catch {
    return false;
  }
}

/**
 * Assignments must name a module, and any template, the outcome holds; pools a template. A
 * reference that was already broken before the file and that the file does not touch is not the
 * file's problem.
 */
function referenceProblems(file: FleetFile, current: DesiredCatalog, outcome: DesiredCatalog, problem: ProblemAt): FleetFileProblem[] {
  const modules = new Set(outcome.modules.map((module) => module.name));
  const templates = new Set(outcome.templates.map((template) => template.name));
  const heldModules = new Set(current.modules.map((module) => module.name));
  const heldTemplates = new Set(current.templates.map((template) => template.name));
  const inFile = new Set((file.assignments ?? []).map(assignmentKey));
  const poolsInFile = new Set((file.pools ?? []).map((pool) => pool.name));
  const problems: FleetFileProblem[] = [];
  const check = (ownPath: string, own: boolean, what: string, name: string, present: Set<string>, held: Set<string>, section: string) => {
    if (present.has(name) || (!own && !held.has(name))) return;
    const path = own ? ownPath : section;
    const subject = own ? `names ${what} ${name}` : `${ownPath} (not in this file) names ${what} ${name}`;
    problems.push(problem('reference', path, `${subject}, which the catalog would not hold after this file: add it to ${section} or change the reference`));
  };
  for (const assignment of outcome.assignments) {
    const key = assignmentKey(assignment);
    const path = childPath('assignments', key);
    check(path, inFile.has(key), 'module', assignment.module, modules, heldModules, 'modules');
    if (assignment.template !== undefined) check(path, inFile.has(key), 'template', assignment.template, templates, heldTemplates, 'templates');
  }
  for (const pool of outcome.pools) check(childPath('pools', pool.name), poolsInFile.has(pool.name), 'template', pool.template, templates, heldTemplates, 'templates');
  return problems;
}

/** `module "x".parent` → `modules.x.parent`; anything about the catalog as a whole → `modules`. */
function catalogPath(checkerPath: string): string {
  const match = /^module "([^"]+)"\.(\w+)$/.exec(checkerPath);
  return match === null ? 'modules' : `${childPath('modules', match[1]!)}.${match[2]}`;
}
