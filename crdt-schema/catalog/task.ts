import { StateMachine, type TransitionActor, type TransitionRecord, recordTransition } from './state-machine.ts';

/** The states of a task (a command a node runs: start, sync_modules, apply_config…). */
export const TASK_STATES = ['pending', 'scheduled', 'running', 'complete', 'failed', 'aborted', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const TASK_EVENTS = ['schedule', 'start', 'complete', 'fail', 'abort', 'cancel'] as const;
export type TaskEvent = (typeof TASK_EVENTS)[number];

/** Where a task ends: no event leaves these states. */
export const TASK_FINAL_STATES: readonly TaskState[] = ['complete', 'failed', 'aborted', 'cancelled'];

/**
 * The original's task transitions (task.rb): scheduled once a node is chosen (for the dispatcher,
 * when it leases the task), started from pending or scheduled, and ended from running as complete,
 * failed (the command failed) or aborted (stopped while running); a task that never started is
 * cancelled. A running task cannot be cancelled: it is aborted, so the record says it had begun.
 */
export const taskMachine = new StateMachine<TaskState, TaskEvent>('task', [
  { event: 'schedule', from: ['pending'], to: 'scheduled' },
  { event: 'start', from: ['pending', 'scheduled'], to: 'running' },
  { event: 'complete', from: ['running'], to: 'complete' },
  { event: 'fail', from: ['running'], to: 'failed' },
  { event: 'abort', from: ['running'], to: 'aborted' },
  { event: 'cancel', from: ['pending', 'scheduled'], to: 'cancelled' },
]);

/** A task transition record. */
export type TaskTransition = TransitionRecord<TaskState, TaskEvent>;

/** Applies `event` to a task in state `from`; throws IllegalTransitionError listing the allowed events. */
export function transitionTask(from: TaskState, event: TaskEvent, actor: TransitionActor): TaskTransition {
  return recordTransition(taskMachine, from, event, actor);
}
