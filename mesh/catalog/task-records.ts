import {
  type ActionOutcome,
  type DocId,
  type InstanceRecord,
  readInstanceRecords,
  recordActionOutcome,
  recordExecuted,
  recordInstance,
  type TaskLease,
  type TaskRun,
  type TasksDocument,
  dayOf,
  instanceActionsToPrune,
  parseDocId,
  pruneInstanceActions,
  readTasksDoc,
  recordLease,
  recordRun,
  taskBucketDocId,
  tasksDocId,
} from '../../crdt-schema/index.ts';
import type { DocStore, SealSigner } from '../replication/index.ts';

/** One node's task documents, read: its runs and leases (over its day buckets) and its instance records. */
export interface TasksView {
  readonly runs: ReadonlyMap<string, TaskRun>;
  readonly leases: ReadonlyMap<string, TaskLease>;
  readonly instances: ReadonlyMap<string, InstanceRecord>;
  readonly actions: ReadonlyMap<string, ActionOutcome>;
  /** Instance actions this node carried out itself. */
  readonly executed: ReadonlySet<string>;
}

const EMPTY: TasksView = { runs: new Map(), leases: new Map(), instances: new Map(), actions: new Map(), executed: new Set() };

/**
 * The task documents on one node (docs/CATALOG.md §Tasks): each node writes its own — the runs it
 * made and the leases it gave as dispatcher in `tasks/<peer>/<day>`, the bucket of the day the task
 * was requested (so they retire with the request), and its instance records as reconciler in
 * `tasks/<peer>`; durable and sealed — and reads everyone's, each document once per version, each
 * node's merged once per version of its documents.
 */
export class TaskRecords {
  readonly #store: DocStore;
  readonly #self: string;
  readonly #signer: SealSigner;
  readonly #requestedAt: (taskId: string) => number | undefined;
  readonly #docs = new Map<DocId, { digest: string; view: TasksView }>();
  readonly #merged = new Map<string, { key: string; view: TasksView }>();
  #all: { version: number; views: Map<string, TasksView> } | undefined;

  constructor(init: {
    readonly store: DocStore;
    readonly self: string;
    readonly signer: SealSigner;
    /** When a task was requested (its request's signed time), if this node holds the request: picks the bucket of its records. */
    readonly requestedAt?: (taskId: string) => number | undefined;
  }) {
    this.#store = init.store;
    this.#self = init.self;
    this.#signer = init.signer;
    this.#requestedAt = init.requestedAt ?? (() => undefined);
  }

  /** Every node's task documents held, by its peer id. */
  all(): Map<string, TasksView> {
    const version = this.#store.version;
    if (this.#all?.version === version) return new Map(this.#all.views);
    const byPeer = new Map<string, DocId[]>();
    for (const docId of this.#store.ids()) {
      const parsed = parseDocId(docId);
      if (parsed?.kind !== 'tasks') continue;
      const ids = byPeer.get(parsed.peerId);
      if (ids === undefined) byPeer.set(parsed.peerId, [docId]);
      else ids.push(docId);
    }
    const views = new Map<string, TasksView>();
    for (const [peer, ids] of byPeer) views.set(peer, this.#merge(peer, ids));
    // Documents deleted (a retired bucket) or peers gone leave nothing behind in the caches.
    for (const docId of this.#docs.keys()) if (this.#store.digest(docId) === undefined) this.#docs.delete(docId);
    for (const peer of this.#merged.keys()) if (!byPeer.has(peer)) this.#merged.delete(peer);
    this.#all = { version, views };
    return new Map(views);
  }

  /** Every instance's newest record across the held documents (highest epoch, then latest). */
  instances(): Map<string, InstanceRecord> {
    const out = new Map<string, InstanceRecord>();
    for (const doc of this.all().values()) {
      for (const [peer, record] of doc.instances) {
        const held = out.get(peer);
        if (held === undefined || record.epoch > held.epoch || (record.epoch === held.epoch && record.since > held.since)) out.set(peer, record);
      }
    }
    return out;
  }

  /** `peer`'s task documents (empty when none is held). */
  of(peer: string): TasksView {
    return this.all().get(peer) ?? EMPTY;
  }

  /** Records this node's run of a task durably (fsynced and sealed) before resolving. */
  async recordRun(taskId: string, run: TaskRun): Promise<void> {
    await this.#change(this.#bucketOf(taskId), (draft) => recordRun(draft, taskId, run));
  }

  /** Records instance states and action outcomes (as owner of the instance reconciler), durably, in one change. */
  async recordInstances(changes: { readonly instances: ReadonlyArray<{ readonly peer: string; readonly record: InstanceRecord }>; readonly actions: ReadonlyArray<{ readonly id: string; readonly outcome: ActionOutcome }> }): Promise<void> {
    if (changes.instances.length === 0 && changes.actions.length === 0) return;
    await this.#change(tasksDocId(this.#self), (draft) => {
      for (const { peer, record } of changes.instances) recordInstance(draft, peer, record);
      for (const { id, outcome } of changes.actions) recordActionOutcome(draft, id, outcome);
    });
  }

  /** Records, durably, that this node carries out instance action `actionId` (before it acts on it). */
  async recordExecuted(actionId: string, at: number): Promise<void> {
    await this.#change(tasksDocId(this.#self), (draft) => recordExecuted(draft, actionId, at));
  }

  /**
   * Deletes, from this node's own `tasks/<self>`, instance-action outcomes and `executed` marks
   * recorded before `before` whose action is not `held` (its request retired); no change is made
   * when there is none. How many entries went.
   */
  async pruneInstanceActions(before: number, held: (actionId: string) => boolean): Promise<number> {
    const docId = tasksDocId(this.#self);
    const prune = instanceActionsToPrune(this.#store.get(docId), before, held);
    const count = prune.actions.length + prune.executed.length;
    if (count > 0) await this.#change(docId, (draft) => pruneInstanceActions(draft, prune));
    return count;
  }

  /** Records leases this node gave as dispatcher, durably: one change per bucket (tasks requested on one day share one). */
  async recordLeases(leases: ReadonlyArray<{ readonly taskId: string; readonly lease: TaskLease }>): Promise<void> {
    const byBucket = new Map<DocId, Array<{ readonly taskId: string; readonly lease: TaskLease }>>();
    for (const entry of leases) {
      const docId = this.#bucketOf(entry.taskId);
      byBucket.set(docId, [...(byBucket.get(docId) ?? []), entry]);
    }
    await Promise.all(
      [...byBucket].map(([docId, entries]) =>
        this.#change(docId, (draft) => {
          for (const { taskId, lease } of entries) recordLease(draft, taskId, lease);
        }),
      ),
    );
  }

  /** The bucket of this node's records of `taskId`: its request's day; `tasks/<self>` for a task whose request is not held. */
  #bucketOf(taskId: string): DocId {
    const at = this.#requestedAt(taskId);
    return at === undefined ? tasksDocId(this.#self) : taskBucketDocId(this.#self, dayOf(at));
  }

  async #change(docId: DocId, mutate: (draft: TasksDocument) => void): Promise<void> {
    await this.#store.change<TasksDocument>(docId, mutate, { durable: true, signer: this.#signer });
  }

  /** One node's documents read as one: runs and leases from every one (a task's are in one bucket), instance records from `tasks/<peer>`. */
  #merge(peer: string, ids: readonly DocId[]): TasksView {
    const digests = ids.map((id) => `${id}=${this.#store.digest(id)}`).join(' ');
    const cached = this.#merged.get(peer);
    if (cached?.key === digests) return cached.view;
    const views = ids.map((id) => this.#read(id));
    const view: TasksView =
      views.length === 1
        ? views[0]!
        : {
            runs: new Map(views.flatMap((v) => [...v.runs])),
            leases: new Map(views.flatMap((v) => [...v.leases])),
            instances: new Map(views.flatMap((v) => [...v.instances])),
            actions: new Map(views.flatMap((v) => [...v.actions])),
            executed: new Set(views.flatMap((v) => [...v.executed])),
          };
    this.#merged.set(peer, { key: digests, view });
    return view;
  }

  #read(docId: DocId): TasksView {
    const digest = this.#store.digest(docId);
    if (digest === undefined) return EMPTY;
    const cached = this.#docs.get(docId);
    if (cached?.digest === digest) return cached.view;
    const doc = this.#store.get(docId);
    const view = { ...readTasksDoc(doc), ...readInstanceRecords(doc) };
    this.#docs.set(docId, { digest, view });
    return view;
  }
}
