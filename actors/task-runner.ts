import { TASK_OUTPUT_CHARS_MAX, type TaskLease, type TaskRun, newestLeases, taskStatuses } from '../crdt-schema/index.ts';
import { type Clock, type FleetNode, type Logger, type PeerId, type ProcessResult, type ProcessRunner, type TimerId, revokedOperatorKeys } from '../mesh/index.ts';
import type { ControlPlane } from './control-plane.ts';
import { DISPATCHER_SINGLETON, DISPATCH_PORTS, type DispatchView, type TaskOrder } from './dispatcher.ts';
import type { EffectPort } from './host.ts';

/** What a node answers to a task order. */
export type TaskOrderAnswer =
  | { readonly state: TaskRun['state'] | 'starting'; readonly leaseId: string }
  | { readonly state: 'refused'; readonly reason: string };

const WATCH_MS = 1_000;
/**
 * Every task command runs with this variable set to its run's tag (task id and lease), which
 * what it starts inherits: after a kill -9 of the node, the next start finds and stops them all.
 */
export const TASK_RUN_ENV = 'POWERNODE_TASK_RUN';
const runTag = (taskId: string, leaseId: string): string => `${taskId} ${leaseId}`;
/** No lease is taken for longer than this, whatever an order says. */
export const MAX_LEASE_MS = 10 * 60_000;


/**
 * Runs the tasks the dispatcher leases to this node (the `task.run` and `task.abort` executors,
 * behind the control plane's epoch fence). Only tasks an operator signed (this node's copy of
 * `desired/tasks`) are run, never a command an order carries. A run is recorded durably before
 * its command starts and again when it ends; a node that holds a run of a task never starts it
 * again. A command whose lease runs out by this node's clock is stopped (the dispatcher renews
 * leases of running tasks; a node cut off from it does not run on unsupervised). At start,
 * a run left `running` by the previous process is recorded aborted: its command died with it.
 */
export class TaskRunner {
  readonly #node: FleetNode;
  readonly #runner: ProcessRunner;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Tasks started by this process: their lease and how to stop them. */
  readonly #active = new Map<string, { leaseId: string; epoch: number; until: number; abort: AbortController; reason?: string; startedAt: number; pid?: number }>();
  /** Tasks whose start could not be recorded (storage failed): never started, answered as such. */
  readonly #failedStarts = new Map<string, string>();
  /** The executions under way, so stopping can wait for their ends to be recorded. */
  readonly #executions = new Set<Promise<void>>();
  #watch: TimerId | undefined;
  #stopped = false;

  constructor(init: { readonly node: FleetNode; readonly runner: ProcessRunner; readonly clock: Clock; readonly log: Logger }) {
    this.#node = init.node;
    this.#runner = init.runner;
    this.#clock = init.clock;
    this.#log = init.log;
  }

  /** Adds the executors to `controlPlane` (before it starts). */
  register(controlPlane: ControlPlane): void {
    controlPlane.registerExecutor('task.run', (body) => this.#run(JSON.parse(body) as { taskId: string; lease: TaskLease }), { singleton: DISPATCHER_SINGLETON });
    controlPlane.registerExecutor('task.abort', (body) => this.#abort((JSON.parse(body) as { taskId: string }).taskId, 'aborted: an operator cancelled it'), { singleton: DISPATCHER_SINGLETON });
  }

  /** Closes runs a previous process left running, then watches leases. */
  async start(): Promise<void> {
    const own = this.#node.tasks.of(this.#node.peer);
    const { tasks } = this.#node.desired.tasks();
    for (const [taskId, run] of own.runs) {
      if (run.state !== 'running') continue;
      // Its command may outlive the process that started it (a kill -9 leaves children behind):
      // found by the variable it was started with (it and what it started, even when the node
      // died before it could record the pid), else by its pid and exact command line.
      const request = tasks.get(taskId);
      const tagged = (await this.#runner.stopByEnv?.(TASK_RUN_ENV, runTag(taskId, run.leaseId))) ?? 0;
      const stopped = tagged > 0 || (run.pid !== undefined && request !== undefined && (await this.#runner.stopOrphan?.(run.pid, [request.command, ...request.args])) === true);
      const what = tagged > 1 ? `its command and ${tagged - 1} process${tagged === 2 ? '' : 'es'} it started were stopped` : `its command${run.pid === undefined ? '' : ` (pid ${run.pid})`} was stopped`;
      const reason = stopped ? `the node restarted while it ran; ${what}` : 'the node restarted while it ran';
      await this.#node.tasks.recordRun(taskId, { ...run, state: 'aborted', endedAt: this.#clock.now(), reason });
    }
    this.#scheduleWatch();
  }

  #scheduleWatch(): void {
    if (this.#stopped) return;
    this.#watch = this.#clock.setTimeout(() => {
      this.#checkLeases();
      this.#scheduleWatch();
    }, WATCH_MS);
  }

  /** Stops every running command and the lease watch; resolves once their ends are recorded (aborted: the node stopped). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#watch !== undefined) this.#clock.clearTimeout(this.#watch);
    for (const taskId of this.#active.keys()) this.#abort(taskId, 'the node stopped');
    await Promise.all(this.#executions);
  }

  /** The tasks this node runs now. */
  running(): string[] {
    return [...this.#active.keys()];
  }

  #run(order: { taskId: string; lease: TaskLease }): TaskOrderAnswer {
    const { taskId, lease } = order;
    const now = this.#clock.now();
    // The lease runs for its length from when this node received it, by this node's clock: the
    // dispatcher's clock is not this one, and an order's `until` is not trusted beyond the cap.
    const length = Math.min(Math.max(0, lease.until - lease.at), MAX_LEASE_MS);
    const active = this.#active.get(taskId);
    if (active !== undefined) {
      active.until = Math.max(active.until, now + length);
      return { state: 'running', leaseId: active.leaseId };
    }
    const failed = this.#failedStarts.get(taskId);
    if (failed !== undefined) return { state: 'refused', reason: failed };
    const held = this.#node.tasks.of(this.#node.peer).runs.get(taskId);
    if (held !== undefined) return { state: held.state, leaseId: held.leaseId };
    if (this.#stopped) return { state: 'refused', reason: 'the node is stopping' };
    const { tasks, cancels } = this.#node.desired.tasks();
    const request = tasks.get(taskId);
    if (request === undefined) return { state: 'refused', reason: `no task ${taskId} signed by an operator here (yet)` };
    if (request.node !== this.#node.peer) return { state: 'refused', reason: `task ${taskId} is for ${request.node}` };
    if (cancels.has(taskId)) return { state: 'refused', reason: `task ${taskId} was cancelled` };
    if (revokedOperatorKeys(this.#node.fleet(), now).includes(request.by)) return { state: 'refused', reason: `task ${taskId} was asked for by an operator key revoked since` };
    if (newestLeases(this.#node.tasks.all().values()).get(taskId)?.closed !== undefined) return { state: 'refused', reason: `task ${taskId} was closed by the dispatcher` };
    if (length <= 0) return { state: 'refused', reason: 'the lease has no time left' };
    const abort = new AbortController();
    this.#active.set(taskId, { leaseId: lease.leaseId, epoch: lease.epoch, until: now + length, abort, startedAt: now });
    const execution = this.#execute(taskId, request, abort.signal).finally(() => this.#executions.delete(execution));
    this.#executions.add(execution);
    return { state: 'starting', leaseId: lease.leaseId };
  }

  async #execute(taskId: string, request: { readonly command: string; readonly args: readonly string[]; readonly timeoutMs: number }, signal: AbortSignal): Promise<void> {
    const active = this.#active.get(taskId)!;
    const started: TaskRun = { leaseId: active.leaseId, epoch: active.epoch, state: 'running', startedAt: active.startedAt };
    try {
      // On record before the command starts: a restart or a second order finds it and never starts it again.
      await this.#node.tasks.recordRun(taskId, started);
    } catch (error) {
      this.#active.delete(taskId);
      // The store may show the run it could not keep: this process answers for it from now on.
      this.#failedStarts.set(taskId, `could not record the start, so it was not started: ${String(error)}`);
      this.#log.warn('could not record a task run; not started', { task: taskId, error: String(error) });
      return;
    }
    let result: ProcessResult | undefined;
    let failure: string | undefined;
    try {
      const onStart = (pid: number): void => {
        active.pid = pid;
        // Durable too: a node that dies now finds the command's pid when it restarts, and stops it.
        void this.#node.tasks.recordRun(taskId, { ...started, pid }).catch((error: unknown) => this.#log.warn('could not record a task\'s pid', { task: taskId, error: String(error) }));
      };
      const env = { [TASK_RUN_ENV]: runTag(taskId, active.leaseId) };
      result = signal.aborted ? undefined : await this.#runner.run({ command: request.command, args: [...request.args], env, timeoutMs: request.timeoutMs, signal, onStart });
    } catch (error) {
      failure = (error as Error).message;
    }
    const reason = active.reason;
    this.#active.delete(taskId);
    const ended = { endedAt: this.#clock.now(), ...(active.pid === undefined ? {} : { pid: active.pid }) };
    const output = result === undefined ? {} : { output: tail(joinOutput(result)) };
    let final: TaskRun;
    if (failure !== undefined) final = { ...started, ...ended, state: 'failed', reason: `could not start: ${failure}` };
    else if (reason !== undefined) final = { ...started, ...ended, ...output, state: 'aborted', reason };
    else if (result === undefined || result.killed) final = { ...started, ...ended, ...output, state: 'failed', reason: `timed out after ${request.timeoutMs} ms` };
    else final = { ...started, ...ended, ...output, state: result.exitCode === 0 ? 'complete' : 'failed', exitCode: result.exitCode };
    try {
      await this.#node.tasks.recordRun(taskId, final);
    } catch (error) {
      this.#log.warn('could not record the end of a task run', { task: taskId, error: String(error) });
    }
  }

  #abort(taskId: string, reason: string): TaskOrderAnswer {
    const active = this.#active.get(taskId);
    if (active === undefined) {
      const held = this.#node.tasks.of(this.#node.peer).runs.get(taskId);
      return held === undefined ? { state: 'refused', reason: `task ${taskId} does not run here` } : { state: held.state, leaseId: held.leaseId };
    }
    active.reason ??= reason;
    active.abort.abort();
    return { state: 'running', leaseId: active.leaseId };
  }

  #checkLeases(): void {
    const now = this.#clock.now();
    for (const [taskId, active] of this.#active) {
      if (active.until <= now && active.reason === undefined) {
        this.#log.warn('stopping a task whose lease ran out: the dispatcher was not heard from', { task: taskId });
        this.#abort(taskId, 'its lease ran out: the dispatcher was not heard from');
      }
    }
  }
}

/** stdout, then stderr on lines of its own. */
function joinOutput(result: ProcessResult): string {
  if (result.stderr === '') return result.stdout;
  return result.stdout === '' || result.stdout.endsWith('\n') ? `${result.stdout}${result.stderr}` : `${result.stdout}\n${result.stderr}`;
}

function tail(text: string): string {
  return text.length <= TASK_OUTPUT_CHARS_MAX ? text : text.slice(-TASK_OUTPUT_CHARS_MAX);
}

/** The tasks as this node sees them: every request with its runs and leases. */
export function taskView(node: FleetNode): ReturnType<typeof taskStatuses> {
  const { tasks, cancels } = node.desired.tasks();
  return taskStatuses(tasks, cancels, node.tasks.all());
}

/**
 * The dispatcher's ports on one node: read the tasks, record leases in this node's task document,
 * send an order through the control plane (`controlPlane()` is read when an order goes out).
 */
export function dispatcherPorts(node: FleetNode, clock: Clock, controlPlane: () => ControlPlane): Record<string, EffectPort> {
  return {
    [DISPATCH_PORTS.view]: async (): Promise<DispatchView> => {
      const now = clock.now();
      return { now, statuses: taskView(node), revokedOperators: revokedOperatorKeys(node.fleet(), now) };
    },
    [DISPATCH_PORTS.lease]: async (request) => node.tasks.recordLeases(request as ReadonlyArray<{ taskId: string; lease: TaskLease }>),
    [DISPATCH_PORTS.order]: async (request) => {
      const order = request as TaskOrder & { epoch: number; owner: string };
      const body = JSON.stringify(order.kind === 'task.run' ? { taskId: order.taskId, lease: order.lease } : { taskId: order.taskId });
      return controlPlane().order(order.node as PeerId, DISPATCHER_SINGLETON, { epoch: order.epoch, owner: order.owner }, order.kind, body);
    },
  };
}
