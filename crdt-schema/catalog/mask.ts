import type { Module } from './module.ts';
import { compareText } from './order.ts';

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
  return new Map(
    [...masks].map(([name, runs]) => {
      const lines: string[] = [];
      for (let at = 0; at < runs.length; at += 2) for (let id = runs[at]!; id < runs[at + 1]!; id++) lines.push(table.line(id));
      return [name, lines];
    }),
  );
}

/**
 * A mask's sorted line numbers (of a {@link LineTable}) as runs of consecutive numbers: the first
 * number of each run, then the number after its last, run after run.
 */
export type LineRuns = Int32Array;

/**
 * {@link effectiveMasks} as {@link LineRuns} of a {@link LineTable}, for building filters
 * without a string per line. Done once for all modules rather than module by module: the modules
 * are walked from the highest priority down while the lines higher modules push down accumulate,
 * with the lines some neighbour protects, as runs; each mask is those runs with the module's own
 * mask added and the lines only it protects taken out (unless pushed down or masked), in one merge
 * over the runs. So no mask is sorted or merged on its own, and no mask costs a pass over every line.
 */
export function maskLineNumbers(neighbours: readonly MaskInput[], linesMax: number): { table: LineTable; masks: Map<string, LineRuns> } {
  const table = new LineTable(neighbours);
  // How many times the neighbours protect each line (a module listing a line twice counts twice).
  const protectedCount = new Uint32Array(table.size);
  for (const module of neighbours) for (const id of table.ids(module.protectedSpec)) protectedCount[id]!++;
  const carried = new Uint8Array(table.size);
  const protectedIds: number[] = [];
  for (let id = 0; id < table.size; id++) if (protectedCount[id]! > 0) protectedIds.push(id);
  // The lines in the mask of a module that nothing of its own changes: carried down, or protected by some neighbour.
  let common = editRuns(new Int32Array(0), protectedIds, []);
  const masks = new Map<string, LineRuns>();
  let lines = 0;
  for (const group of priorityGroups(neighbours)) {
    for (const module of group) {
      const ownMask = sortedIds(table.ids(module.mask));
      // A line only this module protects is its own claim, not a neighbour's: out, unless carried down or masked.
      const ownClaims = sortedIds(table.ids(module.protectedSpec).filter((id) => protectedCount[id] === 1 && carried[id] === 0));
      const mask = editRuns(common, ownMask, ownClaims);
      lines += runsLength(mask);
      if (lines > linesMax) throw new CompositionTooLargeError(`the composition's filters would hold more than ${linesMax} lines; split it into smaller templates`);
      masks.set(module.name, mask);
    }
    // Pushed down only after the whole group: equal priorities do not carry into each other.
    const pushed: number[] = [];
    for (const module of group) {
      for (const id of table.ids(module.immutable ? [...module.mask, ...module.fileSpec, ...module.dependencySpec] : module.mask)) {
        carried[id] = 1;
        pushed.push(id);
      }
    }
    common = editRuns(common, sortedIds(pushed), []);
  }
  return { table, masks };
}

/** `ids` sorted, in place. */
function sortedIds(ids: number[]): number[] {
  return ids.sort((a, b) => a - b);
}

/** How many line numbers `runs` holds. */
function runsLength(runs: LineRuns): number {
  let length = 0;
  for (let at = 0; at < runs.length; at += 2) length += runs[at + 1]! - runs[at]!;
  return length;
}

/**
 * `runs` with the line numbers `add` added and then those of `remove` that are not in `add` taken
 * out; `add` and `remove` sorted, repeats allowed.
 */
function editRuns(runs: LineRuns, add: readonly number[], remove: readonly number[]): LineRuns {
  // Each added number and each removed one can end a run or start one.
  const out = new Int32Array(runs.length + 2 * (add.length + remove.length));
  let length = 0;
  // Appends [first, end) after what is there (never before its start), joining it to the last run it touches.
  const append = (first: number, end: number): void => {
    if (length > 0 && first <= out[length - 1]!) out[length - 1] = Math.max(out[length - 1]!, end);
    else {
      out[length++] = first;
      out[length++] = end;
    }
  };
  let added = 0;
  let removed = 0;
  for (let at = 0; at < runs.length; at += 2) {
    const runEnd = runs[at + 1]!;
    let first = runs[at]!;
    for (; added < add.length && add[added]! < first; added++) append(add[added]!, add[added]! + 1);
    for (; removed < remove.length && remove[removed]! < runEnd; removed++) {
      const id = remove[removed]!;
      if (id < first) continue;
      // Kept when it is added too (the added numbers in this run are all at or after `first`).
      while (added < add.length && add[added]! < id) added++;
      if (added < add.length && add[added] === id) continue;
      if (first < id) append(first, id);
      first = id + 1;
    }
    if (first < runEnd) append(first, runEnd);
  }
  for (; added < add.length; added++) append(add[added]!, add[added]! + 1);
  return out.slice(0, length);
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
    const lines = new Set<string>();
    for (const module of modules) {
      for (const line of module.mask) lines.add(line);
      for (const line of module.protectedSpec) lines.add(line);
      if (module.immutable) for (const line of [...module.fileSpec, ...module.dependencySpec]) lines.add(line);
    }
    // The default sort compares strings by code units: compareText's order, without a call per comparison.
    this.sortedLines = [...lines].sort();
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
