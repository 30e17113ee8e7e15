import { open } from 'node:fs/promises';
import { CatalogInputError, type ModuleDigests, moduleDigestsOf } from '../../crdt-schema/index.ts';
import { type ModuleInventory, ModuleInventoryError } from '../../mesh/index.ts';

/** The largest modules.json read (256 modules at ~100 bytes each fit many times over). */
export const MODULE_INVENTORY_BYTES_MAX = 64 * 1024;

/**
 * The module inventory as a JSON file, `{"modules": {"NAME": "sha256:HEX"}}`, written by what
 * installs module artifacts on the machine. No file is an empty inventory.
 */
export class FileModuleInventory implements ModuleInventory {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  async read(): Promise<ModuleDigests> {
    const text = await this.#text();
    if (text === undefined) return {};
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new ModuleInventoryError(`${this.#path} is not JSON: ${(error as Error).message}`);
    }
    try {
      return moduleDigestsOf(value);
    } catch (error) {
      if (error instanceof CatalogInputError) throw new ModuleInventoryError(`${this.#path}: ${error.message}`);
      throw error;
    }
  }

  async #text(): Promise<string | undefined> {
    let file;
    try {
      file = await open(this.#path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ModuleInventoryError(`${this.#path} cannot be read: ${(error as Error).message}`);
    }
    try {
      const buffer = Buffer.alloc(MODULE_INVENTORY_BYTES_MAX + 1);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MODULE_INVENTORY_BYTES_MAX) throw new ModuleInventoryError(`${this.#path} is larger than ${MODULE_INVENTORY_BYTES_MAX} bytes`);
      return buffer.subarray(0, bytesRead).toString('utf8');
    } catch (error) {
      if (error instanceof ModuleInventoryError) throw error;
      throw new ModuleInventoryError(`${this.#path} cannot be read: ${(error as Error).message}`);
    } finally {
      await file.close();
    }
  }
}
