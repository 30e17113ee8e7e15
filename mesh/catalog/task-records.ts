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
  readTasksDoc,
  recordLease,
  recordRun,
  tasksDocId,
} from '../../crdt-schema/index.ts';
import { PeerDocuments } from './peer-documents.ts';

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
 * gave as dispatcher, instance records as reconciler; durable and sealed), and reads everyone's,
 * once per version of each.
 */
export class TaskRecords extends PeerDocuments<TasksView, TasksDocument> {
  protected readonly kind = 'tasks';

  protected docIdOf(peer: string): DocId {
    return tasksDocId(peer);
  }

  protected read(doc: unknown): TasksView {
    return { ...readTasksDoc(doc), ...readInstanceRecords(doc) };
  }

  protected empty(): TasksView {
    return { runs: new Map(), leases: new Map(), instances: new Map(), actions: new Map(), executed: new Set() };
  }

  /** Records this node's run of a task durably (fsynced and sealed) before resolving. */
  async recordRun(taskId: string, run: TaskRun): Promise<void> {
    await this.changeOwn((draft) => recordRun(draft, taskId, run));
  }

  /** Records instance states and action outcomes (as owner of the instance reconciler), durably, in one change. */
  async recordInstances(changes: { readonly instances: ReadonlyArray<{ readonly peer: string; readonly record: InstanceRecord }>; readonly actions: ReadonlyArray<{ readonly id: string; readonly outcome: ActionOutcome }> }): Promise<void> {
    if (changes.instances.length === 0 && changes.actions.length === 0) return;
    await this.changeOwn((draft) => {
      for (const { peer, record } of changes.instances) recordInstance(draft, peer, record);
      for (const { id, outcome } of changes.actions) recordActionOutcome(draft, id, outcome);
    });
  }

  /** Records, durably, that this node carries out instance action `actionId` (before it acts on it). */
  async recordExecuted(actionId: string, at: number): Promise<void> {
    await this.changeOwn((draft) => recordExecuted(draft, actionId, at));
  }

  /** Records leases this node gave as dispatcher, durably, in one change. */
  async recordLeases(leases: ReadonlyArray<{ readonly taskId: string; readonly lease: TaskLease }>): Promise<void> {
    if (leases.length === 0) return;
    await this.changeOwn((draft) => {
      for (const { taskId, lease } of leases) recordLease(draft, taskId, lease);
    });
  }
}
