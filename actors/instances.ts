import {
  type ActionOutcome,
  IllegalTransitionError,
  type InstanceActionRequest,
  type InstanceEvent,
  type InstanceRecord,
  type InstanceState,
  transitionInstance,
} from '../crdt-schema/index.ts';
import { type Clock, type FleetNode, type Logger, type MemberState, type PeerId, type ProcessRunner, revokedOperatorKeys } from '../mesh/index.ts';
import type { ControlPlane } from './control-plane.ts';
import type { Behavior, Effect, EffectPort, PortOutcome } from './host.ts';
import type { MembersMessage, SingletonContext, SingletonSpec } from './placement.ts';

export const INSTANCES_SINGLETON = 'control.instances';

export interface InstanceConfig {
  readonly tickMs: number;
  /** A running instance silent (dead) this long is marked errored. */
  readonly errorAfterMs: number;
  /** A rebooting instance not back within this is marked errored. */
  readonly rebootTimeoutMs: number;
  /** A stopping instance still alive after this is marked errored. */
  readonly stopTimeoutMs: number;
}

export const DEFAULT_INSTANCE_CONFIG: InstanceConfig = { tickMs: 1_000, errorAfterMs: 60_000, rebootTimeoutMs: 10 * 60_000, stopTimeoutMs: 2 * 60_000 };

/** One member instance as the reconciler sees it. */
export interface ObservedInstance {
  readonly peerId: string;
  /** Failure detection's state; `revoked` for a node operators revoked. */
  readonly state: MemberState | 'revoked';
  /** Since when it has been in that state (the observer's clock). */
  readonly stateSince: number;
  /** When its current process started (its node document). */
  readonly startedAt?: number;
  /** For a revoked node: who revoked it and why. */
  readonly revocation?: { readonly by: string; readonly reason: string };
  /**
   * False when this observer has never heard from it (failure detection's starting `alive`, on a
   * node that restarted or joined after the member went silent): it is no evidence it is up.
   */
  readonly heard?: boolean;
}

export interface InstanceView {
  readonly now: number;
  readonly instances: readonly ObservedInstance[];
  /** Each instance's newest record (highest epoch). */
  readonly records: ReadonlyMap<string, InstanceRecord>;
  /** Operator actions no reconciler has applied or refused yet, in the order they were asked for. */
  readonly actions: ReadonlyArray<InstanceActionRequest & { readonly by: string }>;
  /** Operator keys revoked by now: their actions are refused. */
  readonly revokedOperators?: readonly string[];
}

export interface InstanceOrder {
  readonly node: string;
  readonly kind: 'instance.stop' | 'instance.reboot';
  readonly actionId: string;
}

export interface InstancePlan {
  readonly instances: ReadonlyArray<{ readonly peer: string; readonly record: InstanceRecord }>;
  readonly actions: ReadonlyArray<{ readonly id: string; readonly outcome: ActionOutcome }>;
  readonly orders: readonly InstanceOrder[];
}

/**
 * The instance reconciler's decisions, pure. Observations move an instance along the original's
 * lifecycle — alive: pending/starting → running, back after a reboot → running, stopped or
 * errored and alive again → start, running; left the fleet (stopped cleanly) → stopped; silent
 * past `errorAfterMs` → error; revoked → terminated — and operators' actions are applied once
 * each: stop (running, starting) and reboot (running) with an order to the node, start (stopped,
 * error) waits for the machine to be booted, terminate follows the revocation the CLI signs with
 * it. An action the lifecycle does not allow is refused, and the refusal recorded with the
 * allowed events. Every transition names who (an operator key, or this reconciler's node), the
 * epoch and why.
 */
export function planInstances(view: InstanceView, context: { readonly epoch: number; readonly owner: string }, config: InstanceConfig): InstancePlan {
  const { now } = view;
  const changed = new Map<string, InstanceRecord>();
  const current = (peer: string): InstanceRecord | undefined => changed.get(peer) ?? view.records.get(peer);
  const step = (peer: string, event: InstanceEvent, reason: string, by = context.owner): void => {
    const held = current(peer);
    const transition = transitionInstance(held?.state ?? 'pending', event, { by, epoch: context.epoch, reason, at: now });
    changed.set(peer, { state: transition.to, since: now, epoch: context.epoch, transitions: [...(held?.transitions ?? []), transition] });
  };
  const state = (peer: string): InstanceState => current(peer)?.state ?? 'pending';

  for (const seen of view.instances) {
    const peer = seen.peerId;
    const since = current(peer)?.since ?? 0;
    if (seen.state === 'revoked') {
      if (state(peer) === 'terminated') continue;
      const by = seen.revocation?.by ?? context.owner;
      if (state(peer) === 'stopping') step(peer, 'mark_stopped', 'revoked while stopping');
      if (!['stopped', 'running', 'error'].includes(state(peer))) step(peer, 'mark_errored', `revoked while ${state(peer)}`);
      step(peer, 'terminate', `revoked by an operator${seen.revocation?.reason ? `: ${seen.revocation.reason}` : ''}`, by);
      continue;
    }
    const up = seen.heard !== false && (seen.state === 'alive' || seen.state === 'suspect');
    switch (state(peer)) {
      case 'pending':
      case 'provisioning':
      case 'starting':
        if (up) step(peer, 'mark_running', 'it is alive in the fleet');
        break;
      case 'rebooting':
        if (up && (seen.startedAt ?? 0) > since) step(peer, 'mark_running', 'it is back after the reboot');
        else if (now - since >= config.rebootTimeoutMs) step(peer, 'mark_errored', `not back ${Math.round(config.rebootTimeoutMs / 1000)} s after the reboot`);
        break;
      case 'stopped':
      case 'error':
        if (up && seen.stateSince > since) {
          step(peer, 'start', 'it came back');
          step(peer, 'mark_running', 'it is alive in the fleet');
        }
        break;
      case 'stopping':
        if (seen.state === 'left' || seen.state === 'dead') step(peer, 'mark_stopped', seen.state === 'left' ? 'it left the fleet' : 'it went silent after the stop');
        else if (now - since >= config.stopTimeoutMs) step(peer, 'mark_errored', `still alive ${Math.round(config.stopTimeoutMs / 1000)} s after the stop`);
        break;
      case 'running':
        if (seen.state === 'left') step(peer, 'mark_stopped', 'it left the fleet (stopped cleanly)');
        else if (seen.state === 'dead' && now - seen.stateSince >= config.errorAfterMs) step(peer, 'mark_errored', `silent for ${Math.round((now - seen.stateSince) / 1000)} s`);
        break;
      default:
        break;
    }
  }

  const known = new Map(view.instances.map((seen) => [seen.peerId, seen]));
  const outcomes: Array<{ id: string; outcome: ActionOutcome }> = [];
  const orders: InstanceOrder[] = [];
  const done = (id: string, outcome: 'applied' | 'refused', reason: string): void => void outcomes.push({ id, outcome: { outcome, reason, at: now, epoch: context.epoch } });
  const revoked = new Set(view.revokedOperators ?? []);
  for (const action of view.actions) {
    if (revoked.has(action.by)) {
      done(action.id, 'refused', 'asked for by an operator key revoked since');
      continue;
    }
    const seen = known.get(action.node);
    if (seen === undefined) {
      done(action.id, 'refused', `${action.node} is not a member of the fleet`);
      continue;
    }
    if (action.action === 'terminate') {
      // The CLI signs the revocation with the action; until it arrives, the action waits.
      if (state(action.node) === 'terminated') done(action.id, 'applied', 'terminated: revoked and disconnected everywhere');
      continue;
    }
    const event: InstanceEvent = action.action;
    try {
      step(action.node, event, action.reason === '' ? `an operator asked to ${action.action} it` : action.reason, action.by);
    } catch (error) {
      if (!(error instanceof IllegalTransitionError)) throw error;
      done(action.id, 'refused', error.message);
      continue;
    }
    if (action.action === 'start') done(action.id, 'applied', 'waiting for the machine to boot: it is marked running once it is back in the fleet');
    else if (seen.state !== 'alive' && seen.state !== 'suspect') done(action.id, 'applied', `recorded; ${action.node} is ${seen.state}, so no order could be sent`);
    else {
      orders.push({ node: action.node, kind: action.action === 'stop' ? 'instance.stop' : 'instance.reboot', actionId: action.id });
      done(action.id, 'applied', `ordered ${action.node} to ${action.action}`);
    }
  }
  return { instances: [...changed.entries()].map(([peer, record]) => ({ peer, record })), actions: outcomes, orders };
}

interface ReconcilerState {
  readonly ticking: boolean;
}

type ReconcilerMessage = MembersMessage | { readonly type: 'tick' } | { readonly type: 'view'; readonly outcome: PortOutcome } | { readonly type: 'recorded'; readonly orders: readonly InstanceOrder[]; readonly outcome: PortOutcome } | { readonly type: 'sent' };

export const INSTANCE_PORTS = { view: 'instances.view', record: 'instances.record', order: 'instances.order' } as const;

/** The reconciler's behaviour: one look every `tickMs`; records are on record before any order goes out. */
export function instanceReconcilerBehavior(context: SingletonContext, config: InstanceConfig): Behavior<ReconcilerState, ReconcilerMessage> {
  const look: Effect = { type: 'perform', port: INSTANCE_PORTS.view, request: {}, then: (outcome) => ({ type: 'view', outcome }) };
  const next: Effect = { type: 'schedule', delayMs: config.tickMs, message: { type: 'tick' } };
  return {
    initial: () => ({ ticking: false }),
    step: (state, message) => {
      switch (message.type) {
        case 'members':
          return state.ticking ? { state } : { state: { ticking: true }, effects: [look] };
        case 'tick':
          return { state, effects: [look] };
        case 'view': {
          if (!message.outcome.ok) return { state, effects: [next] };
          const plan = planInstances(message.outcome.value as InstanceView, context, config);
          if (plan.instances.length === 0 && plan.actions.length === 0) return { state, effects: [next] };
          const record: Effect = { type: 'perform', port: INSTANCE_PORTS.record, request: { instances: plan.instances, actions: plan.actions }, then: (outcome) => ({ type: 'recorded', orders: plan.orders, outcome }) };
          return { state, effects: [record] };
        }
        case 'recorded': {
          const orders: Effect[] = message.outcome.ok
            ? message.orders.map((order) => ({ type: 'perform', port: INSTANCE_PORTS.order, request: { ...order, epoch: context.epoch, owner: context.owner }, then: () => ({ type: 'sent' }) }))
            : [];
          return { state, effects: [...orders, next] };
        }
        case 'sent':
          return { state };
      }
    },
  };
}

export function instanceReconcilerSpec(config: Partial<InstanceConfig> = {}): SingletonSpec {
  const full = { ...DEFAULT_INSTANCE_CONFIG, ...config };
  return { name: INSTANCES_SINGLETON, observesMembers: true, behavior: (context) => instanceReconcilerBehavior(context, full) as Behavior<unknown, unknown> };
}

/** Every instance's newest record across the held documents (highest epoch, then latest). */
export function instanceRecords(node: FleetNode): Map<string, InstanceRecord> {
  return node.tasks.instances();
}

/** What the reconciler sees on `node`: members with their failure-detection states, revoked nodes, records, pending actions. */
export function instanceView(node: FleetNode, clock: Clock): InstanceView {
  const fleet = node.fleet();
  const states = node.swim.states();
  const instances: ObservedInstance[] = node.members().map((member) => {
    const swim = states.get(member.peerId);
    return { peerId: member.peerId, state: member.state, stateSince: swim?.since ?? 0, heard: member.self || node.swim.heardFrom(member.peerId), ...(member.startedAt === undefined ? {} : { startedAt: member.startedAt }) };
  });
  for (const [peer, revocation] of Object.entries(fleet?.revoked ?? {})) {
    instances.push({ peerId: peer, state: 'revoked', stateSince: revocation.at, revocation: { by: revocation.by, reason: revocation.reason } });
  }
  const handled = new Set<string>();
  for (const doc of node.tasks.all().values()) for (const id of doc.actions.keys()) handled.add(id);
  const actions = node.desired.tasks().actions.filter((action) => !handled.has(action.id));
  const now = clock.now();
  const revokedOperators = revokedOperatorKeys(fleet, now);
  return { now, instances, records: instanceRecords(node), actions, revokedOperators };
}

/**
 * The reconciler's ports on one node, and the executors every node has: `instance.stop` (a clean
 * stop of this node, through `stopSelf`) and `instance.reboot` (the configured reboot command).
 */
export function instancePorts(node: FleetNode, clock: Clock, controlPlane: () => ControlPlane): Record<string, EffectPort> {
  return {
    [INSTANCE_PORTS.view]: async () => instanceView(node, clock),
    [INSTANCE_PORTS.record]: async (request) => node.tasks.recordInstances(request as Parameters<FleetNode['tasks']['recordInstances']>[0]),
    [INSTANCE_PORTS.order]: async (request) => {
      const order = request as InstanceOrder & { epoch: number; owner: string };
      const answer = await controlPlane().order(order.node as PeerId, INSTANCES_SINGLETON, { epoch: order.epoch, owner: order.owner }, order.kind, JSON.stringify({ actionId: order.actionId }));
      // A node that cannot reboot (no reboot command configured) keeps running: the record says so.
      const result = answer.accepted ? (answer.result as { rebooting?: boolean; reason?: string }) : undefined;
      const held = instanceRecords(node).get(order.node);
      if (order.kind === 'instance.reboot' && result?.rebooting === false && held?.state === 'rebooting') {
        const transition = transitionInstance('rebooting', 'mark_running', { by: order.owner, epoch: order.epoch, reason: `the reboot was not done: ${result.reason ?? 'the node refused'}`, at: clock.now() });
        await node.tasks.recordInstances({ instances: [{ peer: order.node, record: { state: 'running', since: clock.now(), epoch: order.epoch, transitions: [...held.transitions, transition] } }], actions: [] });
      }
      return answer;
    },
  };
}

/**
 * Registers this node's `instance.stop` and `instance.reboot` executors. Each action is carried
 * out at most once on this node: its id is recorded durably in the node's own document before it
 * acts, so a new reconciler that repeats an order after a failover (it had not seen the old one's
 * outcome yet) is answered as a duplicate — a node restarted by its operator is not stopped again.
 */
export function registerInstanceExecutors(
  controlPlane: ControlPlane,
  init: { readonly node: FleetNode; readonly stopSelf: () => void; readonly reboot: readonly string[] | undefined; readonly runner: ProcessRunner; readonly clock: Clock; readonly log: Logger },
): void {
  // Actions being recorded: the durable record answers for each once it is written.
  const recording = new Set<string>();
  const once = (kind: 'stop' | 'reboot', body: string, act: () => Record<string, unknown>): Record<string, unknown> => {
    const { actionId } = JSON.parse(body) as { actionId: string };
    if (recording.has(actionId) || init.node.tasks.of(init.node.peer).executed.has(actionId)) return { duplicate: true };
    // Only what an operator signed, for this node, and not by a key revoked since: an order alone
    // (which any member can send) never stops or reboots a node.
    const action = init.node.desired.tasks().actions.find((a) => a.id === actionId);
    if (action === undefined || action.node !== init.node.peer || action.action !== kind) return { refused: true, reason: `no operator-signed ${kind} ${actionId} for this node here (yet)` };
    if (revokedOperatorKeys(init.node.fleet(), init.clock.now()).includes(action.by)) return { refused: true, reason: `${actionId} was asked for by an operator key revoked since` };
    const answer = act();
    if (answer['refused'] !== undefined) return answer;
    recording.add(actionId);
    void init.node.tasks
      .recordExecuted(actionId, init.clock.now())
      .then(() => {
        recording.delete(actionId);
        (answer['then'] as () => void)();
      })
      .catch((error: unknown) => {
        // Not carried out: a repeat of the order may try again.
        recording.delete(actionId);
        init.log.warn('could not record an instance action; not carried out', { action: actionId, error: String(error) });
      });
    const { then: _, ...rest } = answer;
    return rest;
  };
  controlPlane.registerExecutor('instance.stop', (body) =>
    once('stop', body, () => ({
      stopping: true,
      then: () => {
        init.log.info('stopping: the instance reconciler relayed an operator\'s stop');
        // After the answer has gone out.
        init.clock.setTimeout(() => init.stopSelf(), 100);
      },
    })),
    { singleton: INSTANCES_SINGLETON },
  );
  controlPlane.registerExecutor('instance.reboot', (body) =>
    once('reboot', body, () => {
      const argv = init.reboot;
      if (argv === undefined || argv.length === 0) return { rebooting: false, refused: true, reason: 'no reboot command is configured on this node (POWERNODE_REBOOT_COMMAND)' };
      return {
        rebooting: true,
        then: () => {
          init.log.info('rebooting: the instance reconciler relayed an operator\'s reboot', { command: argv.join(' ') });
          void init.runner.run({ command: argv[0]!, args: argv.slice(1), timeoutMs: 60_000 }).catch((error: unknown) => init.log.warn('the reboot command failed to start', { error: String(error) }));
        },
      };
    }),
    { singleton: INSTANCES_SINGLETON },
  );
}
