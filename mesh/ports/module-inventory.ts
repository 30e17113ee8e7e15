import { type ModuleDigests, moduleDigestsOf } from '../../crdt-schema/index.ts';

/**
 * Which artifact digest this machine runs per module (docs/CATALOG.md §Promotion evidence): what
 * installs modules on the machine keeps it; the node reads it and reports it in its own document.
 * `read` throws {@link ModuleInventoryError} for an inventory it cannot take (the node keeps what
 * it last reported).
 */
export interface ModuleInventory {
  read(): Promise<ModuleDigests>;
}

/** Thrown for an inventory that is broken: unreadable, too large, not JSON, a bad name or digest. */
export class ModuleInventoryError extends Error {
  override name = 'ModuleInventoryError';
}

/** An inventory held in memory (tests, the simulator): `set` replaces it, `fail` makes reads throw. */
export class MemoryModuleInventory implements ModuleInventory {
  #digests: ModuleDigests = {};
  #problem: string | undefined;

  set(digests: ModuleDigests): void {
    this.#digests = moduleDigestsOf({ modules: digests });
    this.#problem = undefined;
  }

  /** Makes reads fail with `problem` until the next `set`. */
  fail(problem: string): void {
    this.#problem = problem;
  }

  read(): Promise<ModuleDigests> {
    return this.#problem === undefined ? Promise.resolve(this.#digests) : Promise.reject(new ModuleInventoryError(this.#problem));
  }
}
