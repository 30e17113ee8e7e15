import {
  DESIRED_CATALOG_DOC_ID,
  DESIRED_TASKS_DOC_ID,
  type TaskRequests,
  foldTasks,
  type DesiredCatalog,
  type DesiredDocument,
  type DesiredEntry,
  type DocId,
  type FleetView,
  type SkippedChange,
  desiredEntryOrder,
  foldDesired,
  parseDocId,
  readDesiredEntries,
  recordDesiredEntry,
  toPlain,
} from '../../crdt-schema/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { AnyDoc, DocStore } from '../replication/doc-store.ts';
import { OperationRefusedError } from '../errors.ts';
import type { DecisionVerifier } from '../trust/decisions.ts';
import { desiredChangeProblem, desiredEntryProblem } from '../trust/desired.ts';

/**
 * Why recording `added` over `held` would make a catalog that breaks its rules, or undefined: a
 * change the fold would skip (an illegal version move, changed artifacts, a version made blessed
 * or live that its module's trust policy does not trust). Refused where the change is made, so an
 * operator hears it; a change that gets in another way is skipped by the fold on every node.
 */
export function catalogProblem(held: readonly DesiredEntry[], added: readonly DesiredEntry[], revokedAt: (operator: string) => number | undefined): string | undefined {
  const signatures = new Set(added.map((entry) => entry.signature));
  const all = [...held, ...added].sort(desiredEntryOrder);
  const folded = foldDesired(all, revokedAt);
  return folded.skipped.find((change) => signatures.has(change.entry))?.reason;
}

/** How far in the future (by this node's clock) an entry may be dated. */
export const MAX_ENTRY_SKEW_MS = 5 * 60_000;
/** At most this many entries in one request (one fleet apply). */
export const ENTRIES_PER_REQUEST_MAX = 64;

/** The folded catalog with what it was folded from. */
export interface DesiredCatalogView {
  readonly catalog: DesiredCatalog;
  /** Entries applied (revoked operators' later ones are not). */
  readonly entries: number;
  /** Changes that were not applied (an illegal version move, say), the same on every node. */
  readonly skipped: readonly SkippedChange[];
  /** The store's digest of the document it was folded from; undefined while none is held. */
  readonly digest: string | undefined;
}

/**
 * The operator-declared desired state on one node: records checked entries, checks received
 * changes (the replicator's authorize hook), and folds the document into the catalog, once per
 * version of it.
 */
export class DesiredState {
  readonly #store: DocStore;
  readonly #clock: Clock;
  readonly #fleet: () => FleetView | undefined;
  readonly #verifier: DecisionVerifier;
  #view: DesiredCatalogView | undefined;
  #tasks: (TaskRequests & { readonly digest: string | undefined }) | undefined;

  constructor(init: { readonly store: DocStore; readonly clock: Clock; readonly fleet: () => FleetView | undefined; readonly verifier: DecisionVerifier }) {
    this.#store = init.store;
    this.#clock = init.clock;
    this.#fleet = init.fleet;
    this.#verifier = init.verifier;
  }

  /** Whether this node takes in desired document `docId` now: only once it holds the fleet document (entries are checked against its root key). */
  accepts(docId: string): boolean {
    return parseDocId(docId)?.kind !== 'desired' || this.#fleet() !== undefined;
  }

  /** The replicator's authority check for desired documents; undefined for other documents and for acceptable changes. */
  authorize(docId: DocId, before: AnyDoc, after: AnyDoc): string | undefined {
    if (parseDocId(docId)?.kind !== 'desired') return undefined;
    return desiredChangeProblem(docId, before, after, this.#fleet(), this.#verifier);
  }

  /** The catalog as this node holds it. */
  catalog(): DesiredCatalogView {
    const digest = this.#store.digest(DESIRED_CATALOG_DOC_ID);
    if (this.#view !== undefined && this.#view.digest === digest) return this.#view;
    this.#view = { ...foldDesired(this.#entries(DESIRED_CATALOG_DOC_ID), this.#revokedAt()), digest };
    return this.#view;
  }

  /** The tasks operators asked for, as this node holds them. */
  tasks(): TaskRequests {
    const digest = this.#store.digest(DESIRED_TASKS_DOC_ID);
    if (this.#tasks !== undefined && this.#tasks.digest === digest) return this.#tasks;
    this.#tasks = { ...foldTasks(this.#entries(DESIRED_TASKS_DOC_ID), this.#revokedAt()), digest };
    return this.#tasks;
  }

  #entries(docId: DocId): DesiredEntry[] {
    const doc = this.#store.get(docId);
    return doc === undefined ? [] : readDesiredEntries(toPlain(doc) as Record<string, unknown>);
  }

  #revokedAt(): (operator: string) => number | undefined {
    const fleet = this.#fleet();
    return (operator) => fleet?.operators.find((o) => o.publicKey === operator)?.revokedAt;
  }

  /**
   * Records `entries` (signed where the operator key is) in desired document `docId` (the
   * catalog unless named), all in one durable change or none: each must be valid for this fleet
   * and document, by an operator not revoked now, and not dated in the future.
   */
  async record(entries: readonly DesiredEntry[], docId: DocId = DESIRED_CATALOG_DOC_ID): Promise<void> {
    const fleet = this.#fleet();
    if (fleet === undefined) throw new OperationRefusedError('this node has not received the fleet document yet: try again shortly');
    if (entries.length === 0) throw new OperationRefusedError('nothing to record: send at least one entry');
    if (entries.length > ENTRIES_PER_REQUEST_MAX) throw new OperationRefusedError(`at most ${ENTRIES_PER_REQUEST_MAX} entries in one request (got ${entries.length})`);
    const now = this.#clock.now();
    entries.forEach((entry, index) => {
      const problem = this.#entryProblem(fleet, docId, entry, now);
      if (problem !== undefined) throw new OperationRefusedError(entries.length === 1 ? problem : `entry ${index + 1} of ${entries.length}: ${problem}`);
    });
    if (docId === DESIRED_CATALOG_DOC_ID) {
      const problem = catalogProblem(this.#entries(docId), entries, this.#revokedAt());
      if (problem !== undefined) throw new OperationRefusedError(problem);
    }
    if (docId === DESIRED_TASKS_DOC_ID) {
      // A task id asked for again with other content would be skipped by every node: say so now.
      const signatures = new Set(entries.map((entry) => entry.signature));
      const skipped = foldTasks([...this.#entries(docId), ...entries].sort(desiredEntryOrder), this.#revokedAt()).skipped.find((change) => signatures.has(change.entry));
      if (skipped !== undefined) throw new OperationRefusedError(skipped.reason);
    }
    await this.#store.change<DesiredDocument>(docId, (draft) => {
      for (const entry of entries) recordDesiredEntry(draft, entry);
    }, { durable: true });
  }

  #entryProblem(fleet: FleetView, docId: DocId, entry: DesiredEntry, now: number): string | undefined {
    const problem = desiredEntryProblem(fleet, docId, entry, this.#verifier, { activeAt: now });
    if (problem !== undefined) return problem;
    if (!fleet.operators.some((o) => o.publicKey === entry.operator.publicKey)) return 'that operator key is not an operator of this fleet';
    if (entry.at > now + MAX_ENTRY_SKEW_MS) return `the entry is dated ${new Date(entry.at).toISOString()}, in the future: check the operator machine's clock`;
    return undefined;
  }
}
