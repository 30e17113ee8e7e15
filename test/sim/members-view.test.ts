import { describe, expect, it } from 'vitest';
import { SimFleet } from '../../sim/fleet.ts';

/** What the control plane's members were before they were followed incrementally: every member read again. */
function fullRead(node: NonNullable<SimFleet['nodes'][number]['node']>) {
  const states = node.swim.states();
  return node.members().map((m) => {
    const swim = states.get(m.peerId);
    return { peerId: m.peerId, name: m.name, state: m.state, stateSince: swim?.since ?? 0, upSince: swim?.upSince ?? 0, incarnation: swim?.incarnation ?? 0, labels: m.labels };
  });
}

describe('control plane members', () => {
  it('equal a full read of membership, failure detection and labels at every instant, through crashes and restarts', async () => {
    const fleet = await SimFleet.create({ seed: 4, nodes: 6 });
    let checked = 0;
    let shapes = 0;
    const lastShape = new Map<number, number>();
    const check = (): void => {
      for (const sim of fleet.nodes) {
        if (sim.node === undefined || sim.plane === undefined) continue;
        expect(sim.plane.members()).toEqual(fullRead(sim.node));
        const shape = sim.plane.membersShape();
        if (lastShape.get(sim.index) !== shape) shapes++;
        lastShape.set(sim.index, shape);
        checked++;
      }
    };
    await fleet.run(3_000, check);
    await fleet.crash(2);
    await fleet.run(6_000, check);
    await fleet.start(2);
    await fleet.crash(4, { powerLoss: true });
    await fleet.run(8_000, check);
    await fleet.start(4);
    await fleet.run(6_000, check);
    expect(checked).toBeGreaterThan(1_000);
    // States changed (dead, alive again): the shape moved with them.
    expect(shapes).toBeGreaterThan(6);
  }, 120_000);
});
