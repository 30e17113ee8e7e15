import { readFile } from 'node:fs/promises';
import {
  type Assignment,
  type AssignmentChange,
  CatalogInputError,
  DESIRED_CATALOG_DOC_ID,
  DESIRED_CHANGES_MAX,
  type DesiredCatalog,
  type DesiredChange,
  type DesiredEntry,
  type DesiredKind,
  type DesiredValues,
  InvalidDesiredEntryError,
  type SkippedChange,
  TemplateNotComposableError,
  type TemplatePreview,
  applyTemplate,
  canonicalJson,
  desiredInputOf,
  desiredKeyOf,
  desiredValueOf,
  diffAssignments,
} from '../crdt-schema/index.ts';
import { signDesiredEntry } from '../mesh/index.ts';
import type { ApiClient } from './api-client.ts';
import { UsageError } from './cli-args.ts';
import type { OperatorKeyFile } from './key-files.ts';

/** What the node answers on the catalog endpoints. */
export interface CatalogAnswer {
  readonly catalog: DesiredCatalog;
  readonly entries: number;
  readonly skipped: readonly SkippedChange[];
}

/** One change as the CLI reports it (`--json` and dry runs). */
export interface ReportedChange {
  readonly type: 'add' | 'update' | 'remove';
  readonly kind: DesiredKind;
  readonly key: string;
}

type Key = OperatorKeyFile & { readonly seed: Uint8Array };

/** The catalog's lists by kind. */
export function listOfKind<K extends DesiredKind>(catalog: DesiredCatalog, kind: K): readonly DesiredValues[K][] {
  const lists: { readonly [P in DesiredKind]: readonly DesiredValues[P][] } = {
    module: catalog.modules,
    version: catalog.versions,
    trust: catalog.trust,
    template: catalog.templates,
    assignment: catalog.assignments,
    pool: catalog.pools,
    // Tasks live in their own document (desired/tasks), not in the catalog.
    task: [],
    'task-cancel': [],
    'instance-action': [],
  };
  return lists[kind] as readonly DesiredValues[K][];
}

let lastAt = 0;

/**
 * Signs `changes` here, where the operator key is, as entries of at most
 * {@link DESIRED_CHANGES_MAX} changes and the body cap each (a batch too large is halved), all
 * sent in one request: the node records all of them in one change, or none.
 */
export function signChanges(key: Key, changes: readonly DesiredChange[], docId: string = DESIRED_CATALOG_DOC_ID): DesiredEntry[] {
  const entries: DesiredEntry[] = [];
  const sign = (batch: readonly DesiredChange[]): void => {
    lastAt = Math.max(Date.now(), lastAt + 1);
    try {
      entries.push(signDesiredEntry(key, key.fleetId, docId, batch, lastAt));
    } catch (error) {
      if (!(error instanceof InvalidDesiredEntryError) || !/split the batch/.test(error.message) || batch.length < 2) throw error;
      sign(batch.slice(0, batch.length >> 1));
      sign(batch.slice(batch.length >> 1));
    }
  };
  for (let i = 0; i < changes.length; i += DESIRED_CHANGES_MAX) sign(changes.slice(i, i + DESIRED_CHANGES_MAX));
  return entries;
}

/** Signs and records `changes` through the node; nothing is sent when there are none. */
export async function submitChanges(client: ApiClient, key: Key, changes: readonly DesiredChange[]): Promise<CatalogAnswer | undefined> {
  if (changes.length === 0) return undefined;
  return client.post<CatalogAnswer>('/api/v1/catalog', { entries: signChanges(key, changes) });
}

export async function fetchCatalog(client: ApiClient): Promise<CatalogAnswer> {
  return client.get<CatalogAnswer>('/api/v1/catalog');
}

/**
 * Reads values of `kind` from JSON files (each an object or a list of objects), checked as the
 * node will check them; the error names the file and the field.
 */
export async function readValues<K extends DesiredKind>(kind: K, files: readonly string[]): Promise<DesiredValues[K][]> {
  const values: DesiredValues[K][] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new CatalogFileError(`${file}: not JSON (${(error as Error).message})`);
    }
    const items = Array.isArray(parsed) ? parsed : [parsed];
    items.forEach((item, index) => {
      try {
        values.push(desiredValueOf(kind, item));
      } catch (error) {
        if (error instanceof CatalogInputError) throw new CatalogFileError(`${file}${Array.isArray(parsed) ? `[${index}]` : ''}: ${error.message}`);
        throw error;
      }
    });
  }
  return values;
}

/** Thrown when a file given to the CLI is not a valid catalog value; the message names file and field. */
export class CatalogFileError extends Error {
  override name = 'CatalogFileError';
}

/** The puts that make `values` part of `catalog`: what is new or differs (by its canonical form). */
export function putChanges<K extends DesiredKind>(catalog: DesiredCatalog, kind: K, values: readonly DesiredValues[K][]): { changes: DesiredChange[]; report: ReportedChange[] } {
  const held = new Map(listOfKind(catalog, kind).map((value) => [desiredKeyOf(kind, value), canonicalJson(desiredInputOf(kind, value))]));
  const changes: DesiredChange[] = [];
  const report: ReportedChange[] = [];
  for (const value of values) {
    const key = desiredKeyOf(kind, value);
    const before = held.get(key);
    if (before === canonicalJson(desiredInputOf(kind, value))) continue;
    changes.push({ op: 'put', kind, value } as DesiredChange);
    report.push({ type: before === undefined ? 'add' : 'update', kind, key });
  }
  return { changes, report };
}

/**
 * What a put of `values` leaves dangling, as warnings (the put goes ahead: what it names may be
 * added next): a pool whose template the catalog does not hold cannot have a member set up from it.
 */
export function putWarnings<K extends DesiredKind>(catalog: DesiredCatalog, kind: K, values: readonly DesiredValues[K][]): string[] {
  if (kind !== 'pool') return [];
  const templates = new Set(catalog.templates.map((template) => template.name));
  return (values as readonly DesiredValues['pool'][])
    .filter((pool) => !templates.has(pool.template))
    .map((pool) => `pool ${pool.name} names template ${JSON.stringify(pool.template)}, which the catalog does not hold: add it (powernode template put) before members are set up from it`);
}

/** The removes of `keys`; a key the catalog does not hold is refused by name. */
export function removeChanges(catalog: DesiredCatalog, kind: DesiredKind, keys: readonly string[]): { changes: DesiredChange[]; report: ReportedChange[] } {
  const held = new Set(listOfKind(catalog, kind).map((value) => desiredKeyOf(kind, value)));
  const missing = keys.filter((key) => !held.has(key));
  if (missing.length > 0) throw new CatalogFileError(`no ${kind} ${missing.map((key) => JSON.stringify(key)).join(', ')} in the catalog`);
  return { changes: keys.map((key) => ({ op: 'remove', kind, key })), report: keys.map((key) => ({ type: 'remove', kind, key })) };
}

/** The assignment changes of applying `templateName` to `nodes` over the catalog (the dry run, and what apply signs). */
export function templateApplyChanges(catalog: DesiredCatalog, templateName: string, nodes: readonly string[], purgeStale: boolean): { changes: DesiredChange[]; report: ReportedChange[]; stale: readonly Assignment[] } {
  const template = catalog.templates.find((t) => t.name === templateName);
  if (template === undefined) throw new CatalogFileError(`no template ${JSON.stringify(templateName)} in the catalog`);
  const { assignments } = applyTemplate(template, catalog.modules, nodes);
  const diff = diffAssignments(catalog.assignments, assignments, { template: template.name, nodes, purgeStale });
  const changeOf = (change: AssignmentChange): DesiredChange =>
    change.type === 'remove' ? { op: 'remove', kind: 'assignment', key: `${change.node}:${change.module}` } : { op: 'put', kind: 'assignment', value: change.after! };
  return {
    changes: diff.changes.map(changeOf),
    report: diff.changes.map((change) => ({ type: change.type, kind: 'assignment' as const, key: `${change.node}:${change.module}` })),
    stale: diff.stale,
  };
}

/** Human lines for a template preview. */
export function formatPreview(preview: TemplatePreview): string {
  const lines = [`template ${preview.template}: ${preview.ok ? 'composes' : 'does not compose'} (fingerprint ${preview.fingerprint})`];
  for (const entry of preview.closure) {
    const why = entry.explicit ? 'chosen' : `required by ${entry.requiredBy.join(', ')}`;
    lines.push(`  ${String(entry.effectivePriority).padStart(6)}  ${entry.module.padEnd(24)} ${entry.variety.padEnd(12)} ${entry.category.padEnd(12)} ${why}`);
  }
  for (const problem of preview.conflicts) lines.push(`  conflict: ${problem.message}`);
  for (const problem of preview.warnings) lines.push(`  warning: ${problem.message}`);
  const { modules, packages, paths } = preview.footprint;
  lines.push(`  footprint: ${modules.length} modules, ${packages.length} packages, ${paths.length} paths`);
  return `${lines.join('\n')}\n`;
}

/** Human lines for changes made or planned. */
export function formatChanges(report: readonly ReportedChange[], dryRun: boolean): string {
  if (report.length === 0) return 'nothing to change: the catalog already says this\n';
  const verb = { add: dryRun ? 'would add' : 'added', update: dryRun ? 'would update' : 'updated', remove: dryRun ? 'would remove' : 'removed' };
  return `${report.map((change) => `${verb[change.type]} ${change.kind} ${change.key}`).join('\n')}\n`;
}

/** Rethrows a template that does not compose as a refusal with its problems. */
export function explainApplyError(error: unknown): never {
  if (error instanceof TemplateNotComposableError) throw new CatalogFileError(`${error.message} (see powernode template preview ${error.preview.template})`);
  if (error instanceof CatalogInputError) throw new CatalogFileError(error.message);
  throw error;
}

/** One line about a catalog value, for lists. */
export function describeValue<K extends DesiredKind>(kind: K, value: DesiredValues[K]): string {
  switch (kind) {
    case 'module': {
      const m = value as DesiredValues['module'];
      return `${m.name.padEnd(24)} ${m.variety.padEnd(12)} ${`${m.category.name}/${m.category.position}`.padEnd(16)} priority ${m.priority}${m.parent === undefined ? '' : `, child of ${m.parent}`}`;
    }
    case 'template': {
      const t = value as DesiredValues['template'];
      return `${t.name.padEnd(24)} ${t.modules.map((entry) => (entry.enabled ? entry.module : `(${entry.module})`)).join(', ')}`;
    }
    case 'pool': {
      const p = value as DesiredValues['pool'];
      return `${p.name.padEnd(24)} template ${p.template}, target ${p.target} (min ${p.min}, max ${p.max}), ${p.lifecycle}, ${p.status}`;
    }
    case 'assignment': {
      const a = value as DesiredValues['assignment'];
      return `${`${a.node}:${a.module}`.padEnd(48)} ${a.enabled ? 'enabled' : 'disabled'}${a.template === undefined ? ', by hand' : `, from template ${a.template}`}`;
    }
    default:
      return desiredKeyOf(kind, value);
  }
}
