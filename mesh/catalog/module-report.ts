import { type ModuleDigests, type NodeStateDocument, nodeDocId, recordModules, recordModulesProblem } from '../../crdt-schema/index.ts';
import type { Logger } from '../logger.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import { type ModuleInventory, ModuleInventoryError } from '../ports/module-inventory.ts';
import type { DocStore, SealSigner } from '../replication/index.ts';

/** How often a node reads its module inventory (the original agent's heartbeat). */
export const MODULE_REPORT_MS = 30_000;

export interface ModuleReportInit {
  readonly inventory: ModuleInventory;
  readonly store: DocStore;
  readonly self: string;
  readonly signer: SealSigner;
  readonly clock: Clock;
  readonly log: Logger;
  /** Defaults to {@link MODULE_REPORT_MS}. */
  readonly intervalMs?: number;
}

/** What `status` shows of the report. */
export interface ModuleReportStatus {
  readonly modules: ModuleDigests;
  /** Reads refused since start (a broken inventory). */
  readonly inventoryErrors: number;
  /** The last read's problem, while the inventory stays broken. */
  readonly problem: string | null;
}

/**
 * Reports what this machine runs (docs/CATALOG.md §Promotion evidence): reads the module
 * inventory at start and every interval, and writes it into the node's own sealed document
 * (a module's `since` is stamped when its digest is new). A broken inventory is logged once per
 * distinct problem, counted, and said in the document (the modules last reported stay, and
 * readers take them for no evidence until the inventory reads again).
 */
export class ModuleReport {
  readonly #init: ModuleReportInit;
  #timer: TimerId | undefined;
  #stopped = true;
  #errors = 0;
  #problem: string | undefined;
  #reported: ModuleDigests = {};

  constructor(init: ModuleReportInit) {
    this.#init = init;
  }

  /** Reads once now (resolving when the report is written), then every interval. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.read();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Reads the inventory and writes what changed; never throws (a failure is logged and counted). */
  async read(): Promise<void> {
    const { inventory, store, self, signer, clock, log } = this.#init;
    let digests: ModuleDigests;
    try {
      digests = await inventory.read();
    } catch (error) {
      const problem = error instanceof ModuleInventoryError ? error.message : `reading the module inventory failed: ${String(error)}`;
      this.#errors++;
      if (problem !== this.#problem) log.warn('the module inventory cannot be read; the modules this node reported count as no evidence until it reads again', { problem });
      this.#problem = problem;
      try {
        await store.change<NodeStateDocument>(nodeDocId(self), (draft) => recordModulesProblem(draft, problem, clock.now()), { signer });
      } catch (recordError) {
        log.error('recording that the module inventory cannot be read failed', { error: String(recordError) });
      }
      return;
    }
    if (this.#problem !== undefined) log.info('the module inventory reads again', { modules: Object.keys(digests).length });
    this.#problem = undefined;
    try {
      await store.change<NodeStateDocument>(nodeDocId(self), (draft) => recordModules(draft, digests, clock.now()), { signer });
      this.#reported = digests;
    } catch (error) {
      log.error('recording the modules this node runs failed', { error: String(error) });
    }
  }

  status(): ModuleReportStatus {
    return { modules: this.#reported, inventoryErrors: this.#errors, problem: this.#problem ?? null };
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#init.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.read().finally(() => this.#schedule());
    }, this.#init.intervalMs ?? MODULE_REPORT_MS);
  }
}
