/**
 * Small typed validators for values decoded from the network or read from files. Each shape checks
 * a value and returns it typed, or throws {@link ShapeError} naming the path of the first bad field.
 * Only plain values pass: objects built by CBOR tags (dates, regexps, sets) fail.
 */

/** Thrown when a value does not have the expected shape. */
export class ShapeError extends Error {
  override name = 'ShapeError';
  readonly path: string;

  constructor(path: string, problem: string) {
    super(`${path === '' ? 'value' : path}: ${problem}`);
    this.path = path;
  }
}

export interface Shape<T> {
  /** Returns `value` typed as T, or throws {@link ShapeError}. */
  check(value: unknown, path?: string): T;
  /** True for shapes made by {@link optional}. */
  readonly optional?: boolean;
}

export type Infer<S> = S extends Shape<infer T> ? T : never;

export interface StringLimits {
  readonly min?: number;
  readonly max: number;
  readonly pattern?: RegExp;
}

export function string(limits: StringLimits): Shape<string> {
  return {
    check(value, path = '') {
      if (typeof value !== 'string') throw new ShapeError(path, `expected a string, got ${kindOf(value)}`);
      if (value.length > limits.max) throw new ShapeError(path, `string longer than ${limits.max}`);
      if (value.length < (limits.min ?? 0)) throw new ShapeError(path, `string shorter than ${limits.min}`);
      if (limits.pattern !== undefined && !limits.pattern.test(value)) throw new ShapeError(path, `does not match ${limits.pattern}`);
      return value;
    },
  };
}

export function bytes(limits: { readonly min?: number; readonly max: number }): Shape<Uint8Array> {
  return {
    check(value, path = '') {
      if (!(value instanceof Uint8Array)) throw new ShapeError(path, `expected bytes, got ${kindOf(value)}`);
      if (value.length > limits.max) throw new ShapeError(path, `more than ${limits.max} bytes`);
      if (value.length < (limits.min ?? 0)) throw new ShapeError(path, `fewer than ${limits.min} bytes`);
      return value;
    },
  };
}

/** A non-negative safe integer, at most `max`. */
export function uint(max = Number.MAX_SAFE_INTEGER): Shape<number> {
  return {
    check(value, path = '') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new ShapeError(path, `expected a non-negative integer, got ${kindOf(value)}`);
      }
      if (value > max) throw new ShapeError(path, `integer above ${max}`);
      return value;
    },
  };
}

export function boolean(): Shape<boolean> {
  return {
    check(value, path = '') {
      if (typeof value !== 'boolean') throw new ShapeError(path, `expected a boolean, got ${kindOf(value)}`);
      return value;
    },
  };
}

export function literal<const T extends string | number | boolean>(expected: T): Shape<T> {
  return {
    check(value, path = '') {
      if (value !== expected) throw new ShapeError(path, `expected ${JSON.stringify(expected)}`);
      return expected;
    },
  };
}

export function oneOf<const T extends readonly (string | number)[]>(values: T): Shape<T[number]> {
  return {
    check(value, path = '') {
      if (!values.includes(value as string | number)) throw new ShapeError(path, `expected one of ${values.join(', ')}`);
      return value as T[number];
    },
  };
}

export function array<T>(item: Shape<T>, limits: { readonly max: number; readonly min?: number }): Shape<readonly T[]> {
  return {
    check(value, path = '') {
      if (!Array.isArray(value)) throw new ShapeError(path, `expected an array, got ${kindOf(value)}`);
      if (value.length > limits.max) throw new ShapeError(path, `more than ${limits.max} items`);
      if (value.length < (limits.min ?? 0)) throw new ShapeError(path, `fewer than ${limits.min} items`);
      return value.map((element, i) => checkPart(item, element, path, i));
    },
  };
}

export function tuple<const T extends readonly Shape<unknown>[]>(items: T): Shape<{ -readonly [K in keyof T]: Infer<T[K]> }> {
  return {
    check(value, path = '') {
      if (!Array.isArray(value) || value.length !== items.length) {
        throw new ShapeError(path, `expected an array of ${items.length}, got ${kindOf(value)}`);
      }
      return items.map((item, i) => checkPart(item, value[i], path, i)) as { -readonly [K in keyof T]: Infer<T[K]> };
    },
  };
}

/** Marks an object field as optional (absent or undefined). */
export function optional<T>(inner: Shape<T>): Shape<T | undefined> & { readonly optional: true } {
  return {
    optional: true,
    check(value, path = '') {
      return value === undefined || value === null ? undefined : inner.check(value, path);
    },
  };
}

type ObjectFields = Record<string, Shape<unknown>>;
type RequiredKeys<F extends ObjectFields> = { [K in keyof F]: F[K] extends { optional: true } ? never : K }[keyof F];
type OptionalKeys<F extends ObjectFields> = Exclude<keyof F, RequiredKeys<F>>;
export type ObjectOf<F extends ObjectFields> = { [K in RequiredKeys<F>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Infer<F[K]> };

/** A plain object with exactly these fields; unknown fields are refused. */
export function object<F extends ObjectFields>(fields: F): Shape<ObjectOf<F>> {
  const names = Object.keys(fields);
  return {
    check(value, path = '') {
      if (!isPlainObject(value)) throw new ShapeError(path, `expected an object, got ${kindOf(value)}`);
      // Own enumerable keys, in Object.keys order, without building that array (the prototype is
      // Object.prototype or null, so for…in meets no others unless Object.prototype was extended).
      for (const key in value) {
        if (!Object.hasOwn(fields, key) && Object.hasOwn(value, key)) throw new ShapeError(joinPath(path, key), 'unexpected field');
      }
      const out: Record<string, unknown> = {};
      for (const name of names) {
        const checked = checkPart(fields[name]!, value[name], path, name);
        if (checked !== undefined) out[name] = checked;
      }
      return out as ObjectOf<F>;
    },
  };
}

/** A plain object used as a map: every key passes `key`, every value passes `item`. */
export function record<T>(key: Shape<string>, item: Shape<T>, limits: { readonly maxKeys: number }): Shape<Record<string, T>> {
  return {
    check(value, path = '') {
      if (!isPlainObject(value)) throw new ShapeError(path, `expected an object, got ${kindOf(value)}`);
      const keys = Object.keys(value);
      if (keys.length > limits.maxKeys) throw new ShapeError(path, `more than ${limits.maxKeys} keys`);
      const out: Record<string, T> = {};
      for (const k of keys) {
        checkPart(key, k, path, k);
        out[k] = checkPart(item, value[k], path, k);
      }
      return out;
    },
  };
}

/**
 * `value`, a part of the value at `path` (its field or key `part`, or its item at index `part`),
 * checked by `shape`. Checked at the root path first, so that no path string is built for every
 * field and item of every message (most of a small message's allocations); a part that fails is
 * checked again at its real path, which throws the same problem named by that path.
 */
function checkPart<T>(shape: Shape<T>, value: unknown, path: string, part: string | number): T {
  try {
    return shape.check(value);
  } catch (error) {
    if (error instanceof ShapeError) shape.check(value, typeof part === 'number' ? `${path}[${part}]` : joinPath(path, part));
    throw error;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function joinPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return typeof value;
}
