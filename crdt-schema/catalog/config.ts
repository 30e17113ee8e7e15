import { fail } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';

/** A JSON value as a module's config holds it. */
export type ConfigValue = null | boolean | number | string | readonly ConfigValue[] | ConfigObject;
/** A JSON object: a module's config, or a template module's override of it. */
export interface ConfigObject {
  readonly [key: string]: ConfigValue;
}

/**
 * Checks a config: a JSON object (finite numbers, no functions, dates or other classes) of at most
 * `CATALOG_LIMITS.configBytesMax` bytes as JSON and `configDepthMax` levels. Absent is `{}`.
 */
export function configOf(value: unknown, path: string): ConfigObject {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  checkValue(value, path, 1);
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > CATALOG_LIMITS.configBytesMax) fail(path, `must be at most ${CATALOG_LIMITS.configBytesMax} bytes as JSON (got ${bytes})`);
  return value as ConfigObject;
}

function checkValue(value: unknown, path: string, depth: number): void {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(path, 'numbers in a config must be finite');
    return;
  }
  if (typeof value !== 'object') fail(path, `a config holds only JSON values (got ${typeof value})`);
  if (depth > CATALOG_LIMITS.configDepthMax) fail(path, `a config nests at most ${CATALOG_LIMITS.configDepthMax} levels`);
  if (Array.isArray(value)) {
    value.forEach((entry, index) => checkValue(entry, `${path}[${index}]`, depth + 1));
    return;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) fail(path, 'a config holds only plain objects');
  for (const [key, entry] of Object.entries(value)) {
    // A `__proto__` key would set the prototype of the merged object instead of a field.
    if (key === '__proto__') fail(path, 'a config key may not be "__proto__"');
    checkValue(entry, `${path}.${key}`, depth + 1);
  }
}

/**
 * A template module's config laid over its module's config, as the original's `deep_merge`:
 * objects merge key by key, anything else (lists included) in the override replaces the base.
 */
export function mergeConfig(base: ConfigObject, override: ConfigObject): ConfigObject {
  const out: Record<string, ConfigValue> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const under = out[key];
    out[key] = isObject(under) && isObject(value) ? mergeConfig(under, value) : value;
  }
  return out;
}

function isObject(value: ConfigValue | undefined): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when two configs hold the same values, whatever the order of their keys. */
export function configEquals(a: ConfigValue, b: ConfigValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((entry, index) => configEquals(entry, b[index]!));
  }
  const left = a as ConfigObject;
  const right = b as ConfigObject;
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((key) => Object.hasOwn(right, key) && configEquals(left[key]!, right[key]!));
}
