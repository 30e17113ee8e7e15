import {
  type BatchOptions,
  type Random,
  type Storage,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
  StorageClosedError,
  encodeStorageKey,
  prefixBounds,
} from '../mesh/index.ts';
import { copyOf } from './bytes.ts';

/** How long an unsynced write stays in the operating system's cache before it reaches the disk. */
const WRITEBACK_MS = 5_000;

interface Undo {
  readonly key: string;
  /** The entry before the write, or undefined when the key did not exist. */
  readonly before: StorageEntry | undefined;
  readonly atMs: number;
}

/**
 * A node's disk in the simulator: a sorted in-memory map with a crash model. A process crash
 * keeps every write whose promise resolved (the operating system holds it); a power loss also
 * loses writes that were not synced and are younger than the write-back delay, as LevelDB's
 * log without fsync would. Reads can be made to come back corrupted.
 *
 * Each process opens its own handle ({@link SimStorage.handle}); a crash kills the handle for
 * good, so code of the dead process still on the promise queue cannot write to the disk the
 * next process uses.
 */
export class SimStorage implements Storage {
  /**
   * Entries by encoded key, each with its key as given (a range hands out the same arrays: a
   * thousand nodes founded with the same records share their keys' strings, not split each).
   */
  readonly #entries = new Map<string, StorageEntry>();
  /** Encoded keys in order, for ranges. */
  readonly #keys: string[] = [];
  #undo: Undo[] = [];
  #closed = false;
  readonly #now: () => number;
  #corruption: { readonly random: Random; readonly probability: number } | undefined;
  #corruptedReads = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** A handle for one process: the same disk, closed for good when that process dies. */
  handle(): Storage & { kill(): void } {
    let dead = false;
    const check = (): void => {
      if (dead) throw new StorageClosedError('the process that opened this storage is dead');
    };
    return {
      get: async (key) => (check(), this.get(key)),
      put: async (key, value) => (check(), this.put(key, value)),
      delete: async (key) => (check(), this.delete(key)),
      batch: async (ops, options) => (check(), this.batch(ops, options)),
      range: async (prefix, options) => (check(), this.range(prefix, options)),
      deleteRange: async (prefix) => (check(), this.deleteRange(prefix)),
      close: async () => {
        dead = true;
      },
      kill: () => {
        dead = true;
      },
    };
  }

  /** Reads corrupted so far (by {@link SimStorage.corruptReads}). */
  get corruptedReads(): number {
    return this.#corruptedReads;
  }

  get size(): number {
    return this.#entries.size;
  }

  async get(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    const value = this.#entries.get(encodeStorageKey(key));
    return value === undefined ? undefined : this.#read(value.value);
  }

  async put(key: StorageKey, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  async delete(key: StorageKey): Promise<void> {
    await this.batch([{ type: 'delete', key }]);
  }

  async batch(ops: readonly StorageOp[], options?: BatchOptions): Promise<void> {
    this.#assertOpen();
    const encoded = ops.map((op) => encodeStorageKey(op.key));
    const now = this.#now();
    if (options?.sync === true) this.#undo = [];
    else this.#undo = this.#undo.filter((u) => now - u.atMs < WRITEBACK_MS);
    ops.forEach((op, i) => {
      const key = encoded[i]!;
      if (options?.sync !== true) this.#undo.push({ key, before: this.#entries.get(key), atMs: now });
      if (op.type === 'put') this.#set(key, { key: op.key, value: op.value.slice() });
      else this.#remove(key);
    });
    // A synced batch also makes everything before it durable (one log, fsynced to its end).
  }

  /**
   * Writes `entries` as already synced, keeping their bytes as given (shared, never changed: every
   * read copies), for a fleet founded offline: a thousand members each holding the same thousand
   * records need them once, and sorted once rather than inserted one by one.
   */
  load(entries: readonly StorageEntry[]): void {
    this.#assertOpen();
    let added = false;
    for (const entry of entries) {
      // Encoded once per entry, so every storage loaded with it shares the key's string too.
      let key = encodedKeys.get(entry);
      if (key === undefined) encodedKeys.set(entry, (key = encodeStorageKey(entry.key)));
      if (!this.#entries.has(key)) {
        this.#keys.push(key);
        added = true;
      }
      this.#entries.set(key, entry);
    }
    if (added) this.#keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async range(prefix: StorageKey, options?: { readonly limit?: number }): Promise<StorageEntry[]> {
    this.#assertOpen();
    const { gte, lt } = prefixBounds(prefix);
    const out: StorageEntry[] = [];
    for (let i = lowerBound(this.#keys, gte); i < this.#keys.length && this.#keys[i]! < lt; i++) {
      if (options?.limit !== undefined && out.length >= options.limit) break;
      const key = this.#keys[i]!;
      const entry = this.#entries.get(key)!;
      out.push({ key: entry.key, value: this.#read(entry.value) });
    }
    return out;
  }

  async deleteRange(prefix: StorageKey): Promise<void> {
    const keys = (await this.range(prefix)).map((e) => ({ type: 'delete' as const, key: e.key }));
    await this.batch(keys);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * The process died: storage closes (a new process opens it again with {@link SimStorage.reopen}).
   * With `powerLoss`, unsynced writes still in the write-back window are lost too.
   */
  crash(options: { readonly powerLoss?: boolean } = {}): void {
    this.#closed = true;
    if (options.powerLoss === true) {
      const now = this.#now();
      for (const undo of this.#undo.reverse()) {
        if (now - undo.atMs >= WRITEBACK_MS) continue;
        if (undo.before === undefined) this.#remove(undo.key);
        else this.#set(undo.key, undo.before);
      }
      this.#undo = [];
    }
    // A process crash leaves unsynced writes in the operating system's cache: still at risk.
  }

  /** Opens the storage again after a crash or close. */
  reopen(): void {
    this.#closed = false;
  }

  /** From now on, each value read comes back with one flipped byte with this probability. */
  corruptReads(random: Random, probability: number): void {
    this.#corruption = probability > 0 ? { random, probability } : undefined;
  }

  #read(value: Uint8Array): Uint8Array {
    const copy = copyOf(value);
    const corruption = this.#corruption;
    if (corruption !== undefined && copy.length > 0 && corruption.random.float() < corruption.probability) {
      copy[corruption.random.int(copy.length)]! ^= 0x5a;
      this.#corruptedReads++;
    }
    return copy;
  }

  #set(key: string, entry: StorageEntry): void {
    if (!this.#entries.has(key)) this.#keys.splice(lowerBound(this.#keys, key), 0, key);
    this.#entries.set(key, entry);
  }

  #remove(key: string): void {
    if (!this.#entries.delete(key)) return;
    this.#keys.splice(lowerBound(this.#keys, key), 1);
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageClosedError('storage is closed');
  }
}

/** Storage keys of founding entries, encoded ({@link SimStorage.load}). */
const encodedKeys = new WeakMap<StorageEntry, string>();

/** The first index whose key is not below `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
