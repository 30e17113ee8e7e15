import { describe, expect, it } from 'vitest';
import { SimFleet } from '../../sim/fleet.ts';

describe('admission on a fleet that starts formed', () => {
  it('admits every connection both ways with one presentation each way', async () => {
    const fleet = await SimFleet.create({ seed: 3, nodes: 40 });
    await fleet.run(10_000);
    let ends = 0;
    for (const sim of fleet.nodes) {
      for (const peer of fleet.network.lookup(sim.peer)!.connectedPeers()) {
        ends++;
        expect(sim.node!.admission.isAdmitted(peer)).toBe(true);
      }
    }
    expect(ends).toBeGreaterThan(40 * 10);
    // Each end presented its chain to the other once: a request and its answer. (Both ends
    // presented again once they admitted the other, while their first presentations were in flight.)
    expect(fleet.network.messagesByProtocol.get('/powernode/admit/1')).toBe(2 * ends);
  });
});
