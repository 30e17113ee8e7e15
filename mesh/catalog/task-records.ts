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
  parseDocId,
  readTasksDoc,
  recordLease,
  recordRun,
  tasksDocId,
} from '../../crdt-schema/index.ts';
import type { DocStore, SealSigner } from '../replication/index.ts';

/** One node's task document, read. */
export interface TasksView {
  readonly runs: ReadonlyMap<string, TaskRun>;
  readonly leases: ReadonlyMap<string, TaskLease>;
  readonly instances: ReadonlyMap<string, InstanceRecord>;
  readonly actions: ReadonlyMap<string, ActionOutcome>;
  /** Instance actions this node carried out itself. */
  readonly executed: ReadonlySet<string>;
}

/**
 * The `tasks/<peer>` documents on one node: this node writes its own (runs it made, leases it
 * gave as dispatcher; durable and sealed), and reads everyone's, once per version of each.
 */
export class TaskRecords {
  readonly #store: DocStore;
  readonly #self: string;
  readonly #signer: SealSigner;
  readonly #cache = new Map<string, { digest: string; view: TasksView }>();

  constructor(init: { readonly store: DocStore; readonly self: string; readonly signer: SealSigner }) {
    this.#store = init.store;
    this.#self = init.self;
    this.#signer = init.signer;
  }

  /** Every tasks document held, by its writer's peer id. */
  all(): Map<string, TasksView> {
    const out = new Map<string, TasksView>();
    for (const docId of this.#store.ids()) {
      const parsed = parseDocId(docId);
      if (parsed?.kind !== 'tasks') continue;
      out.set(parsed.peerId, this.of(parsed.peerId, docId));
    }
    return out;
  }

  /** `peer`'s tasks document (empty when not held). */
  of(peer: string, docId: DocId = tasksDocId(peer)): TasksView {
    const digest = this.#store.digest(docId);
    if (digest === undefined) return { runs: new Map(), leases: new Map(), instances: new Map(), actions: new Map(), executed: new Set() };
    const cached = this.#cache.get(peer);
    if (cached?.digest === digest) return cached.view;
    const doc = this.#store.get(docId);
    const view = { ...readTasksDoc(doc), ...readInstanceRecords(doc) };
    this.#cache.set(peer, { digest, view });
    return view;
  }

  /** Records this node's run of a task durably (fsynced and sealed) before resolving. */
  async recordRun(taskId: string, run: TaskRun): Promise<void> {
    await this.#store.change<TasksDocument>(tasksDocId(this.#self), (draft) => recordRun(draft, taskId, run), { durable: true, signer: this.#signer });
  }

  /** Records instance states and action outcomes (as owner of the instance reconciler), durably, in one change. */
  async recordInstances(changes: { readonly instances: ReadonlyArray<{ readonly peer: string; readonly record: InstanceRecord }>; readonly actions: ReadonlyArray<{ readonly id: string; readonly outcome: ActionOutcome }> }): Promise<void> {
    if (changes.instances.length === 0 && changes.actions.length === 0) return;
    await this.#store.change<TasksDocument>(tasksDocId(this.#self), (draft) => {
      for (const { peer, record } of changes.instances) recordInstance(draft, peer, record);
      for (const { id, outcome } of changes.actions) recordActionOutcome(draft, id, outcome);
    }, { durable: true, signer: this.#signer });
  }

  /** Records, durably, that this node carries out instance action `actionId` (before it acts on it). */
  async recordExecuted(actionId: string, at: number): Promise<void> {
    await this.#store.change<TasksDocument>(tasksDocId(this.#self), (draft) => recordExecuted(draft, actionId, at), { durable: true, signer: this.#signer });
  }

  /** Records leases this node gave as dispatcher, durably, in one change. */
  async recordLeases(leases: ReadonlyArray<{ readonly taskId: string; readonly lease: TaskLease }>): Promise<void> {
    if (leases.length === 0) return;
    await this.#store.change<TasksDocument>(tasksDocId(this.#self), (draft) => {
      for (const { taskId, lease } of leases) recordLease(draft, taskId, lease);
    }, { durable: true, signer: this.#signer });
  }
}
