import type { FleetNode } from '../mesh/index.ts';

type TasksView = ReturnType<FleetNode['tasks']['of']>;
type PoolsView = ReturnType<FleetNode['pools']['of']>;

/**
 * Test-only faults in the task and pool actors, so the tasks and pools invariants can be shown to
 * catch what they guard against (docs/SIMULATION.md §Tasks and pools):
 * - `forget-task-runs`: the task runner does not see the runs its node recorded, so it neither
 *   closes a run its previous process left running nor refuses an order for a task it ran;
 * - `forget-pool-claims`: the pools owner and the members do not see any claim records, so a
 *   claimed member looks ready and takes any claim.
 */
export const ACTOR_FAULTS = ['forget-task-runs', 'forget-pool-claims'] as const;
export type ActorFault = (typeof ACTOR_FAULTS)[number];

/**
 * `node` as the faulty actor sees it: the same node, with the records `fault` hides left out of
 * what `tasks` or `pools` read. Everything else (writes included) goes to the node itself.
 */
export function withActorFault(node: FleetNode, fault: ActorFault): FleetNode {
  const hidden = fault === 'forget-task-runs' ? { tasks: forgetRuns(node) } : { pools: forgetClaims(node) };
  return new Proxy(node, {
    get(target, property) {
      if (Object.hasOwn(hidden, property)) return hidden[property as keyof typeof hidden];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function forgetRuns(node: FleetNode): FleetNode['tasks'] {
  const tasks = node.tasks;
  const blind = (view: TasksView): TasksView => ({ ...view, runs: new Map() });
  return new Proxy(tasks, {
    get(target, property) {
      if (property === 'of') return (peer: string, ...rest: unknown[]) => (peer === node.peer ? blind(target.of(peer, ...(rest as []))) : target.of(peer, ...(rest as [])));
      if (property === 'all') return () => new Map([...target.all()].map(([peer, view]) => [peer, peer === node.peer ? blind(view) : view]));
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function forgetClaims(node: FleetNode): FleetNode['pools'] {
  const pools = node.pools;
  const blind = (): PoolsView => ({ claims: new Map() });
  return new Proxy(pools, {
    get(target, property) {
      if (property === 'of') return () => blind();
      if (property === 'all') return () => new Map([...target.all().keys()].map((peer) => [peer, blind()]));
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
