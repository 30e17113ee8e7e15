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
import { copiesOf, copyOf } from './bytes.ts';

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
   * Founding entries shared with every storage loaded with the same ones ({@link SimStorage.load}),
   * never changed: what this storage wrote or deleted since sits above them, in `#entries` and
   * `#deleted`. A thousand members founded with the same two thousand records held a map and a
   * sorted key list of them each (at 1,000 nodes, ~80 MB the collector marked again and again).
   */
  #base: Founding | undefined;
  /** Keys of `#base` deleted here. */
  readonly #deleted = new Set<string>();
  /**
   * Entries written here (above the base), by encoded key, each with its key as given (a range
   * hands out the same arrays: a thousand nodes founded with the same records share their keys'
   * strings, not split each).
   */
  readonly #entries = new Map<string, StorageEntry>();
  /** Encoded keys of `#entries` in order, for ranges. */
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
    const base = this.#base;
    if (base === undefined) return this.#entries.size;
    let size = base.entries.size - this.#deleted.size;
    for (const key of this.#entries.keys()) if (!base.entries.has(key)) size++;
    return size;
  }

  async get(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    const value = this.#entry(encodeStorageKey(key));
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
      if (options?.sync !== true) this.#undo.push({ key, before: this.#entry(key), atMs: now });
      if (op.type === 'put') this.#set(key, { key: op.key, value: new Uint8Array(op.value) });
      else this.#remove(key);
    });
    // A synced batch also makes everything before it durable (one log, fsynced to its end).
  }

  /**
   * Writes `entries` as already synced, keeping their bytes as given (shared, never changed: every
   * read copies), for a fleet founded offline: a thousand members each holding the same thousand
   * records share one map and one sorted list of them (built once, for the first storage loaded
   * with this very array), beneath what each writes itself.
   */
  load(entries: readonly StorageEntry[]): void {
    this.#assertOpen();
    if (this.#base !== undefined) this.#flatten();
    let base = foundings.get(entries);
    if (base === undefined) {
      const byKey = new Map<string, StorageEntry>();
      for (const entry of entries) byKey.set(encodeStorageKey(entry.key), entry);
      base = { entries: byKey, keys: [...byKey.keys()].sort(compareKeys) };
      foundings.set(entries, base);
    }
    this.#base = base;
    // What was written before is now the founding entry's (the same key, as given).
    for (const key of [...this.#entries.keys()]) if (base.entries.has(key)) this.#forget(key);
    this.#deleted.clear();
  }

  async range(prefix: StorageKey, options?: { readonly limit?: number }): Promise<StorageEntry[]> {
    this.#assertOpen();
    const { gte, lt } = prefixBounds(prefix);
    const out: StorageEntry[] = [];
    const limit = options?.limit ?? Number.POSITIVE_INFINITY;
    const mine = this.#keys;
    let i = lowerBound(mine, gte);
    const base = this.#base;
    if (base === undefined) {
      for (; i < mine.length && mine[i]! < lt && out.length < limit; i++) out.push(this.#entries.get(mine[i]!)!);
      return this.#copies(out);
    }
    // Both lists in order, merged; a key written here hides the founding entry's.
    const theirs = base.keys;
    let j = lowerBound(theirs, gte);
    while (out.length < limit) {
      const a = i < mine.length && mine[i]! < lt ? mine[i]! : undefined;
      const b = j < theirs.length && theirs[j]! < lt ? theirs[j]! : undefined;
      if (a === undefined && b === undefined) break;
      if (b === undefined || (a !== undefined && a <= b)) {
        if (a === b) j++;
        out.push(this.#entries.get(a!)!);
        i++;
      } else {
        if (!this.#deleted.has(b)) out.push(base.entries.get(b)!);
        j++;
      }
    }
    return this.#copies(out);
  }

  /** What a read of `entries` hands out: each key with a copy of its value (corrupted now and then, when set to). */
  #copies(entries: readonly StorageEntry[]): StorageEntry[] {
    if (this.#corruption !== undefined) return entries.map((entry) => ({ key: entry.key, value: this.#read(entry.value) }));
    const values = copiesOf(entries.map((entry) => entry.value));
    return entries.map((entry, i) => ({ key: entry.key, value: values[i]! }));
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

  /** The entry at `key`: written here, else the founding one unless deleted here. */
  #entry(key: string): StorageEntry | undefined {
    const mine = this.#entries.get(key);
    if (mine !== undefined || this.#base === undefined || this.#deleted.has(key)) return mine;
    return this.#base.entries.get(key);
  }

  #set(key: string, entry: StorageEntry): void {
    this.#deleted.delete(key);
    if (!this.#entries.has(key)) this.#keys.splice(lowerBound(this.#keys, key), 0, key);
    this.#entries.set(key, entry);
  }

  #remove(key: string): void {
    if (this.#base?.entries.has(key) === true) this.#deleted.add(key);
    this.#forget(key);
  }

  /** Drops what this storage wrote at `key` (a founding entry there shows again unless deleted). */
  #forget(key: string): void {
    if (this.#entries.delete(key)) this.#keys.splice(lowerBound(this.#keys, key), 1);
  }

  /** Copies the founding entries still held into this storage's own (a second load). */
  #flatten(): void {
    const base = this.#base!;
    this.#base = undefined;
    for (const key of base.keys) if (!this.#deleted.has(key) && !this.#entries.has(key)) this.#set(key, base.entries.get(key)!);
    this.#deleted.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageClosedError('storage is closed');
  }
}

/** Founding entries by encoded key, and their keys in order ({@link SimStorage.load}). */
interface Founding {
  readonly entries: ReadonlyMap<string, StorageEntry>;
  readonly keys: readonly string[];
}

/** The founding made of each array of entries loaded (the fleet loads every member with one). */
const foundings = new WeakMap<readonly StorageEntry[], Founding>();

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

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
