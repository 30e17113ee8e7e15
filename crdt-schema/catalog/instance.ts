import { StateMachine, type TransitionActor, type TransitionRecord, recordTransition } from './state-machine.ts';

/** The states of a node instance (a machine a node runs or provisions). */
export const INSTANCE_STATES = ['pending', 'provisioning', 'starting', 'running', 'stopping', 'stopped', 'rebooting', 'terminated', 'error'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** Operator requests (start, stop, reboot, terminate) and runtime reports (mark_*). */
export const INSTANCE_EVENTS = ['start', 'stop', 'reboot', 'terminate', 'mark_provisioning', 'mark_running', 'mark_stopped', 'mark_errored'] as const;
export type InstanceEvent = (typeof INSTANCE_EVENTS)[number];

/**
 * The original's instance transitions (node_instance.rb). `mark_errored` is allowed from the
 * states the original's code lists: every state but stopped, error and terminated (its summary says
 * "any non-terminal"; the code keeps a stopped instance from being marked errored, and error to
 * error would record nothing). `terminated` is final.
 */
export const instanceMachine = new StateMachine<InstanceState, InstanceEvent>('instance', [
  { event: 'start', from: ['stopped', 'error'], to: 'starting' },
  { event: 'stop', from: ['running', 'starting'], to: 'stopping' },
  { event: 'reboot', from: ['running'], to: 'rebooting' },
  { event: 'terminate', from: ['stopped', 'running', 'error'], to: 'terminated' },
  { event: 'mark_provisioning', from: ['pending'], to: 'provisioning' },
  { event: 'mark_running', from: ['starting', 'rebooting', 'provisioning', 'pending'], to: 'running' },
  { event: 'mark_stopped', from: ['stopping', 'running'], to: 'stopped' },
  { event: 'mark_errored', from: ['pending', 'provisioning', 'starting', 'running', 'stopping', 'rebooting'], to: 'error' },
]);

/** An instance transition record. */
export type InstanceTransition = TransitionRecord<InstanceState, InstanceEvent>;

/** Applies `event` to an instance in state `from`; throws IllegalTransitionError listing the allowed events. */
export function transitionInstance(from: InstanceState, event: InstanceEvent, actor: TransitionActor): InstanceTransition {
  return recordTransition(instanceMachine, from, event, actor);
}
