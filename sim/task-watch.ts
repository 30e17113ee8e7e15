import { taskView } from '../actors/index.ts';
import { DESIRED_TASKS_DOC_ID, type DesiredChange, TASK_DONE_STATES, type TaskStatus } from '../crdt-schema/index.ts';
import { type SeededRandom, signDesiredEntry } from '../mesh/index.ts';
import { SCENARIO_OWNER } from './clock.ts';
import type { SimFleet, SimNode } from './fleet.ts';
import { SIM_TASK_COMMAND, type SimProcessStart } from './processes.ts';
import type { InvariantResult } from './runner.ts';

/** After the faults stop, every task must be final on every live node within this (virtual) time. */
export const TASK_FINAL_BOUND_MS = 20_000;
/** Operator requests come this often (virtual time, uniform between the two). */
const SUBMIT_EVERY_MS = { min: 500, max: 2_500 };
/** At most this many tasks in one request. */
const PER_REQUEST_MAX = 2;
/** Share of tasks that exit non-zero, that outlive their timeout, and of requests that cancel a task asked for earlier. */
const FAIL_SHARE = 0.1;
const TIMEOUT_SHARE = 0.1;
const CANCEL_SHARE = 0.08;
const VIOLATIONS_KEPT = 10;

interface SubmittedTask {
  readonly id: string;
  readonly node: number;
  readonly through: number;
  ackedAtMs?: number;
}

/**
 * The operator's task workload and the task invariants (docs/SIMULATION.md §Tasks and pools).
 * Tasks are asked for as `POST /api/v1/tasks` asks for them: an entry signed with the fleet's
 * operator key, recorded in `desired/tasks` through a random live node; each names a random node
 * and runs `sim-task ID MS EXIT` there. Every command start on every machine is counted per task.
 */
export class TaskWatch {
  readonly #fleet: SimFleet;
  readonly #random: SeededRandom;
  /** Fleet time the run started: times in the trace and details count from it. */
  readonly #startMs: number;
  readonly #line: (text: string) => void;
  readonly #tasks = new Map<string, SubmittedTask>();
  readonly #starts = new Map<string, SimProcessStart[]>();
  readonly #violations: string[] = [];
  #seq = 0;
  #cancels = 0;
  #timer: number | undefined;
  #quietAtMs: number | undefined;
  #finalAfterMs: number | undefined;
  #lastMissing = '';

  constructor(fleet: SimFleet, random: SeededRandom, startMs: number, line: (text: string) => void) {
    this.#fleet = fleet;
    this.#random = random;
    this.#startMs = startMs;
    this.#line = line;
    fleet.processes.onStart((start) => this.#started(start));
  }

  /** Starts asking for tasks, a request every 0.5–2.5 s, until {@link TaskWatch.stop}. */
  start(): void {
    if (this.#timer !== undefined) return;
    const next = (): void => {
      const delay = SUBMIT_EVERY_MS.min + this.#random.int(SUBMIT_EVERY_MS.max - SUBMIT_EVERY_MS.min + 1);
      this.#timer = this.#fleet.clock.schedule(SCENARIO_OWNER, () => {
        this.#request();
        next();
      }, delay);
    };
    next();
  }

  /** No more requests; from now on the tasks asked for must reach a final state. */
  stop(): void {
    if (this.#timer !== undefined) this.#fleet.clock.cancel(this.#timer);
    this.#timer = undefined;
    this.#quietAtMs ??= this.#now();
  }

  #now(): number {
    return this.#fleet.clock.now() - this.#startMs;
  }

  get submitted(): number {
    return this.#tasks.size;
  }

  #request(): void {
    const up = this.#fleet.nodes.filter((n) => n.node?.fleet() !== undefined);
    const operator = this.#fleet.operator;
    if (up.length === 0 || operator === undefined) return;
    const through = up[this.#random.int(up.length)]!;
    const changes: DesiredChange[] = [];
    const fresh: SubmittedTask[] = [];
    const open = [...this.#tasks.values()].filter((t) => t.ackedAtMs !== undefined);
    if (open.length > 0 && this.#random.float() < CANCEL_SHARE) {
      const task = open[this.#random.int(open.length)]!;
      changes.push({ op: 'put', kind: 'task-cancel', value: { id: task.id, reason: 'the simulated operator changed its mind' } });
      this.#cancels++;
    }
    for (let i = 1 + this.#random.int(PER_REQUEST_MAX); i > 0; i--) {
      const id = `t-${this.#seq++}`;
      const node = this.#random.int(this.#fleet.nodes.length);
      const durationMs = 200 + this.#random.int(5_800);
      const exitCode = this.#random.float() < FAIL_SHARE ? 1 + this.#random.int(3) : 0;
      const timeoutMs = this.#random.float() < TIMEOUT_SHARE ? 1_000 + this.#random.int(1_000) : 60_000;
      changes.push({ op: 'put', kind: 'task', value: { id, node: this.#fleet.nodes[node]!.peer, command: SIM_TASK_COMMAND, args: [id, String(durationMs), String(exitCode)], timeoutMs } });
      fresh.push({ id, node, through: through.index });
    }
    for (const task of fresh) this.#tasks.set(task.id, task);
    const entry = signDesiredEntry(operator, this.#fleet.fleetId, DESIRED_TASKS_DOC_ID, changes, through.clock.now());
    const cancelled = changes.length > fresh.length ? ` (cancel ${(changes[0] as { value: { id: string } }).value.id})` : '';
    this.#line(`${this.#now()} tasks asked through ${through.index}: ${fresh.map((t) => `${t.id}@${t.node}`).join(' ')}${cancelled}`);
    // As POST /api/v1/tasks does: the node checks and records the entry durably, then answers.
    through.node!.desired.record([entry], DESIRED_TASKS_DOC_ID).then(
      () => {
        for (const task of fresh) task.ackedAtMs = this.#now();
      },
      (error: unknown) => this.#line(`${this.#now()} tasks refused through ${through.index}: ${String(error)}`),
    );
  }

  /** Every command start, on any machine: a task's command may start once, on its own node. */
  #started(start: SimProcessStart): void {
    if (start.command !== SIM_TASK_COMMAND) return;
    const id = start.args[0] ?? '?';
    this.#line(`${Math.round(start.atMs - this.#startMs)} start ${id} on ${start.node} pid ${start.pid}`);
    const starts = [...(this.#starts.get(id) ?? []), start];
    this.#starts.set(id, starts);
    const task = this.#tasks.get(id);
    const where = (s: SimProcessStart): string => `n${s.node} at ${Math.round(s.atMs - this.#startMs)} ms (pid ${s.pid}, process start ${s.processStart})`;
    if (this.#violations.length >= VIOLATIONS_KEPT) return;
    if (starts.length > 1) this.#violations.push(`task ${id} started ${starts.length} times: ${starts.map(where).join(', ')}`);
    else if (task !== undefined && task.node !== start.node) this.#violations.push(`task ${id} (for n${task.node}) started on ${where(start)}`);
  }

  /** Called every safety check (50 ms): after the faults stop, when every task became final everywhere. */
  check(): void {
    if (this.#quietAtMs === undefined || this.#finalAfterMs !== undefined) return;
    const missing = this.#notFinal();
    if (missing.length === 0) this.#finalAfterMs = this.#now() - this.#quietAtMs;
    else this.#lastMissing = missing.slice(0, 5).join('; ');
  }

  /** Tasks not final on some live node: every task asked for and acknowledged, and any other a node holds. */
  #notFinal(): string[] {
    const up = this.#fleet.nodes.filter((n): n is SimNode & { node: NonNullable<SimNode['node']> } => n.node !== undefined);
    const views = up.map((n) => ({ index: n.index, statuses: new Map(taskView(n.node).map((s) => [s.id, s])) }));
    const ids = new Set([...this.#tasks.values()].filter((t) => t.ackedAtMs !== undefined).map((t) => t.id));
    for (const view of views) for (const id of view.statuses.keys()) ids.add(id);
    const missing: string[] = [];
    for (const id of [...ids].sort()) {
      for (const view of views) {
        const status: TaskStatus | undefined = view.statuses.get(id);
        if (status === undefined || !TASK_DONE_STATES.includes(status.state)) missing.push(`${id} is ${status?.state ?? 'unknown'} on n${view.index}`);
      }
    }
    return missing;
  }

  invariants(): InvariantResult[] {
    const starts = [...this.#starts.values()].reduce((sum, s) => sum + s.length, 0);
    const once: InvariantResult = {
      name: 'task-starts-once',
      ok: this.#violations.length === 0,
      detail: this.#violations.length === 0 ? `${starts} task commands started, each once, on its own node (${this.#tasks.size} tasks asked for, ${this.#cancels} cancellations)` : this.#violations.join('; '),
    };
    const ok = this.#finalAfterMs !== undefined && this.#finalAfterMs <= TASK_FINAL_BOUND_MS;
    const final: InvariantResult = {
      name: 'tasks-reach-final-state',
      ok,
      detail: ok
        ? `every task asked for (${this.#tasks.size}) was final on every live node ${Math.round(this.#finalAfterMs!)} ms after the faults stopped: ${this.#states()}`
        : this.#finalAfterMs !== undefined
          ? `every task was final only ${Math.round(this.#finalAfterMs)} ms after the faults stopped (bound ${TASK_FINAL_BOUND_MS} ms)`
          : `not every task was final at the end: ${this.#lastMissing || this.#notFinal().slice(0, 5).join('; ')}`,
    };
    return [once, final];
  }

  /** How the tasks ended, as the first live node sees them. */
  #states(): string {
    const first = this.#fleet.nodes.find((n) => n.node !== undefined)?.node;
    if (first === undefined) return 'no live node';
    const counts = new Map<string, number>();
    for (const status of taskView(first)) counts.set(status.state, (counts.get(status.state) ?? 0) + 1);
    return [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([state, n]) => `${n} ${state}`).join(', ');
  }
}
