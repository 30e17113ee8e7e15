import { createHash } from 'node:crypto';
import { CATALOG_LIMITS } from './limits.ts';
import { type MaskInput, maskLineNumbers } from './mask.ts';
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
  return fingerprint(filter, packageSpec, isAscii(filter));
}

/** ASCII text has the same bytes in latin1 as in UTF-8, and hashing it as latin1 skips a slow encoding pass. */
function fingerprint(filter: string, packageSpec: readonly string[], ascii: boolean): string {
  const packages = packageSpec.length === 0 ? '' : `${packageSpec.join('\n')}\n`;
  return createHash('sha256').update(filter, ascii ? 'latin1' : 'utf8').update('|').update(packages, 'utf8').digest('hex');
}

const ASCII = /^[\x00-\x7f]*$/;

function isAscii(text: string): boolean {
  return ASCII.test(text);
}

/**
 * The filter of every module among `neighbours` (see {@link effectiveMasks}), in name order.
 * Refuses, with {@link CompositionTooLargeError}, more than `CATALOG_LIMITS.filterLinesMax` rules in all.
 */
export function composeFilters(neighbours: readonly FilterInput[]): ModuleFilter[] {
  const includes = neighbours.reduce((sum, module) => sum + module.fileSpec.length, 0);
  const { table, masks } = maskLineNumbers(neighbours, CATALOG_LIMITS.filterLinesMax - includes);
  // Each distinct exclude rule is made once, all of them in one string in line-number order, so
  // a run of consecutive line numbers in a mask is one slice of it: a filter is joined from a
  // few slices rather than a string per line. Whether all text is ASCII is known from the
  // distinct lines, without scanning every filter.
  const excludeRules = Array.from({ length: table.size }, (_, id) => `- ${table.line(id)}\n`);
  const allRules = excludeRules.join('');
  const ruleStarts = new Int32Array(table.size + 1);
  for (let id = 0; id < table.size; id++) ruleStarts[id + 1] = ruleStarts[id]! + excludeRules[id]!.length;
  const ascii = excludeRules.every(isAscii) && neighbours.every((module) => module.fileSpec.every(isAscii));
  return [...neighbours]
    .sort((a, b) => compareText(a.name, b.name))
    .map((module) => {
      const ids = masks.get(module.name)!;
      const parts: string[] = [];
      for (let first = 0; first < ids.length; ) {
        let last = first;
        while (last + 1 < ids.length && ids[last + 1] === ids[last]! + 1) last++;
        parts.push(allRules.slice(ruleStarts[ids[first]!], ruleStarts[ids[last]! + 1]));
        first = last + 1;
      }
      parts.push(filterText([], module.fileSpec));
      const filter = parts.join('');
      return { module: module.name, filter, fingerprint: fingerprint(filter, module.packageSpec, ascii) };
    });
}

/** One fingerprint for a set of module filters: SHA-256 of `module fingerprint` lines in name order. */
export function compositionFingerprint(filters: readonly ModuleFilter[]): string {
  const hash = createHash('sha256');
  for (const entry of [...filters].sort((a, b) => compareText(a.module, b.module))) hash.update(`${entry.module} ${entry.fingerprint}\n`);
  return hash.digest('hex');
}
