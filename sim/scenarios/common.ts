// What scenarios are made of: the context the runner gives them, and the helpers they share.
import type { SimFleet } from '../fleet.ts';
import type { PoolWatch } from '../pool-watch.ts';
import type { TaskWatch } from '../task-watch.ts';

/** What a scenario drives: the fleet, its own random source, and marks for the invariants. */
export interface ScenarioContext {
  readonly fleet: SimFleet;
  readonly durationMs: number;
  /** Runs virtual time forward (with the invariants checked along the way). */
  run(ms: number): Promise<void>;
  /** Crashes a node (kill -9), noting when for the detection and failover figures. */
  crash(index: number, options?: { readonly powerLoss?: boolean }): Promise<void>;
  restart(index: number): Promise<void>;
  /** Stalls a node's event loop (a long GC pause, SIGSTOP, a VM frozen by its host): its timers and what reaches it wait. */
  pause(index: number): void;
  /** Lets a paused node run again: what fell due meanwhile runs at once, in order. */
  resume(index: number): void;
  /** The node running `singleton` now, if one does. */
  ownerOf(singleton: string): number | undefined;
  /** Faults stop here (and the operator's task and pool workloads): convergence and membership are judged from this point. */
  quiet(): void;
  /** The operator's task workload and its invariants, for scenarios with the `tasks` workload. */
  readonly tasks?: TaskWatch;
  /** The operator's pool workload and its invariants, for scenarios with the `pools` workload. */
  readonly pools?: PoolWatch;
}

/** A scenario as code: faults on virtual time, from the context's random source. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /**
   * What the operator does beyond label writes: `tasks` and `pools` run the dispatcher, task runner
   * and pool actors on every node (sim/fleet.ts `catalogActors`) and add their invariants.
   */
  readonly workloads?: ReadonlyArray<'tasks' | 'pools'>;
  play(context: ScenarioContext): Promise<void>;
}

export const SENSOR = 'sensor.instance-silence';
/** The simulated network's default link (sim/network.ts DEFAULT_LINK). */
export const LAN = { minDelayMs: 0.2, meanDelayMs: 0.5, jitterMs: 0.3, loss: 0 };

/** Leaves a quiet tail of at least 30 s (or a third of the run) for convergence and membership checks. */
export function faultWindow(context: ScenarioContext): number {
  return Math.max(0, context.durationMs - Math.max(30_000, context.durationMs / 3));
}

/** Runs the rest of the duration after `spentMs`, calling `quiet()` first. */
export async function finish(context: ScenarioContext, spentMs: number): Promise<void> {
  context.quiet();
  await context.run(Math.max(0, context.durationMs - spentMs));
}

