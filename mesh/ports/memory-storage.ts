import {
  type BatchOptions,
  type Storage,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
  StorageClosedError,
  decodeStorageKey,
  encodeStorageKey,
  prefixBounds,
} from './storage.ts';

/** Storage in a sorted in-memory map. Values are copied in and out so callers cannot alias them. */
export class MemoryStorage implements Storage {
  readonly #entries = new Map<string, Uint8Array>();
  #closed = false;

  async get(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    const value = this.#entries.get(encodeStorageKey(key));
    return value === undefined ? undefined : value.slice();
  }

  async put(key: StorageKey, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  async delete(key: StorageKey): Promise<void> {
    await this.batch([{ type: 'delete', key }]);
  }

  async batch(ops: readonly StorageOp[], _options?: BatchOptions): Promise<void> {
    this.#assertOpen();
    // Encode every key first so an invalid key rejects the whole batch before anything changes.
    const encoded = ops.map((op) => encodeStorageKey(op.key));
    ops.forEach((op, i) => {
      if (op.type === 'put') this.#entries.set(encoded[i]!, op.value.slice());
      else this.#entries.delete(encoded[i]!);
    });
  }

  async range(prefix: StorageKey, options?: { readonly limit?: number }): Promise<StorageEntry[]> {
    this.#assertOpen();
    const { gte, lt } = prefixBounds(prefix);
    const keys = [...this.#entries.keys()].filter((k) => k >= gte && k < lt).sort();
    const limited = options?.limit === undefined ? keys : keys.slice(0, options.limit);
    return limited.map((k) => ({ key: decodeStorageKey(k), value: this.#entries.get(k)!.slice() }));
  }

  async deleteRange(prefix: StorageKey): Promise<void> {
    this.#assertOpen();
    const { gte, lt } = prefixBounds(prefix);
    for (const k of [...this.#entries.keys()]) if (k >= gte && k < lt) this.#entries.delete(k);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Test hook: overwrites stored bytes in place, as a failing disk would. */
  corrupt(key: StorageKey, mutate: (bytes: Uint8Array) => Uint8Array): void {
    const k = encodeStorageKey(key);
    const value = this.#entries.get(k);
    if (value !== undefined) this.#entries.set(k, mutate(value.slice()));
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageClosedError('storage is closed');
  }
}
