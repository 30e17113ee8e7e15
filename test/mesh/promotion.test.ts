import { describe, expect, it } from 'vitest';
import { DESIRED_CATALOG_DOC_ID, type DesiredChange, type ModuleVersion, moduleVersionOf, versionStatement } from '../../crdt-schema/index.ts';
import { type FleetNode, type SigningOperator, generateKeyPair, SeededRandom, signBytes, signDesiredEntry, toBase64Url } from '../../mesh/index.ts';
import { module } from '../catalog/fixtures.ts';
import { Fleet } from '../helpers/memory-fleet.ts';

const put = (kind: DesiredChange['kind'], value: unknown): DesiredChange => ({ op: 'put', kind, value }) as DesiredChange;
const v1 = `sha256:${'1'.repeat(64)}`;
const v2 = `sha256:${'2'.repeat(64)}`;

/** Three nodes on virtual time, module web with version 1 staged and trusted (3 instances, 60 s). */
async function staged() {
  const fleet = new Fleet();
  for (const index of [0, 1, 2]) fleet.inventory(index).set({ web: v1 });
  const nodes = [await fleet.found(0), await fleet.join(1, 0, 'a'), await fleet.join(2, 0, 'b')];
  await fleet.run(2_000);
  const signer: SigningOperator = { ...fleet.operator, seed: fleet.operatorKeys.seed };
  const publisher = generateKeyPair(new SeededRandom(5));
  const unsigned = moduleVersionOf({ module: 'web', number: 1, artifacts: { amd64: { digest: v1 } } });
  const version: ModuleVersion = { ...unsigned, signature: { publicKey: toBase64Url(publisher.publicKey), signature: toBase64Url(signBytes(publisher.seed, versionStatement(unsigned))) } };
  const record = (node: FleetNode, changes: DesiredChange[]) => fleet.pumpUntil(node.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, changes, fleet.clock.now())]));
  await record(nodes[0]!, [
    put('module', module('web')),
    put('trust', { module: 'web', publishers: [toBase64Url(publisher.publicKey)], promotion: { instances: 3, dwellMs: 60_000 } }),
    put('version', version),
  ]);
  fleet.clock.advance(1);
  await record(nodes[0]!, [put('version', { ...version, state: 'staging' })]);
  await fleet.run(1_000);
  const bless = (via: FleetNode) => {
    fleet.clock.advance(1);
    return record(via, [put('version', { ...version, state: 'blessed' })]);
  };
  /** Records every node's instance as running now, as the instance reconciler would. */
  const running = () =>
    fleet.pumpUntil(nodes[0]!.tasks.recordInstances({ instances: nodes.map((n) => ({ peer: n.peer, record: { state: 'running' as const, since: fleet.clock.now(), epoch: 1, transitions: [] } })), actions: [] }));
  return { fleet, nodes, version, bless, running };
}

describe('promotion evidence', () => {
  it('puts what each node runs into its own document, replicated to the others', async () => {
    const { fleet, nodes } = await staged();
    for (const via of nodes) for (const node of nodes) expect(via.nodeState(node.peer)?.modules['web']?.digest).toBe(v1);
    const since = nodes[1]!.nodeState(nodes[1]!.peer)!.modules['web']!.since;
    // The same digest again keeps its stamp; a new digest is stamped anew.
    await fleet.run(31_000);
    expect(nodes[1]!.nodeState(nodes[1]!.peer)!.modules['web']!.since).toBe(since);
    fleet.inventory(1).set({ web: v2 });
    await fleet.run(31_000);
    expect(nodes[0]!.nodeState(nodes[1]!.peer)!.modules['web']).toEqual({ digest: v2, since: expect.any(Number) });
    expect(nodes[0]!.nodeState(nodes[1]!.peer)!.modules['web']!.since).toBeGreaterThan(since + 30_000);
  });

  it('keeps the last report when the inventory breaks, counting and naming the problem', async () => {
    const { fleet, nodes } = await staged();
    fleet.inventory(2).fail('modules.json is not JSON: Unexpected token');
    await fleet.run(61_000);
    const status = nodes[2]!.status()['modules'] as { inventoryErrors: number; problem: string | null; modules: Record<string, string> };
    expect(status.inventoryErrors).toBe(2);
    expect(status.problem).toMatch(/not JSON/);
    expect(status.modules).toEqual({ web: v1 });
    // Kept, but said to be stale: no evidence until the inventory reads again.
    expect(nodes[0]!.nodeState(nodes[2]!.peer)).toMatchObject({ modules: { web: { digest: v1 } }, modulesProblem: expect.stringMatching(/not JSON/) });
    const version = nodes[0]!.desired.catalog().catalog.versions[0]!;
    const thresholds = { requiredCount: 3, dwellMs: 60_000, heartbeatStaleAfterMs: 180_000 };
    expect(nodes[0]!.promotionEvidence(version, thresholds).observations.map((o) => o.instance)).not.toContain(nodes[2]!.peer);
    fleet.inventory(2).set({});
    await fleet.run(31_000);
    expect(nodes[2]!.status()['modules']).toMatchObject({ problem: null, modules: {} });
    expect(nodes[0]!.nodeState(nodes[2]!.peer)!.modules).toEqual({});
    expect(nodes[0]!.nodeState(nodes[2]!.peer)!.modulesProblem).toBeUndefined();
  });

  it('refuses to bless until enough instances have run the version long enough, then blesses it', async () => {
    const { fleet, nodes, bless, running } = await staged();
    // Reported, but no instance is recorded running yet.
    await expect(bless(nodes[1]!)).rejects.toThrow(/web@1 cannot be blessed yet: 0 instances run this version; 3 are required/);
    await running();
    await fleet.run(1_000);
    await expect(bless(nodes[1]!)).rejects.toThrow(/the newest qualifying instance has run it 1 s; 60 s are required/);
    // One node moves to another digest: two left.
    fleet.inventory(2).set({ web: v2 });
    await fleet.run(61_000);
    await expect(bless(nodes[1]!)).rejects.toThrow(/2 instances run this version; 3 are required/);
    const evidence = nodes[1]!.promotionEvidence(nodes[1]!.desired.catalog().catalog.versions[0]!, { requiredCount: 3, dwellMs: 60_000, heartbeatStaleAfterMs: 180_000 });
    expect(evidence.observations.map((o) => o.instance).sort()).toEqual([nodes[0]!.peer, nodes[1]!.peer].sort());
    fleet.inventory(2).set({ web: v1 });
    await fleet.run(31_000);
    // Node 2's new report of v1 started its dwell again.
    await expect(bless(nodes[1]!)).rejects.toThrow(/has run it \d+ s; 60 s are required/);
    await fleet.run(60_000);
    await bless(nodes[1]!);
    await fleet.run(1_000);
    for (const node of nodes) expect(node.desired.catalog().catalog.versions.map((v) => v.state)).toEqual(['blessed']);
  });

  it('checks a version blessed and made live in one request', async () => {
    const { fleet, nodes, version } = await staged();
    const signer: SigningOperator = { ...fleet.operator, seed: fleet.operatorKeys.seed };
    const at = fleet.clock.now();
    const entries = [
      signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('version', { ...version, state: 'blessed' })], at),
      signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [put('version', { ...version, state: 'live' })], at + 1),
    ];
    await expect(fleet.pumpUntil(nodes[0]!.desired.record(entries))).rejects.toThrow(/web@1 cannot be blessed yet: 0 instances run this version/);
    expect(nodes[0]!.desired.catalog().catalog.versions.map((v) => v.state)).toEqual(['staging']);
  });

  it('takes a member that left, or that no one here heard from, for silent, however its records look', async () => {
    const { fleet, nodes, running } = await staged();
    await running();
    fleet.partition([2], [0, 1, 3]);
    await fleet.run(60_000);
    // A node that joins now never hears from node 2 (its death was gossiped long ago): it holds
    // its report and its running record only.
    const late = await fleet.join(3, 0, 'c');
    await fleet.run(5_000);
    expect(late.nodeState(nodes[2]!.peer)?.modules['web']?.digest).toBe(v1);
    const version = late.desired.catalog().catalog.versions[0]!;
    const evidence = late.promotionEvidence(version, { requiredCount: 3, dwellMs: 0, heartbeatStaleAfterMs: 180_000 });
    expect(evidence.observations.find((o) => o.instance === nodes[2]!.peer)).toMatchObject({ state: 'running', heartbeatAtMs: 0 });
    expect(evidence.verdict).toMatchObject({ eligible: false, reason: expect.stringContaining('1 of 3 qualifying instances are silent') });
    // Stopped cleanly (it says it leaves): silent at once, on a node that held it alive.
    fleet.heal([2], [0, 1, 3]);
    await fleet.run(5_000);
    expect(nodes[0]!.promotionEvidence(version, { requiredCount: 3, dwellMs: 0, heartbeatStaleAfterMs: 180_000 }).verdict.eligible).toBe(true);
    await nodes[2]!.stop();
    await fleet.run(1_000);
    expect(nodes[0]!.promotionEvidence(version, { requiredCount: 3, dwellMs: 0, heartbeatStaleAfterMs: 180_000 }).verdict).toMatchObject({ eligible: false, reason: expect.stringContaining('1 of 3 qualifying instances are silent') });
  });
});
