import {
  DESIRED_CATALOG_DOC_ID,
  DESIRED_TASKS_DOC_ID,
  TASK_RETENTION_DAYS,
  type TaskRequests,
  dayOf,
  desiredTasksBucketId,
  isEntryTime,
  isTaskBucketAcceptable,
  isTaskBucketRetired,
  keysAtHeads,
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
  type ModuleVersion,
  type PromotionThresholds,
  promotionThresholdsOf,
  versionKey,
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
export function catalogProblem(
  held: readonly DesiredEntry[],
  added: readonly DesiredEntry[],
  revokedAt: (operator: string) => number | undefined,
  kept: (operator: string) => ReadonlySet<string> | undefined = () => undefined,
): string | undefined {
  return foldWithAdded(held, added, revokedAt, kept).problem;
}

/** The catalog `held` and `added` fold into, and {@link catalogProblem}'s answer about `added`. */
function foldWithAdded(
  held: readonly DesiredEntry[],
  added: readonly DesiredEntry[],
  revokedAt: (operator: string) => number | undefined,
  kept: (operator: string) => ReadonlySet<string> | undefined,
): { catalog: DesiredCatalog; problem: string | undefined } {
  const signatures = new Set(added.map((entry) => entry.signature));
  const folded = foldDesired([...held, ...added].sort(desiredEntryOrder), revokedAt, kept);
  return { catalog: folded.catalog, problem: folded.skipped.find((change) => signatures.has(change.entry))?.reason };
}

/** Why the fleet's evidence does not let `version` be blessed by `thresholds`, or undefined when it does. */
export type PromotionCheck = (version: ModuleVersion, thresholds: PromotionThresholds) => string | undefined;

/** The id prefix of the task request buckets. */
const TASK_BUCKET_PREFIX = `${DESIRED_TASKS_DOC_ID}/`;

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
  readonly #promotionProblem: PromotionCheck | undefined;
  #view: DesiredCatalogView | undefined;
  #viewKey = '';
  #tasks: (TaskRequests & { readonly version: number; readonly revocations: string; readonly digests: string }) | undefined;

  constructor(init: {
    readonly store: DocStore;
    readonly clock: Clock;
    readonly fleet: () => FleetView | undefined;
    readonly verifier: DecisionVerifier;
    /** Whether the fleet's evidence lets a version be blessed (docs/CATALOG.md §Promotion evidence); none is checked when absent. */
    readonly promotionProblem?: PromotionCheck;
  }) {
    this.#store = init.store;
    this.#clock = init.clock;
    this.#fleet = init.fleet;
    this.#verifier = init.verifier;
    this.#promotionProblem = init.promotionProblem;
  }

  /**
   * Whether this node takes in desired document `docId` now: only once it holds the fleet document
   * (entries are checked against its root key), and no task bucket past its retention.
   */
  accepts(docId: string): boolean {
    if (parseDocId(docId)?.kind !== 'desired') return true;
    return this.#fleet() !== undefined && isTaskBucketAcceptable(docId, this.#clock.now());
  }

  /** The replicator's authority check for desired documents; undefined for other documents and for acceptable changes. */
  authorize(docId: DocId, before: AnyDoc, after: AnyDoc): string | undefined {
    if (parseDocId(docId)?.kind !== 'desired') return undefined;
    return desiredChangeProblem(docId, before, after, this.#fleet(), this.#verifier);
  }

  /**
   * The catalog as this node holds it: folded again when the document changes or an operator's
   * revocation does (its time, or whether this node holds the heads of its catalog cut yet).
   */
  catalog(): DesiredCatalogView {
    const digest = this.#store.digest(DESIRED_CATALOG_DOC_ID);
    const kept = this.#catalogCuts();
    const key = `${digest} ${kept.key}`;
    if (this.#view !== undefined && this.#viewKey === key) return this.#view;
    this.#view = { ...foldDesired(this.#entries(DESIRED_CATALOG_DOC_ID), this.#revokedAt(), kept.of), digest };
    this.#viewKey = key;
    return this.#view;
  }

  /**
   * Each revoked operator's catalog cut as this node applies it: `cut` (its entries are those the
   * catalog held at the revocation's heads), `pending` (this node does not hold those heads yet, so
   * it keeps the entries dated before the revocation — a revocation whose heads never arrive stays
   * so, and an operator should look), or `by-time` (the revocation names no heads).
   */
  revocationCuts(): Array<{ readonly operator: string; readonly name: string; readonly revokedAt: number; readonly catalog: 'cut' | 'pending' | 'by-time' }> {
    const cuts = this.#catalogCuts();
    return (this.#fleet()?.operators ?? []).flatMap((o) =>
      o.revokedAt === undefined ? [] : [{ operator: o.publicKey, name: o.name, revokedAt: o.revokedAt, catalog: o.catalogHeads === undefined ? ('by-time' as const) : cuts.of(o.publicKey) === undefined ? ('pending' as const) : ('cut' as const) }],
    );
  }

  /**
   * Of each revoked operator whose revocation names `desired/catalog` heads, the entries that
   * document held at those heads (docs/SECURITY.md §Operator revocation) — once this node holds the
   * heads; until then none is named, and the entries dated before the revocation count (as for a
   * revocation without a cut). `key` says what the fold depends on.
   */
  #catalogCuts(): { readonly key: string; readonly of: (operator: string) => ReadonlySet<string> | undefined } {
    const revoked = (this.#fleet()?.operators ?? []).filter((o) => o.revokedAt !== undefined);
    if (revoked.length === 0) return { key: '', of: () => undefined };
    const doc = this.#store.get(DESIRED_CATALOG_DOC_ID);
    const cuts = new Map<string, ReadonlySet<string>>();
    const parts: string[] = [];
    for (const operator of revoked) {
      const heads = operator.catalogHeads;
      const cut = heads === undefined || doc === undefined ? undefined : keysAtHeads(doc, heads);
      if (cut !== undefined) cuts.set(operator.publicKey, cut);
      parts.push(`${operator.publicKey}@${operator.revokedAt}${heads === undefined ? '' : `${cut === undefined ? ':pending:' : ':cut:'}${heads.join(',')}`}`);
    }
    return { key: parts.join(' '), of: (operator) => cuts.get(operator) };
  }

  /** The tasks operators asked for, as this node holds them (every day bucket held, folded as one). */
  tasks(): TaskRequests {
    const version = this.#store.version;
    // Revocations change the fold; the day changes which buckets are retired.
    const revocations = `${dayOf(this.#clock.now())} ${this.#revocationsKey()}`;
    if (this.#tasks?.version === version && this.#tasks.revocations === revocations) return this.#tasks;
    const buckets = this.#taskBuckets();
    const digests = `${revocations} ${buckets.map((id) => `${id}=${this.#store.digest(id)}`).join(' ')}`;
    if (this.#tasks?.digests === digests) {
      this.#tasks = { ...this.#tasks, version, revocations };
      return this.#tasks;
    }
    const entries = buckets.flatMap((id) => this.#entries(id)).sort(desiredEntryOrder);
    this.#tasks = { ...foldTasks(entries, this.#revokedAt()), version, revocations, digests };
    return this.#tasks;
  }

  /** What the folds take from revocations: each revoked operator's time. */
  #revocationsKey(): string {
    return (this.#fleet()?.operators ?? []).flatMap((o) => (o.revokedAt === undefined ? [] : [`${o.publicKey}@${o.revokedAt}`])).join(' ');
  }

  /**
   * The task request buckets held and not retired by this node's clock (one retired but not
   * deleted yet is not read: its runs may be gone already), oldest day first.
   */
  #taskBuckets(): DocId[] {
    const now = this.#clock.now();
    return this.#store.ids().filter((id) => id.startsWith(TASK_BUCKET_PREFIX) && parseDocId(id) !== undefined && !isTaskBucketRetired(id, now)).sort();
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
   * Records `entries` (signed where the operator key is) in desired area `area` (the catalog
   * unless named; task entries, signed for `desired/tasks`, go to the bucket of the day they were
   * signed, and must all be of one day), all in one durable change or none: each must be valid for
   * this fleet and document, by an operator not revoked now, and not dated in the future.
   */
  async record(entries: readonly DesiredEntry[], area: DocId = DESIRED_CATALOG_DOC_ID): Promise<void> {
    const fleet = this.#fleet();
    if (fleet === undefined) throw new OperationRefusedError('this node has not received the fleet document yet: try again shortly');
    if (entries.length === 0) throw new OperationRefusedError('nothing to record: send at least one entry');
    if (entries.length > ENTRIES_PER_REQUEST_MAX) throw new OperationRefusedError(`at most ${ENTRIES_PER_REQUEST_MAX} entries in one request (got ${entries.length})`);
    const now = this.#clock.now();
    const docId = area === DESIRED_TASKS_DOC_ID ? this.#taskBucketOf(entries, now) : area;
    entries.forEach((entry, index) => {
      const problem = this.#entryProblem(fleet, docId, entry, now);
      if (problem !== undefined) throw new OperationRefusedError(entries.length === 1 ? problem : `entry ${index + 1} of ${entries.length}: ${problem}`);
    });
    if (docId === DESIRED_CATALOG_DOC_ID) {
      const after = foldWithAdded(this.#entries(docId), entries, this.#revokedAt(), this.#catalogCuts().of);
      const problem = after.problem ?? this.#blessingProblem(after.catalog);
      if (problem !== undefined) throw new OperationRefusedError(problem);
    }
    if (docId !== area) {
      // A task id asked for again with other content would be skipped by every node: say so now.
      const signatures = new Set(entries.map((entry) => entry.signature));
      const held = this.#taskBuckets().flatMap((id) => this.#entries(id));
      const skipped = foldTasks([...held, ...entries].sort(desiredEntryOrder), this.#revokedAt()).skipped.find((change) => signatures.has(change.entry));
      if (skipped !== undefined) throw new OperationRefusedError(skipped.reason);
    }
    await this.#store.change<DesiredDocument>(docId, (draft) => {
      for (const entry of entries) recordDesiredEntry(draft, entry);
    }, { durable: true });
  }

  /**
   * Why a version the request blesses (blessed or live in `after`, the catalog with its entries,
   * and not before) may not be blessed yet, by the fleet's evidence; undefined when each may.
   */
  #blessingProblem(after: DesiredCatalog): string | undefined {
    if (this.#promotionProblem === undefined) return undefined;
    const before = new Map(this.catalog().catalog.versions.map((v) => [versionKey(v), v.state]));
    // Past blessed by this request: blessed, or blessed and then live by a later entry of it.
    const blessedOrLive = (state: string | undefined): boolean => state === 'blessed' || state === 'live';
    for (const version of after.versions) {
      if (!blessedOrLive(version.state) || blessedOrLive(before.get(versionKey(version)))) continue;
      const problem = this.#promotionProblem(version, promotionThresholdsOf(after.trust.find((policy) => policy.module === version.module)));
      if (problem !== undefined) return `${versionKey(version)} cannot be blessed yet: ${problem} (powernode module version evidence ${versionKey(version)})`;
    }
    return undefined;
  }

  /** The day bucket task entries signed for `desired/tasks` go to: the day they were signed, one day per request. */
  #taskBucketOf(entries: readonly DesiredEntry[], now: number): DocId {
    const times = entries.map((entry) => entry.at);
    if (!times.every(isEntryTime)) throw new OperationRefusedError('an entry\'s time is not a valid time');
    const days = new Set(times.map((at) => dayOf(at)));
    if (days.size > 1) throw new OperationRefusedError(`the entries were signed on different days (${[...days].sort().join(', ')}): sign them again, together`);
    const docId = desiredTasksBucketId([...days][0]!);
    if (isTaskBucketRetired(docId, now)) throw new OperationRefusedError(`the entries are dated ${[...days][0]}, past the ${TASK_RETENTION_DAYS} days tasks are kept: check the operator machine's clock`);
    return docId;
  }

  #entryProblem(fleet: FleetView, docId: DocId, entry: DesiredEntry, now: number): string | undefined {
    const problem = desiredEntryProblem(fleet, docId, entry, this.#verifier, { activeAt: now });
    if (problem !== undefined) return problem;
    if (!fleet.operators.some((o) => o.publicKey === entry.operator.publicKey)) return 'that operator key is not an operator of this fleet';
    if (entry.at > now + MAX_ENTRY_SKEW_MS) return `the entry is dated ${new Date(entry.at).toISOString()}, in the future: check the operator machine's clock`;
    return undefined;
  }
}
