import { type ProcessRequest, type ProcessResult, type ProcessRunner, ProcessStartError, type Random } from '../mesh/index.ts';
import type { SimClock } from './clock.ts';

/** What a simulated command does once started: how long it runs and how it ends. */
export interface SimCommandPlan {
  readonly durationMs: number;
  readonly exitCode: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

/**
 * A simulated program: the plan for one request (`random` is the machine's, for seeded
 * durations). Returning undefined means the binary does not exist.
 */
export type SimProgram = (request: ProcessRequest, random: Random) => SimCommandPlan | undefined;

/** One start of a simulated command, as the invariants count them. */
export interface SimProcessStart {
  /** The machine (node index) it ran on. */
  readonly node: number;
  readonly pid: number;
  readonly command: string;
  readonly args: readonly string[];
  /** Fleet (true) time of the start. */
  readonly atMs: number;
  /** Which start of the node's process asked for it (1 for the first). */
  readonly processStart: number;
}

/** The simulated task command: `sim-task ID [MS|-] [EXIT]` (docs/SIMULATION.md §Tasks and pools). */
export const SIM_TASK_COMMAND = 'sim-task';
/** Durations of `sim-task ID -` (seeded): from this… */
const SEEDED_MIN_MS = 200;
/** …to this. */
const SEEDED_MAX_MS = 5_000;
/** As the real runner's default (agent/adapters/execa-process-runner.ts). */
const DEFAULT_TIMEOUT_MS = 60_000;
const FIRST_PID = 1_000;

const textOf = (input: ProcessRequest['input']): string => (input === undefined ? '' : typeof input === 'string' ? input : new TextDecoder().decode(input));

/**
 * The programs every simulated machine has: `sleep SECONDS`, `true`, `false`, `echo ARGS…`, `cat`
 * (stdin to stdout), and `sim-task ID [MS|-] [EXIT]`, which runs MS milliseconds (a seeded 0.2–5 s
 * for `-` or none) and exits EXIT (0 unless given).
 */
export const BUILTIN_PROGRAMS: Readonly<Record<string, SimProgram>> = {
  sleep: (request) => {
    const seconds = Number(request.args[0]);
    return Number.isFinite(seconds) && seconds >= 0 ? { durationMs: seconds * 1_000, exitCode: 0 } : { durationMs: 0, exitCode: 1, stderr: 'sleep: invalid time interval\n' };
  },
  true: () => ({ durationMs: 0, exitCode: 0 }),
  false: () => ({ durationMs: 0, exitCode: 1 }),
  echo: (request) => ({ durationMs: 0, exitCode: 0, stdout: `${request.args.join(' ')}\n` }),
  cat: (request) => ({ durationMs: 0, exitCode: 0, stdout: textOf(request.input) }),
  [SIM_TASK_COMMAND]: (request, random) => {
    const [id = '?', ms, exit] = request.args;
    const given = ms === undefined || ms === '-' ? undefined : Number(ms);
    const durationMs = given !== undefined && Number.isFinite(given) && given >= 0 ? given : SEEDED_MIN_MS + random.int(SEEDED_MAX_MS - SEEDED_MIN_MS + 1);
    const exitCode = exit === undefined ? 0 : Number(exit) | 0;
    return { durationMs, exitCode, stdout: `task ${id} ran ${durationMs} ms\n` };
  },
};

/** A command running on a simulated machine: it outlives the node process that started it. */
interface MachineProcess {
  readonly pid: number;
  readonly argv: readonly string[];
  /** Its environment as given (what it starts would inherit it). */
  readonly env: Readonly<Record<string, string>>;
  readonly timers: number[];
  /** Told the result; undefined once the process that waits for it died (nobody hears the exit). */
  settle: ((result: ProcessResult) => void) | undefined;
}

/** The processes of one simulated machine (a node index), kept across its node's restarts. */
interface Machine {
  nextPid: number;
  readonly running: Map<number, MachineProcess>;
}

/**
 * The process table of every simulated machine, on virtual time (the `ProcessRunner` port as the
 * simulator gives it). A command runs for its program's duration on the fleet clock, honours its
 * timeout and abort signal, calls `onStart` with a fake pid, and every start is logged in
 * {@link SimProcesses.starts} so invariants can count them. As on a real machine, a kill -9 of
 * the node process leaves its commands running (no one hears how they end; the next process may
 * stop them with `stopByEnv` or `stopOrphan`), and a power loss ends them all. (A simulated command
 * starts nothing else, so stopping it stops everything it started.)
 */
export class SimProcesses {
  readonly starts: SimProcessStart[] = [];
  readonly #clock: SimClock;
  readonly #random: Random;
  readonly #programs: Readonly<Record<string, SimProgram>>;
  readonly #machines = new Map<number, Machine>();
  readonly #listeners: Array<(start: SimProcessStart) => void> = [];

  constructor(clock: SimClock, random: Random, options: { readonly programs?: Readonly<Record<string, SimProgram>> } = {}) {
    this.#clock = clock;
    this.#random = random;
    this.#programs = { ...BUILTIN_PROGRAMS, ...options.programs };
  }

  /** Calls `listener` with every start as it happens (continuous invariants). */
  onStart(listener: (start: SimProcessStart) => void): void {
    this.#listeners.push(listener);
  }

  /** The runner one process of machine `node` uses (its `processStart`-th start); dead once {@link SimProcessRunner.kill}ed. */
  runnerFor(node: number, processStart = 1): SimProcessRunner {
    return new SimProcessRunner(this, node, processStart);
  }

  /** Pids of the commands running on machine `node` now. */
  running(node: number): number[] {
    return [...(this.#machines.get(node)?.running.keys() ?? [])];
  }

  /** Machine `node` lost power: every command on it ends at once, unheard. */
  powerOff(node: number): void {
    const machine = this.#machines.get(node);
    if (machine === undefined) return;
    for (const child of [...machine.running.values()]) this.#end(machine, child, undefined);
  }

  /** @internal Starts a command for `runner` (see {@link SimProcessRunner.run}). */
  spawn(runner: SimProcessRunner, request: ProcessRequest): Promise<ProcessResult> {
    const program = this.#programs[request.command];
    const plan = program?.(request, this.#random);
    if (plan === undefined) return Promise.reject(new ProcessStartError(`command not found: ${request.command}`));
    if (request.signal?.aborted === true) return Promise.resolve({ exitCode: -1, stdout: '', stderr: '', killed: true });
    const machine = this.#machine(runner.node);
    const pid = machine.nextPid++;
    const child: MachineProcess = { pid, argv: [request.command, ...request.args], env: { ...request.env }, timers: [], settle: undefined };
    const result = new Promise<ProcessResult>((resolve) => {
      child.settle = (value) => {
        if (runner.alive) resolve(value);
      };
    });
    machine.running.set(pid, child);
    const start: SimProcessStart = { node: runner.node, pid, command: request.command, args: [...request.args], atMs: this.#clock.now(), processStart: runner.processStart };
    this.starts.push(start);
    for (const listener of this.#listeners) listener(start);
    const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const killed: ProcessResult = { exitCode: -1, stdout: '', stderr: '', killed: true };
    // Machine timers (not the node's): a crash of the node process does not stop its children.
    const owner = machineTimerOwner(runner.node);
    if (plan.durationMs <= timeoutMs) {
      child.timers.push(this.#clock.schedule(owner, () => this.#end(machine, child, { exitCode: plan.exitCode, stdout: plan.stdout ?? '', stderr: plan.stderr ?? '', killed: false }), plan.durationMs));
    } else {
      child.timers.push(this.#clock.schedule(owner, () => this.#end(machine, child, killed), timeoutMs));
    }
    request.signal?.addEventListener('abort', () => this.#end(machine, child, killed), { once: true });
    request.onStart?.(pid);
    return result;
  }

  /** @internal Stops `pid` on machine `node` if it runs exactly `argv`. */
  stop(node: number, pid: number, argv: readonly string[]): boolean {
    const machine = this.#machines.get(node);
    const child = machine?.running.get(pid);
    if (machine === undefined || child === undefined || child.argv.length !== argv.length || child.argv.some((part, i) => part !== argv[i])) return false;
    this.#end(machine, child, { exitCode: -1, stdout: '', stderr: '', killed: true });
    return true;
  }

  /** @internal Stops every command on machine `node` whose environment holds `name=value`; how many. */
  stopByEnv(node: number, name: string, value: string): number {
    const machine = this.#machines.get(node);
    if (machine === undefined) return 0;
    const found = [...machine.running.values()].filter((child) => child.env[name] === value);
    for (const child of found) this.#end(machine, child, { exitCode: -1, stdout: '', stderr: '', killed: true });
    return found.length;
  }

  #end(machine: Machine, child: MachineProcess, result: ProcessResult | undefined): void {
    if (!machine.running.delete(child.pid)) return;
    for (const timer of child.timers) this.#clock.cancel(timer);
    if (result !== undefined) child.settle?.(result);
    child.settle = undefined;
  }

  #machine(node: number): Machine {
    let machine = this.#machines.get(node);
    if (machine === undefined) {
      machine = { nextPid: FIRST_PID, running: new Map() };
      this.#machines.set(node, machine);
    }
    return machine;
  }
}

/** Timers of machine `node`'s commands: apart from the node's own (owner `node`), which a crash drops. */
export function machineTimerOwner(node: number): number {
  return -2 - node;
}

/**
 * The `ProcessRunner` one node process is given: its commands run on its machine in
 * {@link SimProcesses}. Once the process is killed its pending results never arrive, as a dead
 * process hears nothing.
 */
export class SimProcessRunner implements ProcessRunner {
  readonly node: number;
  readonly processStart: number;
  #alive = true;
  readonly #processes: SimProcesses;

  constructor(processes: SimProcesses, node: number, processStart: number) {
    this.#processes = processes;
    this.node = node;
    this.processStart = processStart;
  }

  get alive(): boolean {
    return this.#alive;
  }

  run(request: ProcessRequest): Promise<ProcessResult> {
    // A dead process starts nothing (code of it still on the promise queue cannot act).
    if (!this.#alive) return new Promise(() => {});
    return this.#processes.spawn(this, request);
  }

  async stopOrphan(pid: number, argv: readonly string[]): Promise<boolean> {
    return this.#alive && this.#processes.stop(this.node, pid, argv);
  }

  async stopByEnv(name: string, value: string): Promise<number> {
    return this.#alive ? this.#processes.stopByEnv(this.node, name, value) : 0;
  }

  /** The node process died: nothing it waits for will be answered. */
  kill(): void {
    this.#alive = false;
  }
}
