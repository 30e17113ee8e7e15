/** A storage key: a tuple of non-empty strings without NUL characters. Tuples sort part by part. */
export type StorageKey = readonly string[];

/** One write in an atomic {@link Storage.batch}. */
export type StorageOp =
  | { readonly type: 'put'; readonly key: StorageKey; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: StorageKey };

/** An entry returned by {@link Storage.range}. */
export interface StorageEntry {
  readonly key: StorageKey;
  readonly value: Uint8Array;
}

export interface BatchOptions {
  /** Wait until the batch is on stable storage (fsync), not only handed to the OS. */
  readonly sync?: boolean;
}

/**
 * Binary key-value storage. Writes are durable across a process crash once their promise
 * resolves; `sync` extends that to a machine crash.
 */
export interface Storage {
  get(key: StorageKey): Promise<Uint8Array | undefined>;
  put(key: StorageKey, value: Uint8Array): Promise<void>;
  delete(key: StorageKey): Promise<void>;
  /** Applies every op or none. */
  batch(ops: readonly StorageOp[], options?: BatchOptions): Promise<void>;
  /** Every entry whose key starts with `prefix` (a strict prefix: not the prefix itself), in key order. */
  range(prefix: StorageKey, options?: { readonly limit?: number }): Promise<StorageEntry[]>;
  /** Deletes every entry whose key starts with `prefix`. */
  deleteRange(prefix: StorageKey): Promise<void>;
  close(): Promise<void>;
}

/** Thrown when a key is not a tuple of non-empty strings without NUL characters. */
export class InvalidStorageKeyError extends Error {
  override name = 'InvalidStorageKeyError';
}

/** Thrown when storage is used after close. */
export class StorageClosedError extends Error {
  override name = 'StorageClosedError';
}

const SEPARATOR = '\u0000';

/** Encodes a key so that string order of encodings equals tuple order. */
export function encodeStorageKey(key: StorageKey): string {
  if (key.length === 0) throw new InvalidStorageKeyError('a storage key needs at least one part');
  for (const part of key) {
    if (typeof part !== 'string' || part.length === 0 || part.includes(SEPARATOR)) {
      throw new InvalidStorageKeyError(`storage key part ${JSON.stringify(part)} must be a non-empty string without NUL`);
    }
  }
  return key.join(SEPARATOR);
}

export function decodeStorageKey(encoded: string): StorageKey {
  return encoded.split(SEPARATOR);
}

/** The half-open range [gte, lt) of encoded keys strictly under `prefix`. */
export function prefixBounds(prefix: StorageKey): { gte: string; lt: string } {
  const base = encodeStorageKey(prefix);
  return { gte: base + SEPARATOR, lt: base + '\u0001' };
}
