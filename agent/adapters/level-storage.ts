import { ClassicLevel } from 'classic-level';
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
} from '../../mesh/index.ts';

/** Thrown when another process holds the LevelDB lock on the same directory. */
export class StorageLockedError extends Error {
  override name = 'StorageLockedError';
}

/** Thrown when LevelDB cannot open its directory for another reason (corruption, permissions). */
export class StorageOpenError extends Error {
  override name = 'StorageOpenError';
}

/**
 * Storage on LevelDB (classic-level). Each write reaches the OS before its promise resolves, so a
 * killed process loses nothing acknowledged; `sync` batches also fsync.
 */
export class LevelStorage implements Storage {
  readonly #db: ClassicLevel<string, Uint8Array>;
  #closed = false;

  private constructor(db: ClassicLevel<string, Uint8Array>) {
    this.#db = db;
  }

  /** Opens (creating if needed) the database in `directory`. */
  static async open(directory: string): Promise<LevelStorage> {
    // Node state is small (documents of kilobytes); LevelDB's defaults (8 MiB block cache, 4 MiB
    // write buffer) would be most of an idle node's native memory.
    const db = new ClassicLevel<string, Uint8Array>(directory, { keyEncoding: 'utf8', valueEncoding: 'view', cacheSize: 2 * 1024 * 1024, writeBufferSize: 1024 * 1024 });
    try {
      await db.open();
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new StorageLockedError(`the database in ${directory} is in use by another process`);
      }
      throw new StorageOpenError(`cannot open the database in ${directory}: ${cause?.message ?? (error as Error).message}`);
    }
    return new LevelStorage(db);
  }

  async get(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    return this.#db.get(encodeStorageKey(key));
  }

  async put(key: StorageKey, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  async delete(key: StorageKey): Promise<void> {
    await this.batch([{ type: 'delete', key }]);
  }

  async batch(ops: readonly StorageOp[], options?: BatchOptions): Promise<void> {
    this.#assertOpen();
    const encoded = ops.map((op) =>
      op.type === 'put'
        ? { type: 'put' as const, key: encodeStorageKey(op.key), value: op.value }
        : { type: 'del' as const, key: encodeStorageKey(op.key) },
    );
    if (encoded.length === 0) return;
    await this.#db.batch(encoded, { sync: options?.sync === true });
  }

  async range(prefix: StorageKey, options?: { readonly limit?: number }): Promise<StorageEntry[]> {
    this.#assertOpen();
    const { gte, lt } = prefixBounds(prefix);
    const entries: StorageEntry[] = [];
    for await (const [key, value] of this.#db.iterator({ gte, lt, limit: options?.limit ?? -1 })) {
      entries.push({ key: decodeStorageKey(key), value });
    }
    return entries;
  }

  async deleteRange(prefix: StorageKey): Promise<void> {
    this.#assertOpen();
    await this.#db.clear(prefixBounds(prefix));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageClosedError('storage is closed');
  }
}
