import { fail, integerOf, listOf, nameOf, objectOf, oneOf, patternOf, textOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';

/** A peer id (base58btc), the only way a task names its node: a task runs on exactly one node. */
const PEER_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{40,64}$/;

/** The default time a task's command may run, and the longest allowed. */
export const TASK_TIMEOUT_DEFAULT_MS = 10 * 60_000;
export const TASK_TIMEOUT_MAX_MS = 24 * 3_600_000;
/** Arguments one task's command may have. */
export const TASK_ARGS_MAX = 256;

/**
 * A task an operator asked for: run `command` with `args` on `node` (no shell), within
 * `timeoutMs`. Its id is chosen by whoever creates it (the CLI: random), and names it everywhere.
 */
export interface TaskRequest {
  readonly id: string;
  readonly node: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
}

/** An operator's request to stop a task: cancelled if it has not started, aborted if it runs. */
export interface TaskCancel {
  readonly id: string;
  readonly reason: string;
}

/** Checks a task request from outside; throws CatalogInputError. */
export function taskRequestOf(value: unknown): TaskRequest {
  const raw = objectOf(value, 'task', ['id', 'node', 'command', 'args', 'timeoutMs']);
  const id = nameOf(raw['id'], 'task.id');
  const path = `task ${JSON.stringify(id)}`;
  const command = textOf(raw['command'], `${path}.command`, CATALOG_LIMITS.commandCharsMax);
  if (command.length === 0) fail(`${path}.command`, 'name the program to run');
  return {
    id,
    node: patternOf(raw['node'], `${path}.node`, PEER_PATTERN, 'the peer id of the node that runs it'),
    command,
    args: listOf(raw['args'], `${path}.args`, TASK_ARGS_MAX, (arg, argPath) => textOf(arg, argPath, CATALOG_LIMITS.commandCharsMax)),
    timeoutMs: integerOf(raw['timeoutMs'] ?? TASK_TIMEOUT_DEFAULT_MS, `${path}.timeoutMs`, 1_000, TASK_TIMEOUT_MAX_MS),
  };
}

/** Checks a cancel request from outside; throws CatalogInputError. */
export function taskCancelOf(value: unknown): TaskCancel {
  const raw = objectOf(value, 'task cancel', ['id', 'reason']);
  return { id: nameOf(raw['id'], 'task cancel.id'), reason: raw['reason'] === undefined ? '' : textOf(raw['reason'], 'task cancel.reason', 500) };
}

/** What an operator can ask of an instance (a member machine). */
export const INSTANCE_ACTIONS = ['start', 'stop', 'reboot', 'terminate'] as const;
export type InstanceAction = (typeof INSTANCE_ACTIONS)[number];

/**
 * An operator's request to start, stop, reboot or terminate the instance that is `node`. The
 * instance reconciler applies each once (its id names it), as a transition recorded with the
 * operator's key and the reconciler's epoch.
 */
export interface InstanceActionRequest {
  readonly id: string;
  readonly node: string;
  readonly action: InstanceAction;
  readonly reason: string;
}

/** Checks an instance action from outside; throws CatalogInputError. */
export function instanceActionOf(value: unknown): InstanceActionRequest {
  const raw = objectOf(value, 'instance action', ['id', 'node', 'action', 'reason']);
  const id = nameOf(raw['id'], 'instance action.id');
  const path = `instance action ${JSON.stringify(id)}`;
  return {
    id,
    node: patternOf(raw['node'], `${path}.node`, PEER_PATTERN, 'the peer id of the instance'),
    action: oneOf(raw['action'], `${path}.action`, INSTANCE_ACTIONS),
    reason: raw['reason'] === undefined ? '' : textOf(raw['reason'], `${path}.reason`, 500),
  };
}
