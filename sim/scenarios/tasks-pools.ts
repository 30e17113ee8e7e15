import { DISPATCHER_SINGLETON, POOLS_SINGLETON } from '../../actors/index.ts';
import { LAN, type Scenario, type ScenarioContext, faultWindow, finish } from './common.ts';

/** Loss on every link during a lossy round (half of leader-kill-lossy's: detection still works). */
const ROUND_LOSS = 0.05;
/** Share of kills that are power losses (unsynced writes lost, the machine's commands ended). */
const POWER_LOSS_SHARE = 0.2;

/**
 * Rounds of faults aimed at `singleton`'s owner until the fault window ends; returns the virtual
 * time spent. Each round is one of: the owner killed (a kill -9, now and then a power loss) and
 * restarted 4–7 s later; the owner and, in fleets of five or more, one other node cut off from the
 * rest for 5–9 s; the owner killed while every link loses 5 % of frames.
 */
async function faultTheOwner(context: ScenarioContext, singleton: string): Promise<number> {
  const { fleet } = context;
  const random = fleet.random;
  const window = faultWindow(context);
  const peers = fleet.nodes.map((n) => n.peer);
  let spent = 0;
  while (spent + 12_000 <= window) {
    const lead = 1_000 + random.int(3_000);
    await context.run(lead);
    spent += lead;
    const owner = context.ownerOf(singleton);
    const kind = random.float();
    if (owner === undefined) continue;
    if (kind < 0.35) {
      const cut = [peers[owner]!];
      if (peers.length >= 5) cut.push(peers.filter((p) => p !== peers[owner])[random.int(peers.length - 1)]!);
      fleet.network.partition(cut, peers.filter((p) => !cut.includes(p)));
      const ms = 5_000 + random.int(4_000);
      await context.run(ms);
      fleet.network.healAll();
      spent += ms;
    } else {
      const lossy = kind >= 0.75;
      if (lossy) fleet.network.setDefaults({ ...LAN, loss: ROUND_LOSS });
      await context.crash(owner, { powerLoss: random.float() < POWER_LOSS_SHARE });
      const ms = 4_000 + random.int(3_000);
      await context.run(ms);
      if (lossy) fleet.network.setDefaults(LAN);
      await context.restart(owner);
      spent += ms;
    }
    await context.run(2_000);
    spent += 2_000;
  }
  return spent;
}

/** Heals the network, restarts every node that is down, and runs the quiet tail. */
async function healAndFinish(context: ScenarioContext, spent: number): Promise<void> {
  context.fleet.network.healAll();
  context.fleet.network.setDefaults(LAN);
  for (const node of context.fleet.nodes) if (!context.fleet.isUp(node.index)) await context.restart(node.index);
  await finish(context, spent);
}

export const taskFailover: Scenario = {
  name: 'task-failover',
  description: "the operator asks for tasks through random nodes while the dispatcher's owner is killed, cut off and killed under loss",
  workloads: ['tasks'],
  async play(context) {
    context.tasks!.start();
    const spent = await faultTheOwner(context, DISPATCHER_SINGLETON);
    await healAndFinish(context, spent);
  },
};

export const poolClaims: Scenario = {
  name: 'pool-claims',
  description: "concurrent pool acquires and releases through different nodes while the pools owner is killed, cut off and killed under loss",
  workloads: ['pools'],
  async play(context) {
    const pools = context.pools!;
    // Every node is a member: killing the owner kills a member too.
    await Promise.all([pools.define(context.fleet.nodes.map((n) => n.index)), context.run(1_000)]);
    // Members are ready once up 3 s (and the labels have spread).
    await context.run(4_000);
    pools.start();
    const spent = await faultTheOwner(context, POOLS_SINGLETON);
    await healAndFinish(context, spent + 5_000);
  },
};
