import { describe, expect, it } from 'vitest';
import { nodeDocId } from '../../crdt-schema/index.ts';
import { SimFleet } from '../../sim/fleet.ts';
import { authority } from '../../sim/runner.ts';

describe('the no-change-without-authority invariant', () => {
  it('passes a fleet whose documents carry their writers\' changes only, and names every node holding a version with a change by another', async () => {
    const fleet = await SimFleet.create({ seed: 5, nodes: 6 });
    await fleet.run(5_000);
    expect(authority(fleet)).toMatchObject({ ok: true });
    // Node 0 writes into node 1's document in its own name (replication would refuse to take
    // this in from a peer; the invariant is what would see one that got through).
    const victim = fleet.nodes[1]!.peer;
    await fleet.nodes[0]!.node!.store.change<Record<string, unknown>>(nodeDocId(victim), (draft) => {
      draft['forged'] = true;
    });
    const result = authority(fleet);
    expect(result.ok).toBe(false);
    expect(result.detail).toContain(`0 holds ${nodeDocId(victim)} with 1 changes by another actor`);
    // Only node 0 holds that version: the others' copies of the document are as its writer made them.
    expect(result.detail.split('; ')).toHaveLength(1);
  });
});
