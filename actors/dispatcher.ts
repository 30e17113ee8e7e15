import { TASK_DONE_STATES, type TaskLease, type TaskStatus } from '../crdt-schema/index.ts';
import type { MemberState } from '../mesh/index.ts';
import type { Behavior, Effect, PortOutcome } from './host.ts';
import type { MembersMessage, SingletonContext, SingletonSpec } from './placement.ts';

export const DISPATCHER_SINGLETON = 'control.dispatcher';

/** How the dispatcher leases tasks (docs/CATALOG.md §Tasks). */
export interface DispatchConfig {
  /** How long a node may run a task without hearing from the dispatcher. */
  readonly leaseMs: number;
  /** A running task's lease is renewed once less than this is left. */
  readonly renewWhenLeftMs: number;
  /** How often the dispatcher looks at the tasks. */
  readonly tickMs: number;
}

/** How long past a silent node's lease its running task is closed (the node's lease watch runs every second; clocks differ). */
export const SILENT_RUN_MARGIN_MS = 30_000;

export const DEFAULT_DISPATCH_CONFIG: DispatchConfig = { leaseMs: 60_000, renewWhenLeftMs: 40_000, tickMs: 1_000 };

/** An order the dispatcher sends a node's `task.*` executors. */
export interface TaskOrder {
  readonly taskId: string;
  readonly node: string;
  readonly kind: 'task.run' | 'task.abort';
  /** For task.run: the lease the node may run it under. */
  readonly lease?: TaskLease;
}

/** What one look at the tasks decides: leases to record (durably, first), then orders to send. */
export interface DispatchPlan {
  readonly leases: ReadonlyArray<{ readonly taskId: string; readonly lease: TaskLease }>;
  readonly orders: readonly TaskOrder[];
}

/**
 * The dispatcher's decisions, a pure function of what it sees. A task runs only on the node it
 * names, and that node never starts a task it holds a run of (the run is recorded durably before
 * the command starts), so no task runs twice whatever dispatchers come and go; what the
 * dispatcher adds is leases (a node stops a command whose lease ran out: cut off from the
 * majority side, it does not run on unsupervised), renewals, cancellation, and closing tasks
 * whose node is gone.
 *
 * For each task not done:
 * - running: abort it if an operator cancelled it; otherwise renew its lease when it was given by
 *   an earlier epoch or has less than `renewWhenLeftMs` left (while its node is alive or suspect);
 *   its node dead or gone for `SILENT_RUN_MARGIN_MS` past the lease → closed as aborted.
 * - not started: cancelled → closed as cancelled; node alive or suspect → a lease of this epoch
 *   (a new one when there is none, an older epoch's, or an expired one) and the run order, sent
 *   again each look until the node records a run; node dead or gone with a lapsed lease → closed as
 *   aborted (whether it began is unknown; if its node comes back with a run, the run is the truth).
 * Tasks with an order in flight are left alone until it is answered.
 */
export function planDispatch(input: {
  readonly now: number;
  readonly epoch: number;
  readonly statuses: readonly TaskStatus[];
  readonly memberState: (peer: string) => MemberState | 'unknown';
  readonly inFlight: ReadonlySet<string>;
  readonly config: DispatchConfig;
  /** Operator keys revoked by now: their tasks are not started, and stopped if they run. */
  readonly revokedOperators?: ReadonlySet<string>;
}): DispatchPlan {
  const { now, epoch, config } = input;
  const leases: Array<{ taskId: string; lease: TaskLease }> = [];
  const orders: TaskOrder[] = [];
  const lease = (status: TaskStatus, leaseId: string): TaskLease => ({ leaseId, node: status.node, epoch, until: now + config.leaseMs, at: now });
  for (const status of input.statuses) {
    if (TASK_DONE_STATES.includes(status.state) || input.inFlight.has(status.id)) continue;
    const member = input.memberState(status.node);
    const reachable = member === 'alive' || member === 'suspect';
    const held = status.lease;
    const revoked = status.requestedBy !== undefined && input.revokedOperators?.has(status.requestedBy) === true;
    if (status.state === 'running') {
      if (reachable && (status.cancelRequested || revoked)) {
        orders.push({ taskId: status.id, node: status.node, kind: 'task.abort' });
        continue;
      }
      if (!reachable) {
        // Its node stops the command when the lease runs out by its own clock (checked every
        // second); past that and a margin for skew, the run cannot be going on, and a node that
        // never comes back would leave it "running" for ever. A node that does come back reports
        // how the run ended, which is then the truth.
        const until = held?.until ?? status.run!.startedAt + config.leaseMs;
        if (now >= until + SILENT_RUN_MARGIN_MS) {
          const reason = member === 'unknown' ? `${status.node} left the fleet while it ran` : `${status.node} is ${member}: its lease ran out while it ran, and its node stops the command then`;
          leases.push({ taskId: status.id, lease: { ...lease(status, status.run!.leaseId), until: now, closed: 'aborted', reason } });
        }
        continue;
      }
      if (held === undefined || held.epoch < epoch || held.until - now < config.renewWhenLeftMs) {
        const renewed = lease(status, status.run!.leaseId);
        leases.push({ taskId: status.id, lease: renewed });
        orders.push({ taskId: status.id, node: status.node, kind: 'task.run', lease: renewed });
      }
      continue;
    }
    if (status.cancelRequested || revoked) {
      const closed = revoked ? { closed: 'aborted' as const, reason: 'asked for by an operator key revoked since' } : { closed: 'cancelled' as const, reason: 'cancelled by an operator before it began' };
      leases.push({ taskId: status.id, lease: { ...lease(status, held?.leaseId ?? `${epoch}:${status.id}`), until: now, ...closed } });
      continue;
    }
    const lapsed = held === undefined || held.until <= now;
    if (reachable) {
      if (held === undefined || held.epoch < epoch || lapsed) {
        const fresh = lease(status, `${epoch}:${status.id}`);
        leases.push({ taskId: status.id, lease: fresh });
        orders.push({ taskId: status.id, node: status.node, kind: 'task.run', lease: fresh });
      } else {
        orders.push({ taskId: status.id, node: status.node, kind: 'task.run', lease: held });
      }
    } else if (member === 'unknown' || (held !== undefined && lapsed)) {
      const reason = member === 'unknown' ? `${status.node} is not a member of the fleet` : `${status.node} is ${member}: its lease lapsed before it recorded a run`;
      leases.push({ taskId: status.id, lease: { ...lease(status, held?.leaseId ?? `${epoch}:${status.id}`), until: now, closed: 'aborted', reason } });
    }
  }
  return { leases, orders };
}

/** What the dispatcher's ports answer: the tasks as this node sees them. */
export interface DispatchView {
  readonly now: number;
  readonly statuses: readonly TaskStatus[];
  readonly revokedOperators?: readonly string[];
}

interface DispatcherState {
  readonly members: Readonly<Record<string, MemberState>>;
  readonly ticking: boolean;
  readonly inFlight: readonly string[];
}

type DispatcherMessage =
  | MembersMessage
  | { readonly type: 'tick' }
  | { readonly type: 'view'; readonly outcome: PortOutcome }
  | { readonly type: 'leased'; readonly orders: readonly TaskOrder[]; readonly outcome: PortOutcome }
  | { readonly type: 'answered'; readonly taskId: string; readonly outcome: PortOutcome };

/** Ports the dispatcher performs on (given to the control plane by whoever wires it). */
export const DISPATCH_PORTS = { view: 'tasks.view', lease: 'tasks.lease', order: 'tasks.order' } as const;

/** The dispatcher singleton's behaviour: one look at the tasks every `tickMs`. */
export function dispatcherBehavior(context: SingletonContext, config: DispatchConfig): Behavior<DispatcherState, DispatcherMessage> {
  const look: Effect = { type: 'perform', port: DISPATCH_PORTS.view, request: {}, then: (outcome) => ({ type: 'view', outcome }) };
  const orderEffects = (orders: readonly TaskOrder[]): Effect[] =>
    orders.map((order) => ({
      type: 'perform',
      port: DISPATCH_PORTS.order,
      request: { ...order, epoch: context.epoch, owner: context.owner },
      then: (outcome) => ({ type: 'answered', taskId: order.taskId, outcome }),
    }));
  return {
    initial: () => ({ members: {}, ticking: false, inFlight: [] }),
    step: (state, message) => {
      switch (message.type) {
        case 'members': {
          const members = Object.fromEntries(message.members.map((m) => [m.peerId, m.state]));
          // The first member list starts the looks.
          return state.ticking ? { state: { ...state, members } } : { state: { ...state, members, ticking: true }, effects: [look] };
        }
        case 'tick':
          return { state, effects: [look] };
        case 'view': {
          const next: Effect = { type: 'schedule', delayMs: config.tickMs, message: { type: 'tick' } };
          if (!message.outcome.ok) return { state, effects: [next] };
          const view = message.outcome.value as DispatchView;
          const plan = planDispatch({
            now: view.now,
            epoch: context.epoch,
            statuses: view.statuses,
            memberState: (peer) => state.members[peer] ?? 'unknown',
            inFlight: new Set(state.inFlight),
            config,
            revokedOperators: new Set(view.revokedOperators ?? []),
          });
          if (plan.leases.length === 0) {
            return { state: { ...state, inFlight: [...state.inFlight, ...plan.orders.map((o) => o.taskId)] }, effects: [...orderEffects(plan.orders), next] };
          }
          // Leases are on record before any order that relies on them is sent.
          const record: Effect = { type: 'perform', port: DISPATCH_PORTS.lease, request: plan.leases, then: (outcome) => ({ type: 'leased', orders: plan.orders, outcome }) };
          return { state: { ...state, inFlight: [...state.inFlight, ...plan.orders.map((o) => o.taskId)] }, effects: [record, next] };
        }
        case 'leased': {
          if (message.outcome.ok) return { state, effects: orderEffects(message.orders) };
          const failed = new Set(message.orders.map((o) => o.taskId));
          return { state: { ...state, inFlight: state.inFlight.filter((id) => !failed.has(id)) } };
        }
        case 'answered':
          return { state: { ...state, inFlight: state.inFlight.filter((id) => id !== message.taskId) } };
      }
    },
  };
}

/** The dispatcher as a singleton every node registers. */
export function dispatcherSpec(config: Partial<DispatchConfig> = {}): SingletonSpec {
  const full = { ...DEFAULT_DISPATCH_CONFIG, ...config };
  return { name: DISPATCHER_SINGLETON, observesMembers: true, behavior: (context) => dispatcherBehavior(context, full) as Behavior<unknown, unknown> };
}
