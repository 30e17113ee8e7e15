import { describe, expect, it } from 'vitest';
import {
  CatalogInputError,
  INSTANCE_STATES,
  IllegalTransitionError,
  type StateMachine,
  type InstanceEvent,
  type InstanceState,
  TASK_FINAL_STATES,
  TASK_STATES,
  type TaskEvent,
  type TaskState,
  VERSION_STATES,
  type VersionState,
  instanceMachine,
  moduleVersionOf,
  moveVersion,
  taskMachine,
  transitionInstance,
  transitionTask,
} from '../../crdt-schema/index.ts';

const actor = { by: 'operator-key', epoch: 3, reason: 'maintenance', at: 1_700_000_000_000 };

/** The original's instance transitions (node_instance.rb), written out independently of the code. */
const INSTANCE_TABLE: Record<InstanceEvent, [readonly InstanceState[], InstanceState]> = {
  start: [['stopped', 'error'], 'starting'],
  stop: [['running', 'starting'], 'stopping'],
  reboot: [['running'], 'rebooting'],
  terminate: [['stopped', 'running', 'error'], 'terminated'],
  mark_provisioning: [['pending'], 'provisioning'],
  mark_running: [['starting', 'rebooting', 'provisioning', 'pending'], 'running'],
  mark_stopped: [['stopping', 'running'], 'stopped'],
  mark_errored: [['pending', 'provisioning', 'starting', 'running', 'stopping', 'rebooting'], 'error'],
};

const TASK_TABLE: Record<TaskEvent, [readonly TaskState[], TaskState]> = {
  schedule: [['pending'], 'scheduled'],
  start: [['pending', 'scheduled'], 'running'],
  complete: [['running'], 'complete'],
  fail: [['running'], 'failed'],
  abort: [['running'], 'aborted'],
  cancel: [['pending', 'scheduled'], 'cancelled'],
};

/** Every event from every state: allowed exactly where `table` says, to the state it says. */
function expectTable<S extends string, E extends string>(machine: StateMachine<S, E>, states: readonly S[], table: Record<E, [readonly S[], S]>): void {
  for (const state of states) {
    for (const event of Object.keys(table) as E[]) {
      const [from, to] = table[event];
      if (from.includes(state)) expect(machine.next(state, event)).toBe(to);
      else expect(() => machine.next(state, event)).toThrow(IllegalTransitionError);
    }
  }
}

describe('instance lifecycle', () => {
  it('allows exactly the transitions the original allows, for every state and event', () => {
    expectTable(instanceMachine, INSTANCE_STATES, INSTANCE_TABLE);
  });

  it('records who, epoch, reason and time with each transition', () => {
    expect(transitionInstance('running', 'reboot', actor)).toEqual({ from: 'running', to: 'rebooting', event: 'reboot', ...actor });
  });

  it('names the allowed events when a transition is illegal', () => {
    try {
      transitionInstance('stopped', 'reboot', actor);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(IllegalTransitionError);
      expect((error as IllegalTransitionError).allowed).toEqual(['start', 'terminate']);
      expect((error as Error).message).toBe('an instance that is stopped cannot take reboot; from stopped it can take: start, terminate');
    }
  });

  it('says terminated is final', () => {
    expect(() => transitionInstance('terminated', 'start', actor)).toThrow('from terminated it can take: nothing (terminated is final)');
  });

  it('refuses a record without an actor or with an oversized reason', () => {
    expect(() => transitionInstance('running', 'stop', { ...actor, by: '' })).toThrow(CatalogInputError);
    expect(() => transitionInstance('running', 'stop', { ...actor, reason: 'x'.repeat(501) })).toThrow('transition.reason: must be at most 500 characters');
    expect(() => transitionInstance('running', 'stop', { ...actor, epoch: -1 })).toThrow('transition.epoch');
  });
});

describe('task lifecycle', () => {
  it('allows exactly the documented transitions, for every state and event', () => {
    expectTable(taskMachine, TASK_STATES, TASK_TABLE);
  });

  it('leaves no way out of a final state', () => {
    for (const state of TASK_FINAL_STATES) expect(taskMachine.allowed(state)).toEqual([]);
  });

  it('aborts, not cancels, a running task, and says so', () => {
    expect(() => transitionTask('running', 'cancel', actor)).toThrow('from running it can take: complete, fail, abort');
    expect(transitionTask('running', 'abort', actor)).toMatchObject({ from: 'running', to: 'aborted' });
  });
});

describe('module versions', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const version = (state: VersionState) => moduleVersionOf({ module: 'nginx', number: 4, state, artifacts: { amd64: { digest } } });

  it('moves built → staging → blessed → live → retired', () => {
    let current = version('built');
    for (const to of ['staging', 'blessed', 'live', 'retired'] as const) current = moveVersion(current, to);
    expect(current.state).toBe('retired');
  });

  it('lets staging go back to built and anything but retired go to retired', () => {
    expect(moveVersion(version('staging'), 'built').state).toBe('built');
    for (const state of VERSION_STATES.filter((s) => s !== 'retired')) expect(moveVersion(version(state), 'retired').state).toBe('retired');
  });

  it('refuses skipping a rung, listing where the version may go', () => {
    expect(() => moveVersion(version('built'), 'live')).toThrow('a module version that is built cannot move to live; from built it can move to: staging, retired');
    expect(() => moveVersion(version('retired'), 'built')).toThrow(IllegalTransitionError);
    expect(() => moveVersion(version('live'), 'blessed')).toThrow('from live it can move to: retired');
  });

  it('refuses a version without artifacts or with a malformed digest', () => {
    expect(() => moduleVersionOf({ module: 'nginx', number: 1, artifacts: {} })).toThrow('a version needs an artifact for at least one architecture');
    expect(() => moduleVersionOf({ module: 'nginx', number: 1, artifacts: { amd64: { digest: 'md5:abc' } } })).toThrow('version "nginx".artifacts.amd64.digest: must be "sha256:"');
    expect(() => moduleVersionOf({ module: 'nginx', number: 1, artifacts: { 'x86 64': { digest } } })).toThrow('keyed by architecture names');
  });
});
