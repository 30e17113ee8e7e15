import { type Scenario, type ScenarioContext, LAN, SENSOR, faultWindow, finish } from './common.ts';
import { poolClaims, taskFailover } from './tasks-pools.ts';

export type { Scenario, ScenarioContext } from './common.ts';

const steady: Scenario = {
  name: 'steady',
  description: 'no faults: the fleet runs, nothing flaps, one owner per singleton',
  async play(context) {
    context.quiet();
    await context.run(context.durationMs);
  },
};

const churn: Scenario = {
  name: 'churn',
  description: 'random members crash and restart, a minority at a time',
  async play(context) {
    const { fleet } = context;
    const window = faultWindow(context);
    const down = new Set<number>();
    const maxDown = Math.max(1, Math.floor((fleet.nodes.length - 1) / 2) - 1);
    let spent = 0;
    while (spent < window) {
      const step = 2_000 + fleet.random.int(6_000);
      await context.run(step);
      spent += step;
      const index = fleet.random.int(fleet.nodes.length);
      if (down.has(index)) {
        down.delete(index);
        await context.restart(index);
      } else if (down.size < maxDown) {
        down.add(index);
        await context.crash(index, { powerLoss: fleet.random.float() < 0.3 });
      }
    }
    for (const index of down) await context.restart(index);
    await finish(context, spent);
  },
};

const partitionHeal: Scenario = {
  name: 'partition-heal',
  description: 'random halves are cut apart for 10–20 s, then healed, again and again',
  async play(context) {
    const { fleet } = context;
    const window = faultWindow(context);
    let spent = 0;
    while (spent + 30_000 <= window) {
      const peers = fleet.nodes.map((n) => n.peer);
      const left = peers.filter(() => fleet.random.float() < 0.5);
      const right = peers.filter((p) => !left.includes(p));
      fleet.network.partition(left, right);
      const cut = 10_000 + fleet.random.int(10_000);
      await context.run(cut);
      fleet.network.healAll();
      await context.run(10_000);
      spent += cut + 10_000;
    }
    await finish(context, spent);
  },
};

/** Kills the singleton's owner every 12 s, restarting it 8 s later; with `loss`, every link loses that share of frames meanwhile. */
async function killLeaders(context: ScenarioContext, loss: number): Promise<void> {
  const { fleet } = context;
  const window = faultWindow(context);
  if (loss > 0) fleet.network.setDefaults({ ...LAN, loss });
  let spent = 0;
  while (spent + 12_000 <= window) {
    await context.run(4_000);
    const owner = context.ownerOf(SENSOR);
    if (owner !== undefined) await context.crash(owner);
    await context.run(8_000);
    if (owner !== undefined) await context.restart(owner);
    spent += 12_000;
  }
  if (loss > 0) fleet.network.setDefaults(LAN);
  await finish(context, spent);
}

const leaderKill: Scenario = {
  name: 'leader-kill',
  description: "the singleton's owner is killed, again and again, and restarted after a while",
  play: (context) => killLeaders(context, 0),
};

const leaderKillLossy: Scenario = {
  name: 'leader-kill-lossy',
  description: 'leader-kill while every link loses 10 % of frames (detection and failover under loss)',
  play: (context) => killLeaders(context, 0.1),
};

const lossy: Scenario = {
  name: 'lossy',
  description: 'every link loses 10 % of frames (a lost frame resets its stream) and serves 2 % of requests twice (a retry)',
  async play(context) {
    const { fleet } = context;
    const window = faultWindow(context);
    fleet.network.setDefaults({ minDelayMs: 0.2, meanDelayMs: 1, jitterMs: 1, loss: 0.1, duplicate: 0.02 });
    await context.run(window);
    fleet.network.setDefaults(LAN);
    await finish(context, window);
  },
};

const clockSkew: Scenario = {
  name: 'clock-skew',
  description: 'wall clocks step forward and back by up to 30 s on random members',
  async play(context) {
    const { fleet } = context;
    const window = faultWindow(context);
    let spent = 0;
    while (spent < window) {
      const step = 3_000 + fleet.random.int(5_000);
      await context.run(step);
      spent += step;
      const node = fleet.nodes[fleet.random.int(fleet.nodes.length)]!;
      node.clock.jump(fleet.random.int(60_001) - 30_000);
    }
    await finish(context, spent);
  },
};

/**
 * Stalls the singleton's owner (or, with none, a random member) for 0.5–6 s every 12 s: shorter
 * than its lease, about as long, or long enough for the others to declare it dead and fail over.
 * The owner must not act on a lease or promises that lapsed while it stood still
 * (docs/PLACEMENT.md §Ownership promises, Stalls), and rejoins once it runs again.
 */
const pauses: Scenario = {
  name: 'pause',
  description: "the singleton's owner stalls (its event loop held, as in a long GC pause) for 0.5-6 s, again and again",
  async play(context) {
    const { fleet } = context;
    const window = faultWindow(context);
    let spent = 0;
    while (spent + 12_000 <= window) {
      await context.run(4_000);
      const index = context.ownerOf(SENSOR) ?? fleet.random.int(fleet.nodes.length);
      const stallMs = 500 + fleet.random.int(5_501);
      context.pause(index);
      await context.run(stallMs);
      context.resume(index);
      await context.run(8_000 - stallMs);
      spent += 12_000;
    }
    await finish(context, spent);
  },
};

export const SCENARIOS: readonly Scenario[] = [steady, churn, partitionHeal, leaderKill, leaderKillLossy, lossy, clockSkew, pauses, taskFailover, poolClaims];

export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
