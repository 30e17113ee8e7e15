import { listOf, textOf } from './input.ts';
import { sortedUnique } from './order.ts';
import { CATALOG_LIMITS } from './limits.ts';

/** The five glob-line fields of a module. */
export const SPEC_FIELDS = ['mask', 'fileSpec', 'packageSpec', 'dependencySpec', 'protectedSpec'] as const;
export type SpecField = (typeof SPEC_FIELDS)[number];

/**
 * Checks one spec field: a list of at most `specLinesMax` glob lines of at most
 * `specLineCharsMax` characters, none holding a line break (which would smuggle an extra rule into
 * the rsync filter). Like the original's `encode_spec`, lines are trimmed, empty ones dropped,
 * duplicates merged and the rest sorted, so a spec means the same whatever order it was written in.
 */
export function specLinesOf(value: unknown, path: string): readonly string[] {
  const lines = listOf(value, path, CATALOG_LIMITS.specLinesMax, (entry, entryPath) => textOf(entry, entryPath, CATALOG_LIMITS.specLineCharsMax).trim());
  return sortedUnique(lines.filter((line) => line.length > 0));
}

/**
 * The path a glob line covers, for overlap checks: the line without a trailing `/**` or `/*`, as
 * the original's `paths_overlap?` strips it. `/etc/**` and `/etc/*` both cover `/etc`.
 */
export function overlapPath(line: string): string {
  if (line.endsWith('/**')) return line.slice(0, -3);
  if (line.endsWith('/*')) return line.slice(0, -2);
  return line;
}

/**
 * The original's cheap prefix overlap (not a full rsync glob matcher): two lines overlap when
 * their paths are equal or one lies under the other (`/etc` and `/etc/ssh/sshd_config`).
 */
export function pathsOverlap(a: string, b: string): boolean {
  const left = overlapPath(a);
  const right = overlapPath(b);
  return left === right || left.startsWith(`${right}/`) || right.startsWith(`${left}/`);
}
