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
  return new Map([...masks].map(([name, ids]) => [name, Array.from(ids, (id) => table.line(id))]));
}

/**
 * {@link effectiveMasks} as sorted line numbers of a {@link LineTable}, for building filters
 * without a string per line. Done once for all modules rather than module by module: the modules
 * are walked from the highest priority down while what higher modules push down accumulates (a
 * flag per line), and each mask is read off in one pass over the table's lines (which are numbered
 * in sorted order): a line is in it when a higher module pushed it down, the module masks it
 * itself, or a neighbour protects it. So no mask is sorted or merged on its own.
 */
export function maskLineNumbers(neighbours: readonly MaskInput[], linesMax: number): { table: LineTable; masks: Map<string, Int32Array> } {
  const table = new LineTable(neighbours);
  const size = table.size;
  // How many times the neighbours protect each line (a module listing a line twice counts twice).
  const protectedCount = new Uint32Array(size);
  for (const module of neighbours) for (const id of table.ids(module.protectedSpec)) protectedCount[id]!++;
  // Per line: IN when it is in the mask of a module that nothing of its own changes (carried down, or
  // protected by some neighbour); OWN_MASK and OWN_CLAIM mark the current module's own mask and
  // the lines only it protects, set and cleared around each module.
  const IN = 1;
  const OWN_MASK = 2;
  const OWN_CLAIM = 4;
  const state = new Uint8Array(size);
  for (let id = 0; id < size; id++) if (protectedCount[id]! > 0) state[id] = IN;
  const carried = new Uint8Array(size);
  const scratch = new Int32Array(size);
  const masks = new Map<string, Int32Array>();
  let lines = 0;
  for (const group of priorityGroups(neighbours)) {
    for (const module of group) {
      const ownMask = table.ids(module.mask);
      // A line only this module protects is its own claim, not a neighbour's: out, unless carried down or masked.
      const ownClaims = table.ids(module.protectedSpec).filter((id) => protectedCount[id] === 1 && carried[id] === 0);
      for (const id of ownClaims) state[id] = OWN_CLAIM;
      for (const id of ownMask) state[id]! |= OWN_MASK;
      let length = 0;
      for (let id = 0; id < size; id++) {
        const flags = state[id]!;
        if ((flags & (IN | OWN_MASK)) !== 0) scratch[length++] = id;
      }
      for (const id of ownMask) state[id]! &= ~OWN_MASK;
      // Each claim was IN before (a protected line): put it back for the next module.
      for (const id of ownClaims) state[id] = IN;
      lines += length;
      if (lines > linesMax) throw new CompositionTooLargeError(`the composition's filters would hold more than ${linesMax} lines; split it into smaller templates`);
      masks.set(module.name, scratch.slice(0, length));
    }
    // Pushed down only after the whole group: equal priorities do not carry into each other.
    for (const module of group) {
      const pushed = module.immutable ? [...module.mask, ...module.fileSpec, ...module.dependencySpec] : module.mask;
      for (const id of table.ids(pushed)) {
        carried[id] = 1;
        state[id] = IN;
      }
    }
  }
  return { table, masks };
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
