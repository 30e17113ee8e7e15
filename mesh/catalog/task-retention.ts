import { type DocId, TASK_RETENTION_DAYS, desiredTasksBucketId, isTaskBucketAcceptable, isTaskBucketRetired, parseDocId, taskBucketDay } from '../../crdt-schema/index.ts';
import type { Logger } from '../logger.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import type { DocStore } from '../replication/doc-store.ts';

/** How often retired task buckets are looked for and deleted. */
const RETENTION_CHECK_MS = 60 * 60_000;

/**
 * Retires task buckets (docs/CATALOG.md §Tasks: retention): `desired/tasks/<day>` and
 * `tasks/<peer>/<day>` more than {@link TASK_RETENTION_DAYS} days old are deleted at start and
 * every hour, and not taken in again from peers.
 */
interface TaskRetentionInit {
  readonly store: DocStore;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * Prunes what the retired buckets' requests leave behind elsewhere (instance-action outcomes
   * and marks in `tasks/<self>`), after the buckets are gone: returns how many entries went.
   */
  readonly afterBuckets?: (now: number) => Promise<number>;
}

export class TaskRetention {
  readonly #init: TaskRetentionInit;
  #timer: TimerId | undefined;
  #stopped = false;

  constructor(init: TaskRetentionInit) {
    this.#init = init;
  }

  start(): void {
    this.#stopped = false;
    void this.prune();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Whether a task document offered by a peer is taken in: not a bucket retired or of a day after tomorrow. */
  accepts(docId: string): boolean {
    return isTaskBucketAcceptable(docId, this.#init.clock.now());
  }

  /** Deletes retired buckets now, and schedules the next check. */
  async prune(): Promise<void> {
    const { store, clock, log } = this.#init;
    if (this.#timer !== undefined) clock.clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = clock.setTimeout(() => void this.prune(), RETENTION_CHECK_MS);
    // Requests first: a day's runs go only once its requests are gone, so a failed delete never
    // leaves a request without the runs of it (it would read as a task never run).
    const now = clock.now();
    const retired: DocId[] = store.ids().filter((id) => isTaskBucketRetired(id, now));
    const requests = retired.filter((id) => parseDocId(id)?.kind === 'desired');
    const runs = retired.filter((id) => !requests.includes(id));
    let removed = 0;
    const remove = async (id: DocId): Promise<void> => {
      try {
        await store.remove(id);
        removed++;
      } catch (error) {
        log.error('deleting a retired task bucket failed; trying again at the next check', { docId: id, error: String(error) });
      }
    };
    for (const id of requests) await remove(id);
    for (const id of runs) if (!store.has(desiredTasksBucketId(taskBucketDay(id)!))) await remove(id);
    if (removed > 0) log.info(`deleted task buckets older than ${TASK_RETENTION_DAYS} days`, { count: removed });
    if (this.#init.afterBuckets === undefined) return;
    try {
      const pruned = await this.#init.afterBuckets(now);
      if (pruned > 0) log.info('deleted instance-action records of retired requests', { count: pruned });
    } catch (error) {
      log.error('deleting instance-action records of retired requests failed; trying again at the next check', { error: String(error) });
    }
  }
}
