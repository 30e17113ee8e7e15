import type { Module } from './module.ts';
import { compareText, sortedUnique } from './order.ts';

/** What the effective mask reads of a module; `fileSpec` is the effective one (a child's parent's dependencySpec). */
export type MaskInput = Pick<Module, 'name' | 'immutable' | 'mask' | 'fileSpec' | 'dependencySpec' | 'protectedSpec'> & { readonly effectivePriority: number };

/** Thrown when a composition's filters would pass `CATALOG_LIMITS.filterLinesMax` lines; split the template. */
export class CompositionTooLargeError extends Error {
  override name = 'CompositionTooLargeError';
}

/**
 * Each module's effective mask among `neighbours` (the modules that share its union mount: a
 * node's enabled modules, or a template's closure), exactly as the original's `effective_mask`:
 * the union, sorted and without repeats, of
 * - every other neighbour's protectedSpec, whatever its priority;
 * - the mask of every neighbour with a strictly higher effective priority;
 * - the fileSpec and dependencySpec of every such higher neighbour that is immutable;
 * - the module's own mask.
 * A module is not its own neighbour, so its own protectedSpec stays out of its own mask unless
 * another neighbour protects the same line. Refuses (before building anything large) a result of
 * more than `linesMax` lines in all.
 */
export function effectiveMasks(neighbours: readonly MaskInput[], linesMax: number): Map<string, readonly string[]> {
  const { table, masks } = maskLineNumbers(neighbours, linesMax);
  return new Map([...masks].map(([name, ids]) => [name, Array.from(ids, (id) => table.line(id))]));
}

/**
 * {@link effectiveMasks} as sorted line numbers of a {@link LineTable}, for building filters
 * without a string per line. Done once for all modules rather than module by module: the modules
 * are walked from the highest priority down while what higher modules push down accumulates, and
 * each mask is a merge of three sorted lists (neighbours' protected lines, what was pushed down,
 * the module's own mask), so no mask is sorted on its own.
 */
export function maskLineNumbers(neighbours: readonly MaskInput[], linesMax: number): { table: LineTable; masks: Map<string, Int32Array> } {
  const table = new LineTable(neighbours);
  const protectedCount = new Uint32Array(table.size);
  for (const module of neighbours) for (const id of table.ids(module.protectedSpec)) protectedCount[id]!++;
  const protectedIds = Int32Array.from(table.allIds().filter((id) => protectedCount[id]! > 0));
  let carried = new Int32Array(0);
  const masks = new Map<string, Int32Array>();
  let lines = 0;
  for (const group of priorityGroups(neighbours)) {
    for (const module of group) {
      // A line only this module protects is its own claim, not a neighbour's.
      const ownClaims = sortedIds(table, module.protectedSpec).filter((id) => protectedCount[id] === 1);
      const neighbourClaims = difference(protectedIds, ownClaims);
      const mask = union(union(neighbourClaims, carried), sortedIds(table, module.mask));
      lines += mask.length;
      if (lines > linesMax) throw new CompositionTooLargeError(`the composition's filters would hold more than ${linesMax} lines; split it into smaller templates`);
      masks.set(module.name, mask);
    }
    // Pushed down only after the whole group: equal priorities do not carry into each other.
    for (const module of group) {
      carried = union(carried, sortedIds(table, module.mask));
      if (module.immutable) carried = union(carried, sortedIds(table, [...module.fileSpec, ...module.dependencySpec]));
    }
  }
  return { table, masks };
}

/** The line numbers of `lines`, ascending, each once. */
function sortedIds(table: LineTable, lines: readonly string[]): Int32Array<ArrayBuffer> {
  const ids = Int32Array.from(table.ids(lines)).sort();
  let kept = 0;
  for (let index = 0; index < ids.length; index++) if (index === 0 || ids[index] !== ids[index - 1]) ids[kept++] = ids[index]!;
  return ids.subarray(0, kept);
}

/** The members of ascending `a` that are not in ascending `b`. */
function difference(a: Int32Array<ArrayBuffer>, b: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  if (b.length === 0) return a;
  const out = new Int32Array(a.length);
  let [j, k] = [0, 0];
  for (const x of a) {
    while (j < b.length && b[j]! < x) j++;
    if (j === b.length || b[j] !== x) out[k++] = x;
  }
  return out.subarray(0, k);
}

/** The union of two ascending lists of distinct numbers, ascending and distinct. */
function union(a: Int32Array<ArrayBuffer>, b: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out = new Int32Array(a.length + b.length);
  let [i, j, k] = [0, 0, 0];
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    out[k++] = x <= y ? x : y;
    if (x <= y) i++;
    if (y <= x) j++;
  }
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out.subarray(0, k);
}

/** Modules grouped by effective priority, highest first; each group in name order. */
function priorityGroups(modules: readonly MaskInput[]): MaskInput[][] {
  const sorted = [...modules].sort((a, b) => b.effectivePriority - a.effectivePriority || compareText(a.name, b.name));
  const groups: MaskInput[][] = [];
  for (const module of sorted) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[0]!.effectivePriority === module.effectivePriority) last.push(module);
    else groups.push([module]);
  }
  return groups;
}

/** The distinct lines that can enter a mask, numbered in sorted order, so sorting numbers sorts lines. */
export class LineTable {
  private readonly sortedLines: readonly string[];
  private readonly idOf = new Map<string, number>();

  constructor(modules: readonly MaskInput[]) {
    this.sortedLines = sortedUnique(modules.flatMap((module) => [...module.mask, ...module.protectedSpec, ...(module.immutable ? [...module.fileSpec, ...module.dependencySpec] : [])]));
    this.sortedLines.forEach((line, id) => this.idOf.set(line, id));
  }

  get size(): number {
    return this.sortedLines.length;
  }

  line(id: number): string {
    return this.sortedLines[id]!;
  }

  allIds(): number[] {
    return this.sortedLines.map((_, id) => id);
  }

  ids(lines: readonly string[]): number[] {
    return lines.map((line) => this.idOf.get(line)!);
  }
}
