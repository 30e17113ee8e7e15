import { type Hash, createHash } from 'node:crypto';
import { CATALOG_LIMITS } from './limits.ts';
import { type LineRuns, type LineTable, type MaskInput, maskLineNumbers } from './mask.ts';
import { compareText } from './order.ts';

/** What a module's filter is made from. */
export interface FilterInput extends MaskInput {
  readonly packageSpec: readonly string[];
}

/** The rsync filter that carves one module's blob out of a build root, and its fingerprint. */
export interface ModuleFilter {
  readonly module: string;
  /** `- excluded…`, then `+ included…`, then `- *`, one rule a line. */
  readonly filter: string;
  /** SHA-256 (hex) of the filter and the package list: the module's build cache key. */
  readonly fingerprint: string;
}

/**
 * The original's `rsync_spec`: the effective mask as excludes, the (effective) fileSpec as
 * includes, then `- *` so nothing else is taken.
 */
export function filterText(mask: readonly string[], fileSpec: readonly string[]): string {
  let text = '';
  for (const line of mask) text += `- ${line}\n`;
  for (const line of fileSpec) text += `+ ${line}\n`;
  return `${text}- *\n`;
}

/** The original's `RsyncSpecCompiler` fingerprint: SHA-256 of `filter|packages` (UTF-8), one package a line. */
export function filterFingerprint(filter: string, packageSpec: readonly string[]): string {
  // ASCII text has the same bytes in latin1 as in UTF-8, and hashing it as latin1 skips a slow encoding pass.
  return createHash('sha256').update(filter, ASCII.test(filter) ? 'latin1' : 'utf8').update(fingerprintTail(packageSpec), 'utf8').digest('hex');
}

/** What the fingerprint hashes after the filter: `|`, then the packages, one a line. */
function fingerprintTail(packageSpec: readonly string[]): string {
  return packageSpec.length === 0 ? '|' : `|${packageSpec.join('\n')}\n`;
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * The filter of every module among `neighbours` (see {@link effectiveMasks}), in name order.
 * Refuses, with {@link CompositionTooLargeError}, more than `CATALOG_LIMITS.filterLinesMax` rules in all.
 */
export function composeFilters(neighbours: readonly FilterInput[]): ModuleFilter[] {
  const includes = neighbours.reduce((sum, module) => sum + module.fileSpec.length, 0);
  const { table, masks } = maskLineNumbers(neighbours, CATALOG_LIMITS.filterLinesMax - includes);
  const rules = new ExcludeRules(table);
  const modules = [...neighbours].sort((a, b) => compareText(a.name, b.name));
  const excludes = modules.map((module) => masks.get(module.name)!);
  const includeRules = modules.map((module) => filterText([], module.fileSpec));
  const fingerprints = fingerprintsOf(rules, excludes, (index, hash) => {
    hash.update(includeRules[index]!, 'utf8').update(fingerprintTail(modules[index]!.packageSpec), 'utf8');
  });
  return modules.map((module, index) => ({ module: module.name, filter: rules.text(excludes[index]!) + includeRules[index]!, fingerprint: fingerprints[index]! }));
}

/**
 * Every distinct exclude rule (`- line\n`) once, in line-number order, as one string and as its
 * UTF-8 bytes: a run of consecutive line numbers in a mask is one slice of either, so a filter's
 * excludes are a few slices rather than a string per line, and they are hashed from the bytes
 * without being encoded again for every module.
 */
class ExcludeRules {
  private readonly all: string;
  /** Where each rule starts in `all`, and where the last one ends. */
  private readonly starts: Int32Array;
  private readonly bytes: Buffer;
  /** Where each rule starts in `bytes`, and where the last one ends. */
  private readonly byteStarts: Int32Array;

  constructor(table: LineTable) {
    const rules = Array.from({ length: table.size }, (_, id) => `- ${table.line(id)}\n`);
    this.all = rules.join('');
    this.starts = new Int32Array(rules.length + 1);
    for (let id = 0; id < rules.length; id++) this.starts[id + 1] = this.starts[id]! + rules[id]!.length;
    // Every rule ends in a line break, so the bytes of a slice of rules are the slice of the bytes of all.
    this.bytes = Buffer.from(this.all, 'utf8');
    if (this.bytes.length === this.all.length) this.byteStarts = this.starts;
    else {
      this.byteStarts = new Int32Array(rules.length + 1);
      for (let id = 0; id < rules.length; id++) this.byteStarts[id + 1] = this.byteStarts[id]! + Buffer.byteLength(rules[id]!, 'utf8');
    }
  }

  /** The rules of a mask (as {@link LineRuns}), one a line. */
  text(runs: LineRuns): string {
    // Concatenated, not joined: the filter is a rope of slices of `all` until something reads it.
    let text = '';
    for (let at = 0; at < runs.length; at += 2) text += this.all.slice(this.starts[runs[at]!], this.starts[runs[at + 1]!]);
    return text;
  }

  /** Feeds `hash` the bytes of a mask's rules from its `from`-th rule up to (not including) its `to`-th. */
  hash(hash: Hash, runs: LineRuns, from: number, to: number): void {
    let position = 0;
    for (let at = 0; at < runs.length && position < to; at += 2) {
      const first = runs[at]!;
      const length = runs[at + 1]! - first;
      const start = Math.max(from - position, 0);
      const end = Math.min(to - position, length);
      if (start < end) hash.update(this.bytes.subarray(this.byteStarts[first + start], this.byteStarts[first + end]));
      position += length;
    }
  }
}

/**
 * Each module's fingerprint (see {@link filterFingerprint}), its excludes `excludes[index]` fed
 * from `rules` and the rest by `finish`. Masks share long beginnings (every neighbour's
 * protectedSpec comes first in most), and SHA-256 over a shared beginning is computed once: the
 * masks are taken in sorted order, where what a mask shares with any later one it shares with
 * each between, and the hash state is kept at every length a later mask shares with the current.
 */
function fingerprintsOf(rules: ExcludeRules, excludes: readonly LineRuns[], finish: (index: number, hash: Hash) => void): string[] {
  const order = excludes.map((_, index) => index).sort((a, b) => compareRuns(excludes[a]!, excludes[b]!));
  // shared[at]: how many lines the mask at `at` in that order begins with alike with the next.
  const shared = order.slice(0, -1).map((index, at) => sharedLength(excludes[index]!, excludes[order[at + 1]!]!));
  // What the mask at `at` shares with a later one is the least of `shared` between them, so the
  // lengths it shares with later ones are shared[at], then shared at the next smaller, and so on.
  const nextSmaller = new Int32Array(shared.length).fill(shared.length);
  const waiting: number[] = [];
  shared.forEach((length, at) => {
    while (waiting.length > 0 && shared[waiting[waiting.length - 1]!]! > length) nextSmaller[waiting.pop()!] = at;
    waiting.push(at);
  });
  const fingerprints: string[] = new Array<string>(excludes.length);
  // Hash states over beginnings of the current mask, shortest first.
  const kept: { readonly length: number; readonly hash: Hash }[] = [{ length: 0, hash: createHash('sha256') }];
  for (let at = 0; at < order.length; at++) {
    const index = order[at]!;
    const runs = excludes[index]!;
    if (at > 0) while (kept[kept.length - 1]!.length > shared[at - 1]!) kept.pop();
    const start = kept[kept.length - 1]!;
    // The lengths this mask shares with later ones that no kept state covers, longest first.
    const lengths: number[] = [];
    for (let next = at; next < shared.length && shared[next]! > start.length; next = nextSmaller[next]!) lengths.push(shared[next]!);
    const hash = start.hash.copy();
    let hashed = start.length;
    for (const length of lengths.reverse()) {
      rules.hash(hash, runs, hashed, length);
      kept.push({ length, hash: hash.copy() });
      hashed = length;
    }
    rules.hash(hash, runs, hashed, Infinity);
    finish(index, hash);
    fingerprints[index] = hash.digest('hex');
  }
  return fingerprints;
}

/** How many lines two masks begin with alike. */
function sharedLength(a: LineRuns, b: LineRuns): number {
  let length = 0;
  for (let at = 0; at < a.length && at < b.length && a[at] === b[at]; at += 2) {
    length += Math.min(a[at + 1]!, b[at + 1]!) - a[at]!;
    if (a[at + 1] !== b[at + 1]) break;
  }
  return length;
}

/** The order of two masks' line numbers, compared one by one (a mask before any it begins). */
function compareRuns(a: LineRuns, b: LineRuns): number {
  for (let at = 0; ; at += 2) {
    if (at === a.length || at === b.length) return (a.length - at) - (b.length - at);
    if (a[at] !== b[at]) return a[at]! - b[at]!;
    const aEnd = a[at + 1]!;
    const bEnd = b[at + 1]!;
    // The mask whose run stops first goes on with a higher number, if it goes on at all.
    if (aEnd < bEnd) return at + 2 === a.length ? -1 : 1;
    if (bEnd < aEnd) return at + 2 === b.length ? 1 : -1;
  }
}

/** One fingerprint for a set of module filters: SHA-256 of `module fingerprint` lines in name order. */
export function compositionFingerprint(filters: readonly ModuleFilter[]): string {
  const hash = createHash('sha256');
  for (const entry of [...filters].sort((a, b) => compareText(a.module, b.module))) hash.update(`${entry.module} ${entry.fingerprint}\n`);
  return hash.digest('hex');
}
