import { ImmutableString } from '@automerge/automerge';
import { dayOf, isDayRetired } from './events.ts';
import { parseDocId } from './ids.ts';
import { INSTANCE_STATES, type InstanceState, type InstanceTransition } from './catalog/instance.ts';
import { plainEntry, toPlain } from './plain.ts';
import { markSchema } from './schema.ts';

/**
 * `tasks/<peer>`: what one node did about tasks, sealed by it (docs/CATALOG.md §Tasks). Two
 * sections, each keyed by task id:
 * - `runs`: the tasks this node ran. Written durably *before* the command starts (state running),
 *   and again when it ends. A node never starts a task it holds a run of, so a task runs at most
 *   once on its node, whatever orders arrive, however often it restarts.
 * - `leases`: while this node owned the dispatcher, the leases it gave (and the tasks it closed
 *   without a run: cancelled before they began, or lost with a dead node).
 */
export interface TaskRun {
  readonly leaseId: string;
  /** The dispatcher epoch of the lease it started under. */
  readonly epoch: number;
  readonly state: 'running' | 'complete' | 'failed' | 'aborted';
  readonly startedAt: number;
  readonly endedAt?: number;
  readonly exitCode?: number;
  /** The end of stdout and stderr, at most {@link TASK_OUTPUT_CHARS_MAX} characters. */
  readonly output?: string;
  /** Why it failed or was aborted. */
  readonly reason?: string;
  /** The command's process id on its node, once it ran (to stop it if the node restarts under it). */
  readonly pid?: number;
}

/** A dispatcher's lease on a task, or its closing of a task that never ran. */
export interface TaskLease {
  readonly leaseId: string;
  readonly node: string;
  readonly epoch: number;
  /** Until when the node may run the task without hearing from the dispatcher again. */
  readonly until: number;
  readonly at: number;
  /**
   * Set when the dispatcher closed the task: without a run (cancelled, or its node gone before it
   * began), or with a run its node could not report the end of (dead past its lease, by when its
   * own lease watch had stopped the command).
   */
  readonly closed?: 'cancelled' | 'aborted';
  readonly reason?: string;
}

export const TASK_OUTPUT_CHARS_MAX = 4_096;

export interface TasksDocument {
  schema?: number;
  runs?: Record<string, unknown>;
  leases?: Record<string, unknown>;
  instances?: Record<string, unknown>;
  actions?: Record<string, unknown>;
  /** Instance actions this node carried out itself (stop, reboot), by action id → when: each at most once. */
  executed?: Record<string, number>;
}

/**
 * While a node owned the instance reconciler (`control.instances`): each member instance's state
 * as it recorded it, with its latest transitions (who, epoch, why, when).
 */
export interface InstanceRecord {
  readonly state: InstanceState;
  /** When it entered this state (the recorder's clock). */
  readonly since: number;
  /** The reconciler epoch it was recorded under: readers take the highest. */
  readonly epoch: number;
  /** Newest last, at most {@link INSTANCE_TRANSITIONS_KEPT}. */
  readonly transitions: readonly InstanceTransition[];
}

export const INSTANCE_TRANSITIONS_KEPT = 20;

/** What the reconciler did with an operator's instance action (so it is applied once, across failovers). */
export interface ActionOutcome {
  readonly outcome: 'applied' | 'refused';
  readonly reason: string;
  readonly at: number;
  readonly epoch: number;
}

const str = (value: string): ImmutableString => new ImmutableString(value);

/** Days a task bucket is kept after its day: requests, and the runs and leases of their tasks (docs/CATALOG.md §Tasks: retention). */
export const TASK_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;

/** The day of a task bucket (`desired/tasks/<day>` or `tasks/<peer>/<day>`), or undefined for any other document. */
export function taskBucketDay(docId: string): string | undefined {
  const parsed = parseDocId(docId);
  return (parsed?.kind === 'tasks' || (parsed?.kind === 'desired' && parsed.area === 'tasks')) ? parsed.day : undefined;
}

/** Whether `docId` is a task bucket past its retention at `nowMs`: deleted, and not taken in again. */
export function isTaskBucketRetired(docId: string, nowMs: number, retentionDays = TASK_RETENTION_DAYS): boolean {
  const day = taskBucketDay(docId);
  return day !== undefined && isDayRetired(day, nowMs, retentionDays);
}

/**
 * Whether a task bucket may be taken in at `nowMs`: its day a real date, neither retired nor after
 * tomorrow (entries are dated at most minutes ahead) — a bucket for a far day would never retire.
 * Any other document: true.
 */
export function isTaskBucketAcceptable(docId: string, nowMs: number): boolean {
  const day = taskBucketDay(docId);
  if (day === undefined) return true;
  const start = Date.parse(`${day}T00:00:00Z`);
  if (!Number.isFinite(start) || dayOf(start) !== day) return false;
  return !isTaskBucketRetired(docId, nowMs) && day <= dayOf(nowMs + DAY_MS);
}

export { LATEST_ENTRY_TIME_MS, isEntryTime } from './time.ts';

/** A run, lease or action outcome as JSON is at most this long (its strings are bounded when written). */
const MAX_RECORD_JSON_CHARS = 32 * 1024;


/**
 * Records (or replaces) this node's run of `taskId`. Runs, leases and action outcomes are each one
 * JSON string (schema 2: one Automerge operation a record, where a map of its fields was up to
 * nine); schema 1 maps are still read.
 */
export function recordRun(draft: TasksDocument, taskId: string, run: TaskRun): void {
  markSchema(draft, 'tasks');
  draft.runs ??= {};
  draft.runs[taskId] = str(
    JSON.stringify({
      leaseId: run.leaseId.slice(0, 200),
      epoch: run.epoch,
      state: run.state,
      startedAt: run.startedAt,
      ...(run.endedAt === undefined ? {} : { endedAt: run.endedAt }),
      ...(run.exitCode === undefined ? {} : { exitCode: run.exitCode }),
      ...(run.output === undefined ? {} : { output: run.output.slice(-TASK_OUTPUT_CHARS_MAX) }),
      ...(run.reason === undefined ? {} : { reason: run.reason.slice(0, 500) }),
      ...(run.pid === undefined ? {} : { pid: run.pid }),
    }),
  );
}

/** Records (or replaces) the dispatcher's lease on `taskId`. */
export function recordLease(draft: TasksDocument, taskId: string, lease: TaskLease): void {
  markSchema(draft, 'tasks');
  draft.leases ??= {};
  draft.leases[taskId] = str(
    JSON.stringify({
      leaseId: lease.leaseId.slice(0, 200),
      node: lease.node.slice(0, 200),
      epoch: lease.epoch,
      until: lease.until,
      at: lease.at,
      ...(lease.closed === undefined ? {} : { closed: lease.closed }),
      ...(lease.reason === undefined ? {} : { reason: lease.reason.slice(0, 500) }),
    }),
  );
}

/** Records an instance's state (kept as canonical JSON: a bounded value read back with checks). */
export function recordInstance(draft: TasksDocument, peer: string, record: InstanceRecord): void {
  markSchema(draft, 'tasks');
  draft.instances ??= {};
  draft.instances[peer] = str(JSON.stringify({ ...record, transitions: record.transitions.slice(-INSTANCE_TRANSITIONS_KEPT) }));
}

export function recordActionOutcome(draft: TasksDocument, actionId: string, outcome: ActionOutcome): void {
  markSchema(draft, 'tasks');
  draft.actions ??= {};
  draft.actions[actionId] = str(JSON.stringify({ outcome: outcome.outcome, reason: outcome.reason.slice(0, 500), at: outcome.at, epoch: outcome.epoch }));
}

/** Records that this node carried out instance action `actionId` (before it acts). */
export function recordExecuted(draft: TasksDocument, actionId: string, at: number): void {
  markSchema(draft, 'tasks');
  draft.executed ??= {};
  draft.executed[actionId] ??= at;
}

/**
 * The instance-action outcomes and `executed` marks of a tasks document recorded before `before`
 * whose action is not `held` any more (its request bucket retired: docs/CATALOG.md §Tasks,
 * retention). No reconciler applies such an action again, and no node carries it out again (a
 * node acts only on an action it holds). Read-only, so a caller makes no empty change.
 */
export function instanceActionsToPrune(doc: unknown, before: number, held: (actionId: string) => boolean): { readonly actions: string[]; readonly executed: string[] } {
  const root = (doc === undefined ? {} : toPlain(doc)) as { actions?: Record<string, unknown>; executed?: Record<string, unknown> };
  const old = (id: string, at: unknown): boolean => typeof at === 'number' && at < before && !held(id);
  return {
    actions: Object.entries(root.actions ?? {}).filter(([id, entry]) => old(id, plainEntry(entry, MAX_RECORD_JSON_CHARS)?.['at'])).map(([id]) => id),
    executed: Object.entries(root.executed ?? {}).filter(([id, at]) => old(id, at)).map(([id]) => id),
  };
}

/** Deletes the entries {@link instanceActionsToPrune} named. */
export function pruneInstanceActions(draft: TasksDocument, prune: { readonly actions: readonly string[]; readonly executed: readonly string[] }): void {
  for (const id of prune.actions) delete draft.actions?.[id];
  for (const id of prune.executed) delete draft.executed?.[id];
}

function instanceOf(text: unknown): InstanceRecord | undefined {
  if (typeof text !== 'string' || text.length > 64 * 1024) return undefined;
  try {
    const value = JSON.parse(text) as InstanceRecord;
    if (!(INSTANCE_STATES as readonly unknown[]).includes(value.state) || typeof value.since !== 'number' || typeof value.epoch !== 'number' || !Array.isArray(value.transitions)) return undefined;
    return { state: value.state, since: value.since, epoch: value.epoch, transitions: value.transitions.slice(-INSTANCE_TRANSITIONS_KEPT) };
  } catch {
    return undefined;
  }
}

/** The instance records and action outcomes of a tasks document; malformed entries are left out. */
export function readInstanceRecords(doc: unknown): { instances: Map<string, InstanceRecord>; actions: Map<string, ActionOutcome>; executed: Set<string> } {
  const root = (doc === undefined ? {} : toPlain(doc)) as { instances?: Record<string, unknown>; actions?: Record<string, unknown>; executed?: Record<string, unknown> };
  const instances = new Map<string, InstanceRecord>();
  for (const [peer, raw] of Object.entries(root.instances ?? {})) {
    const record = instanceOf(raw);
    if (record !== undefined) instances.set(peer, record);
  }
  const actions = new Map<string, ActionOutcome>();
  for (const [id, entry] of Object.entries(root.actions ?? {})) {
    const raw = plainEntry(entry, MAX_RECORD_JSON_CHARS);
    if (raw === undefined || (raw['outcome'] !== 'applied' && raw['outcome'] !== 'refused') || typeof raw['at'] !== 'number' || typeof raw['epoch'] !== 'number') continue;
    actions.set(id, { outcome: raw['outcome'], reason: typeof raw['reason'] === 'string' ? raw['reason'] : '', at: raw['at'], epoch: raw['epoch'] });
  }
  return { instances, actions, executed: new Set(Object.keys(root.executed ?? {})) };
}

const RUN_STATES = ['running', 'complete', 'failed', 'aborted'] as const;

/** The runs and leases of a tasks document; malformed entries are left out. */
export function readTasksDoc(doc: unknown): { runs: Map<string, TaskRun>; leases: Map<string, TaskLease> } {
  const root = (doc === undefined ? {} : toPlain(doc)) as { runs?: Record<string, unknown>; leases?: Record<string, unknown> };
  const runs = new Map<string, TaskRun>();
  const leases = new Map<string, TaskLease>();
  const num = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
  const text = (value: unknown): value is string => typeof value === 'string';
  for (const [id, entry] of Object.entries(root.runs ?? {})) {
    const raw = plainEntry(entry, MAX_RECORD_JSON_CHARS);
    if (raw === undefined || !text(raw['leaseId']) || !num(raw['epoch']) || !num(raw['startedAt'])) continue;
    if (!(RUN_STATES as readonly unknown[]).includes(raw['state'])) continue;
    runs.set(id, {
      leaseId: raw['leaseId'],
      epoch: raw['epoch'],
      state: raw['state'] as TaskRun['state'],
      startedAt: raw['startedAt'],
      ...(num(raw['endedAt']) ? { endedAt: raw['endedAt'] } : {}),
      ...(num(raw['exitCode']) ? { exitCode: raw['exitCode'] } : {}),
      ...(text(raw['output']) ? { output: raw['output'] } : {}),
      ...(text(raw['reason']) ? { reason: raw['reason'] } : {}),
      ...(num(raw['pid']) ? { pid: raw['pid'] } : {}),
    });
  }
  for (const [id, entry] of Object.entries(root.leases ?? {})) {
    const raw = plainEntry(entry, MAX_RECORD_JSON_CHARS);
    if (raw === undefined || !text(raw['leaseId']) || !text(raw['node']) || !num(raw['epoch']) || !num(raw['until']) || !num(raw['at'])) continue;
    const closed = raw['closed'] === 'cancelled' || raw['closed'] === 'aborted' ? raw['closed'] : undefined;
    leases.set(id, {
      leaseId: raw['leaseId'],
      node: raw['node'],
      epoch: raw['epoch'],
      until: raw['until'],
      at: raw['at'],
      ...(closed === undefined ? {} : { closed }),
      ...(text(raw['reason']) ? { reason: raw['reason'] } : {}),
    });
  }
  return { runs, leases };
}

/** A task as the fleet sees it: the request, and what its node and the dispatchers recorded. */
export interface TaskStatus {
  readonly id: string;
  readonly node: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly requestedAt: number;
  /** The operator key that asked for it. */
  readonly requestedBy?: string;
  readonly state: 'pending' | 'scheduled' | 'running' | 'complete' | 'failed' | 'aborted' | 'cancelled';
  /** The newest lease (highest epoch) any dispatcher gave it. */
  readonly lease?: TaskLease;
  /** Its node's run of it. */
  readonly run?: TaskRun;
  readonly cancelRequested: boolean;
}

/** Each task's newest lease across the documents (highest epoch, then latest: a deposed dispatcher's records lose). */
export function newestLeases(docs: Iterable<{ readonly leases: ReadonlyMap<string, TaskLease> }>): Map<string, TaskLease> {
  const leases = new Map<string, TaskLease>();
  for (const doc of docs) {
    for (const [id, lease] of doc.leases) {
      const held = leases.get(id);
      if (held === undefined || lease.epoch > held.epoch || (lease.epoch === held.epoch && lease.at > held.at)) leases.set(id, lease);
    }
  }
  return leases;
}

/** The final states: no dispatcher acts on such a task again. */
export const TASK_DONE_STATES: readonly TaskStatus['state'][] = ['complete', 'failed', 'aborted', 'cancelled'];

/**
 * Each requested task's status. The run its node recorded is the truth about whether and how it
 * ran — except a run still `running` whose newest lease the dispatcher closed (its node went
 * silent past the lease): that one is the lease's closed state until its node reports an end.
 * Without a run, the newest lease (highest dispatcher epoch: a deposed dispatcher's records lose)
 * says whether it was scheduled or closed; without either it is pending, or cancelled when an
 * operator cancelled it.
 */
export function taskStatuses(
  requests: ReadonlyMap<string, { readonly id: string; readonly node: string; readonly command: string; readonly args: readonly string[]; readonly timeoutMs: number; readonly requestedAt: number; readonly by?: string }>,
  cancels: ReadonlySet<string> | ReadonlyMap<string, unknown>,
  docs: ReadonlyMap<string, { readonly runs: ReadonlyMap<string, TaskRun>; readonly leases: ReadonlyMap<string, TaskLease> }>,
): TaskStatus[] {
  const leases = newestLeases(docs.values());
  const out: TaskStatus[] = [];
  for (const request of requests.values()) {
    const run = docs.get(request.node)?.runs.get(request.id);
    const lease = leases.get(request.id);
    const cancelRequested = cancels.has(request.id);
    const state: TaskStatus['state'] =
      run !== undefined && (run.state !== 'running' || lease?.closed === undefined)
        ? run.state
        : lease?.closed !== undefined
          ? lease.closed
          : lease !== undefined
            ? 'scheduled'
            : cancelRequested
              ? 'cancelled'
              : 'pending';
    out.push({
      id: request.id,
      node: request.node,
      command: request.command,
      args: request.args,
      timeoutMs: request.timeoutMs,
      requestedAt: request.requestedAt,
      ...(request.by === undefined ? {} : { requestedBy: request.by }),
      state,
      ...(lease === undefined ? {} : { lease }),
      ...(run === undefined ? {} : { run }),
      cancelRequested,
    });
  }
  return out.sort((a, b) => a.requestedAt - b.requestedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
