import { CATALOG_LIMITS } from './limits.ts';
import { sortedUnique } from './order.ts';

/**
 * Thrown when catalog input (a module, manifest, template, pool, version, observation…) breaks a
 * rule or a limit. The message starts with the path of the offending field, e.g.
 * `module "nginx": manifest.dependencies.requires[2]: …`, and says what is allowed.
 */
export class CatalogInputError extends Error {
  override name = 'CatalogInputError';
  /** Where in the input the problem is. */
  readonly path: string;

  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.path = path;
  }
}

/** Lowercase letters, digits and `.-_`, starting and ending with a letter or digit. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;
/** A peer id or a host name: letters, digits and `.-_`, starting with a letter or digit. */
export const NODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Throws a {@link CatalogInputError} for `path`. */
export function fail(path: string, problem: string): never {
  throw new CatalogInputError(path, problem);
}

/** A plain object whose keys are all in `known` (any keys when `known` is absent); other keys are refused by name. */
export function objectOf(value: unknown, path: string, known?: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  if (known === undefined) return value as Record<string, unknown>;
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length > 0) fail(path, `unknown field ${JSON.stringify(unknown[0])}; known fields: ${known.join(', ')}`);
  return value as Record<string, unknown>;
}

/** A catalog name (module, category, capability, service, template, pool). */
export function nameOf(value: unknown, path: string): string {
  const max = CATALOG_LIMITS.nameCharsMax;
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !NAME_PATTERN.test(value)) {
    fail(path, `must be a name of 1-${max} lowercase letters, digits or ".-_", starting and ending with a letter or digit (got ${preview(value)})`);
  }
  return value;
}

/** A node reference: a peer id or a host name. */
export function nodeOf(value: unknown, path: string): string {
  const max = CATALOG_LIMITS.nodeCharsMax;
  if (typeof value !== 'string' || value.length > max || !NODE_PATTERN.test(value)) {
    fail(path, `must be a node (peer id or host name) of 1-${max} letters, digits or ".-_" (got ${preview(value)})`);
  }
  return value;
}

/** A safe integer in `[min, max]`. */
export function integerOf(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(path, `must be a whole number from ${min} to ${max} (got ${preview(value)})`);
  }
  return value;
}

/** A boolean; `fallback` when absent. */
export function booleanOf(value: unknown, path: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(path, `must be true or false (got ${preview(value)})`);
  return value;
}

/** A string matching `pattern`; the message says it must be `what`. */
export function patternOf(value: unknown, path: string, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) fail(path, `must be ${what}`);
  return value;
}

/** Text of at most `maxChars` characters with no control characters but tab. */
export function textOf(value: unknown, path: string, maxChars: number): string {
  if (typeof value !== 'string') fail(path, `must be text (got ${preview(value)})`);
  if (value.length > maxChars) fail(path, `must be at most ${maxChars} characters (got ${value.length})`);
  if (CONTROL.test(value)) fail(path, 'must not contain line breaks or other control characters');
  return value;
}

/** A list of at most `max` items, each parsed by `item` with its index in the path. */
export function listOf<T>(value: unknown, path: string, max: number, item: (entry: unknown, entryPath: string) => T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(path, 'must be a list');
  if (value.length > max) fail(path, `must have at most ${max} entries (got ${value.length})`);
  return value.map((entry, index) => item(entry, `${path}[${index}]`));
}

/** A list of names, sorted, with each name at most once. */
export function nameSetOf(value: unknown, path: string, max: number): readonly string[] {
  return sortedUnique(listOf(value, path, max, nameOf));
}

/** Refuses a list in which `keyOf` gives two items the same key. */
export function checkUnique<T>(items: readonly T[], path: string, keyOf: (item: T) => string): void {
  const seen = new Set<string>();
  for (const item of items) {
    const key = keyOf(item);
    if (seen.has(key)) fail(path, `${JSON.stringify(key)} appears more than once`);
    seen.add(key);
  }
}

/** One of `allowed`; the message lists them. */
export function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(path, `must be one of ${allowed.join(', ')} (got ${preview(value)})`);
  }
  return value as T;
}

function preview(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
