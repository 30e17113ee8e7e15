import type { EventLog } from '../events/event-log.ts';
import { eventIdOf } from '../events/event-log.ts';
import type { Logger } from '../logger.ts';
import type { Clock, TimerId } from '../ports/clock.ts';

/** How long a revocation's catalog cut may stay pending on a node before it says so in the event log. */
export const REVOCATION_CUT_PENDING_MS = 10 * 60_000;
/** How often the watch looks. */
const CHECK_MS = 60_000;

/** A revoked operator's catalog cut as a node applies it (DesiredState.revocationCuts). */
export interface RevocationCut {
  readonly operator: string;
  readonly name: string;
  readonly revokedAt: number;
  readonly catalog: 'cut' | 'pending' | 'by-time';
}

/**
 * Watches the catalog cuts of operator revocations (docs/SECURITY.md §Operator revocation). A
 * revocation names the heads of `desired/catalog` it cuts at; until a node holds them, it keeps
 * the revoked operator's entries dated before the revocation, as if no cut were named. When that
 * lasts {@link REVOCATION_CUT_PENDING_MS} on a node (counted from when it first saw the cut
 * pending), the node records a `security.revocation_cut_pending` event, once per operator: the
 * heads may never arrive (the node the revocation went through is gone), and an operator should
 * look (status shows each cut).
 */
export class RevocationCutWatch {
  readonly #init: { readonly clock: Clock; readonly log: Logger; readonly self: string; readonly events: Pick<EventLog, 'has' | 'emit'>; cuts(): readonly RevocationCut[] };
  /** When this node first saw each operator's cut pending. */
  readonly #pendingSince = new Map<string, number>();
  #timer: TimerId | undefined;
  #stopped = false;

  constructor(init: { readonly clock: Clock; readonly log: Logger; readonly self: string; readonly events: Pick<EventLog, 'has' | 'emit'>; cuts(): readonly RevocationCut[] }) {
    this.#init = init;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Looks once: notes cuts newly pending, forgets those no longer pending, reports those pending too long. */
  async check(): Promise<void> {
    const { clock, log, self, events } = this.#init;
    const now = clock.now();
    const pending = this.#init.cuts().filter((cut) => cut.catalog === 'pending');
    for (const operator of [...this.#pendingSince.keys()]) if (!pending.some((cut) => cut.operator === operator)) this.#pendingSince.delete(operator);
    for (const cut of pending) {
      const since = this.#pendingSince.get(cut.operator) ?? now;
      this.#pendingSince.set(cut.operator, since);
      if (now - since < REVOCATION_CUT_PENDING_MS) continue;
      const id = eventIdOf('security.revocation_cut_pending', cut.operator, self);
      if (events.has(id)) continue;
      const minutes = Math.floor((now - since) / 60_000);
      const detail = `the revocation of operator ${cut.name} names heads of desired/catalog this node has not received in ${minutes} minutes: here, that operator's catalog entries dated before the revocation still count. Check that this node syncs desired/catalog (powernode status: revocations, peers)`;
      log.warn('a revocation cut is still pending', { operator: cut.operator, name: cut.name, minutes });
      try {
        await events.emit({ id, kind: 'security.revocation_cut_pending', severity: 'high', subject: cut.operator, detail, payload: { operator: cut.operator, name: cut.name } });
      } catch (error) {
        log.error('recording a pending revocation cut failed', { error: String(error) });
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#init.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.check().finally(() => this.#schedule());
    }, CHECK_MS);
  }
}
