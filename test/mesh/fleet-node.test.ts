import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import { DESIRED_CATALOG_DOC_ID, type DesiredDocument, FLEET_DOC_ID, type FleetDocument, type NodeStateDocument, admissionRank, nodeDocId, recordAdmission, recordDecision, recordDesiredEntry } from '../../crdt-schema/index.ts';
import { FleetNode, type PeerId, certifyOperator, generateKeyPair, sha256Hex, signDecision, signDesiredEntry, signGrant, signOperatorRevocation, toBase64Url } from '../../mesh/index.ts';
import { module } from '../catalog/fixtures.ts';
import { testIdentity } from '../helpers/mini-fleet.ts';
import { Fleet } from '../helpers/memory-fleet.ts';
import { REVOCATION_CUT_PENDING_MS } from '../../mesh/catalog/revocation-watch.ts';

const memberIds = (node: FleetNode): string[] => node.members().map((m) => m.peerId).sort();

describe('joining through admission records', () => {
  it('admits nodes through members with operator grants, and refuses a token used twice on one side', async () => {
    const fleet = new Fleet();
    const founder = await fleet.found(0);
    await fleet.join(1, 0, 'token-a');
    await fleet.join(2, 1, 'token-b'); // admitted by a non-founder member
    await fleet.run(3_000);
    const expected = [0, 1, 2].map((i) => testIdentity(i).peerId).sort();
    for (const node of fleet.nodes.values()) expect(memberIds(node)).toEqual(expected);
    await expect(fleet.join(3, 0, 'token-a')).rejects.toThrow(/already used by/);
    expect(memberIds(founder)).toEqual(expected);
  });

  it("dials each member at the addresses its document gives now, and keeps the same map while they stay", async () => {
    const fleet = new Fleet();
    const founder = await fleet.found(0);
    await fleet.join(1, 0, 'token-a');
    await fleet.run(3_000);
    const peer = testIdentity(1).peerId;
    const first = founder.dialCandidates();
    expect(first.get(peer)).toEqual(fleet.network.lookup(peer)!.listenAddresses());
    // A change of the member's document that leaves its addresses: the same map.
    const member = fleet.nodes.get(1)!;
    const digest = founder.store.digest(nodeDocId(peer));
    await member.recordActivation('a-singleton', { epoch: 1, since: 0, active: false });
    await fleet.run(2_000);
    expect(founder.store.digest(nodeDocId(peer))).not.toBe(digest);
    expect(founder.dialCandidates()).toBe(first);
    // It listens elsewhere now: the founder dials it there.
    const transport = fleet.network.lookup(peer)!;
    transport.listenAddresses = () => ['/memory/elsewhere'];
    await member.publishObservation();
    await fleet.run(2_000);
    expect(founder.dialCandidates().get(peer)).toEqual(['/memory/elsewhere']);
    // A member that joins is a candidate too.
    await fleet.join(2, 1, 'token-b');
    await fleet.run(3_000);
    expect([...founder.dialCandidates().keys()].sort()).toEqual([peer, testIdentity(2).peerId].sort());
  });

  it('lets exactly one of two nodes that redeemed one token on opposite sides of a partition stay a member, and tells the other why', async () => {
    const fleet = new Fleet();
    await fleet.found(0);
    await fleet.join(1, 0, 'token-m');
    await fleet.run(3_000);
    // Two sides, {0, 2} and {1, 3}, cut before the joiners exist.
    fleet.partition([0, 2], [1, 3]);
    await fleet.run(1_000);
    // Node 2 redeems the token with the founder, node 3 the same token with member 1.
    await fleet.join(2, 0, 'shared');
    await fleet.join(3, 1, 'shared');
    await fleet.run(2_000);
    expect(memberIds(fleet.nodes.get(1)!)).toContain(testIdentity(3).peerId);
    expect(memberIds(fleet.nodes.get(0)!)).toContain(testIdentity(2).peerId);
    fleet.heal([0, 2], [1, 3]);
    await fleet.run(40_000);

    const tokenHash = sha256Hex(fleet.token('shared').token);
    const [p2, p3] = [testIdentity(2).peerId, testIdentity(3).peerId];
    const winner = admissionRank(tokenHash, p2) < admissionRank(tokenHash, p3) ? p2 : p3;
    const loser = winner === p2 ? p3 : p2;
    const expected = [testIdentity(0).peerId, testIdentity(1).peerId, winner].sort();
    for (const [index, node] of fleet.nodes) {
      if (node.peer === loser) continue;
      expect(memberIds(node), `members on node ${index}`).toEqual(expected);
    }
    const loserNode = [...fleet.nodes.values()].find((n) => n.peer === loser)!;
    const self = loserNode.status()['self'] as { lostAdmission?: { reason: string; winner: string } };
    expect(self.lostAdmission?.winner).toBe(winner);
    expect(self.lostAdmission?.reason).toMatch(/used by .* on the other side of a partition: ask an operator for a new token/);
    // Members do not replicate with the loser.
    expect(fleet.nodes.get(0)!.isPeerAllowed(loser as never)).toBe(false);
  });

  it('counts no admission whose grant is forged, tampered with or from a key that is not an operator', async () => {
    const fleet = new Fleet();
    await fleet.found(0);
    const member = await fleet.join(1, 0, 'token-a');
    await fleet.run(2_000);
    // A compromised member writes admissions into its own (validly sealed) document.
    const rogue = generateKeyPair(fleet.random);
    const valid = fleet.token('token-valid').grant;
    const tampered = { ...fleet.token('token-tampered').grant, expiresAt: fleet.clock.now() + 99 * 3_600_000 };
    const unsigned = signGrant(rogue.seed, { ...fleet.token('token-rogue').grant, operator: toBase64Url(rogue.publicKey) });
    const claimed = [
      [5, valid],
      [6, tampered],
      [7, unsigned],
    ] as const;
    await member.store.change<NodeStateDocument>(
      nodeDocId(member.peer),
      (draft) => {
        for (const [index, grant] of claimed) recordAdmission(draft, { tokenHash: grant.tokenHash, peerId: testIdentity(index).peerId, name: `n${index}`, admittedAt: fleet.clock.now(), grant });
      },
      { signer: testIdentity(1) },
    );
    await fleet.run(2_000);
    const expected = [0, 1, 5].map((i) => testIdentity(i).peerId).sort();
    for (const node of fleet.nodes.values()) expect(memberIds(node)).toEqual(expected);
  });
});

describe('operator decisions and revocation', () => {
  const decide = (fleet: Fleet, kind: 'labels' | 'revoke-node' | 'operator-add' | 'operator-revoke', content: never, at?: number) =>
    signDecision({ seed: fleet.operatorKeys.seed, publicKey: toBase64Url(fleet.operatorKeys.publicKey) }, fleet.fleetId, kind, content, at ?? fleet.clock.now());

  /** A fleet founded by node 0 with nodes 1…`members` joined through it, settled for `settleMs`. */
  async function foundedFleet<N extends 1 | 2>(members: N, settleMs = 2_000): Promise<{ fleet: Fleet; founder: FleetNode; joined: N extends 1 ? [FleetNode] : [FleetNode, FleetNode] }> {
    const fleet = new Fleet();
    const founder = await fleet.found(0);
    const joined: FleetNode[] = [];
    for (let i = 1; i <= members; i++) joined.push(await fleet.join(i, 0, `token-${String.fromCharCode(96 + i)}`));
    await fleet.run(settleMs);
    return { fleet, founder, joined: joined as N extends 1 ? [FleetNode] : [FleetNode, FleetNode] };
  }

  /** Adds operator `name` through `founder` (certified by the root key): its certificate and key. */
  async function addOperator(fleet: Fleet, founder: FleetNode, name: string) {
    const keys = generateKeyPair(fleet.random);
    const certified = certifyOperator(fleet.root.seed, fleet.fleetId, { publicKey: toBase64Url(keys.publicKey), name, addedAt: fleet.clock.now() });
    await founder.decide(decide(fleet, 'operator-add', { publicKey: certified.publicKey, name, addedAt: certified.addedAt, certificate: certified.certificate } as never));
    return { certified, seed: keys.seed, key: { seed: keys.seed, publicKey: certified.publicKey } };
  }

  it('refuses on every other node a member\'s direct edit of the fleet document and a forged or tampered decision', async () => {
    const { fleet, founder, joined: [rogue, honest] } = await foundedFleet(2);
    const target = testIdentity(2).peerId;
    await founder.decide(decide(fleet, 'labels', { node: target, set: { role: 'db' }, remove: [] } as never));
    await fleet.run(1_000);
    const before = honest.store.digest(FLEET_DOC_ID);
    expect(honest.fleet()?.labels[target]).toEqual({ role: 'db' });

    const stranger = generateKeyPair(fleet.random);
    const forged = signDecision({ seed: stranger.seed, publicKey: toBase64Url(stranger.publicKey) }, fleet.fleetId, 'labels', { node: target, set: { role: 'owned' }, remove: [] }, fleet.clock.now());
    const genuine = decide(fleet, 'labels', { node: target, set: { role: 'web' }, remove: [] } as never);
    const tampered = { ...genuine, body: genuine.body.replace('web', 'pwn') };
    for (const edit of [
      (d: FleetDocument) => recordDecision(d, forged),
      (d: FleetDocument) => recordDecision(d, tampered),
      (d: FleetDocument) => void ((d as unknown as Record<string, unknown>)['rootKey'] = 'attacker'),
    ]) {
      // The rogue member writes into its own copy, as a compromised node would, and it syncs out.
      await rogue.store.change<FleetDocument>(FLEET_DOC_ID, edit);
      await fleet.run(1_000);
    }
    // And a change to another node's document, made under no seal of that node.
    const honestDoc = nodeDocId(honest.peer);
    await rogue.store.change<NodeStateDocument>(honestDoc, (d) => void (d.hostname = 'owned' as never));
    await fleet.run(2_000);
    expect(founder.nodeState(honest.peer)?.hostname).toBe('host-2');
    for (const node of [founder, honest]) {
      expect(node.store.digest(FLEET_DOC_ID)).toBe(before);
      expect(node.fleet()?.labels[target]).toEqual({ role: 'db' });
      expect(node.penalties.snapshot().byPeer[rogue.peer]?.['refused:not-authorized']).toBeGreaterThanOrEqual(1);
    }
    // Each refusal is recorded as a security event naming the sender, and every node sees it.
    for (const node of [founder, honest, rogue]) {
      const events = node.securityEvents().filter((e) => e.peer === rogue.peer && e.kind === 'security.change_refused');
      expect(events.map((e) => e.docId)).toEqual(expect.arrayContaining([FLEET_DOC_ID]));
      expect(new Set(events.map((e) => e.observedBy))).toEqual(new Set([founder.peer, honest.peer]));
    }
    expect(founder.securityEvents().some((e) => e.docId === honestDoc && e.peer === rogue.peer)).toBe(true);
  });

  it("refuses a member's removal of a decision from the fleet document, though every decision left is valid", async () => {
    const { fleet, founder, joined: [rogue, honest] } = await foundedFleet(2);
    const target = testIdentity(2).peerId;
    const labelled = decide(fleet, 'labels', { node: target, set: { role: 'db' }, remove: [] } as never);
    await founder.decide(labelled);
    await fleet.run(1_000);
    const before = honest.store.digest(FLEET_DOC_ID);
    expect(honest.fleet()?.labels[target]).toEqual({ role: 'db' });
    await rogue.store.change<FleetDocument>(FLEET_DOC_ID, (d) => void delete (d as unknown as { decisions: Record<string, unknown> }).decisions[labelled.signature]);
    await fleet.run(2_000);
    expect(rogue.fleet()?.labels[target]).toBeUndefined();
    for (const node of [founder, honest]) {
      expect(node.store.digest(FLEET_DOC_ID)).toBe(before);
      expect(node.fleet()?.labels[target]).toEqual({ role: 'db' });
    }
    expect(founder.penalties.snapshot().byPeer[rogue.peer]?.['refused:not-authorized']).toBeGreaterThanOrEqual(1);
  });

  it('revokes a node: every member drops it within seconds, refuses its connections, documents and a new join', async () => {
    const fleet = new Fleet();
    const founder = await fleet.found(0);
    await fleet.join(1, 0, 'token-a');
    const victim = await fleet.join(2, 1, 'token-b');
    await fleet.join(3, 1, 'token-c');
    await fleet.run(3_000);
    const revoked = testIdentity(2).peerId as PeerId;
    for (const node of fleet.nodes.values()) if (node !== victim) expect(fleet.network.lookup(node.peer)!.connectedPeers()).toContain(revoked);

    await founder.decide(decide(fleet, 'revoke-node', { node: revoked, reason: 'stolen laptop' } as never));
    const started = fleet.clock.now();
    await fleet.run(5_000);
    for (const [index, node] of fleet.nodes) {
      if (node === victim) continue;
      expect(fleet.network.lookup(node.peer)!.connectedPeers(), `connections of node ${index}`).not.toContain(revoked);
      expect(node.isPeerAllowed(revoked)).toBe(false);
      expect(memberIds(node)).not.toContain(revoked);
    }
    expect(fleet.clock.now() - started).toBeLessThanOrEqual(5_000);
    // It cannot connect again, and what it writes is not taken in.
    await expect(fleet.network.lookup(revoked)!.dial(founder.peer, [])).rejects.toThrow(/refused/);
    const digest = founder.store.digest(nodeDocId(revoked));
    await victim.publishObservation();
    await fleet.run(2_000);
    expect(founder.store.digest(nodeDocId(revoked))).toBe(digest);
    // A new token does not bring the same peer back (its connections are refused before the join is heard).
    await victim.stop();
    await fleet.network.lookup(revoked)!.stop();
    const ports = fleet.ports(2);
    const token = fleet.token('token-again');
    const bootstrap = testIdentity(0).peerId;
    await expect(fleet.pumpUntil(FleetNode.join(ports, { fleetId: fleet.fleetId, addrs: [`/memory/${bootstrap}/p2p/${bootstrap}`], ...token }, 'n2'))).rejects.toThrow(/refused/);
  });

  it('cuts a revoked operator\'s catalog entries and decisions at the heads its revocation names: a leaked key cannot back-date one in later', async () => {
    const { fleet, founder, joined: [other, third] } = await foundedFleet(2);
    const mallory = await addOperator(fleet, founder, 'mallory');
    await fleet.run(1_000);
    const signer = { ...mallory.certified, seed: mallory.seed };
    const moduleEntry = (name: string, at: number) => signDesiredEntry(signer, fleet.fleetId, DESIRED_CATALOG_DOC_ID, [{ op: 'put', kind: 'module', value: module(name) }], at);
    const before = fleet.clock.now() - 60_000;
    await fleet.pumpUntil(other.desired.record([moduleEntry('made-before', before)]));
    const target = testIdentity(2).peerId;
    const malloryKey = { seed: mallory.seed, publicKey: signer.publicKey };
    await founder.decide(signDecision(malloryKey, fleet.fleetId, 'labels', { node: target, set: { by: 'mallory-before' }, remove: [] }, fleet.clock.now()));
    await fleet.run(1_000);
    // Concurrent operator writes leave honest concurrent heads; the node the revocation goes
    // through joins them into one (an empty change every replica takes).
    await Promise.all([
      founder.decide(decide(fleet, 'labels', { node: testIdentity(1).peerId, set: { zone: 'a' }, remove: [] } as never)),
      third.decide(decide(fleet, 'labels', { node: testIdentity(0).peerId, set: { zone: 'b' }, remove: [] } as never)),
    ]);
    await fleet.run(1_000);
    expect(founder.store.heads(FLEET_DOC_ID)).toHaveLength(2);
    const effectiveAt = fleet.clock.now() + 1;
    const catalogHeads = [...(await fleet.pumpUntil(founder.store.joinHeads(DESIRED_CATALOG_DOC_ID)))!].sort();
    const fleetHeads = [...(await fleet.pumpUntil(founder.store.joinHeads(FLEET_DOC_ID)))!].sort();
    expect(fleetHeads).toHaveLength(1);
    await fleet.run(1_000);
    expect(third.store.heads(FLEET_DOC_ID)).toEqual(fleetHeads);
    await founder.decide(decide(fleet, 'operator-revoke', signOperatorRevocation(fleet.root.seed, fleet.fleetId, { publicKey: signer.publicKey, effectiveAt, reason: 'leaked', catalogHeads, fleetHeads }) as never));
    await fleet.run(1_000);
    // With the leaked key, an entry dated before the revocation, slipped in by a compromised
    // member (the document takes it: a certified operator signed it), counts nowhere.
    const backDated = moduleEntry('back-dated', before + 1);
    await other.store.change<DesiredDocument>(DESIRED_CATALOG_DOC_ID, (d) => recordDesiredEntry(d, backDated));
    const backDatedDecision = signDecision(malloryKey, fleet.fleetId, 'labels', { node: target, set: { by: 'mallory-back-dated' }, remove: [] }, effectiveAt - 10);
    await other.store.change<FleetDocument>(FLEET_DOC_ID, (d) => recordDecision(d, backDatedDecision));
    await fleet.run(2_000);
    for (const node of [founder, other, third]) {
      expect(node.store.digest(DESIRED_CATALOG_DOC_ID)).toBe(other.store.digest(DESIRED_CATALOG_DOC_ID));
      expect(node.store.digest(FLEET_DOC_ID)).toBe(other.store.digest(FLEET_DOC_ID));
      expect(node.desired.catalog().catalog.modules.map((m) => m.name)).toEqual(['made-before']);
      expect(node.fleet()?.labels[target]).toEqual({ by: 'mallory-before' });
      expect(node.status()['revocations']).toEqual([{ operator: signer.publicKey, name: 'mallory', revokedAt: effectiveAt, catalog: 'cut' }]);
    }
    // A compromised member merges empty changes of 40 actors into its fleet document: more heads
    // than a revocation may name, if others took them. None does (a change that changes nothing
    // may only join heads).
    const fleetHeld = third.store.get(FLEET_DOC_ID)!;
    let inflated = A.clone(fleetHeld);
    for (let i = 0; i < 40; i++) inflated = A.merge(inflated, A.emptyChange(A.clone(fleetHeld, { actor: (i + 1).toString(16).padStart(32, 'a') })));
    await third.store.adopt(FLEET_DOC_ID, inflated, third.peer);
    await fleet.run(1_000);
    expect(third.store.heads(FLEET_DOC_ID).length).toBe(40);
    expect(founder.store.heads(FLEET_DOC_ID)).toHaveLength(1);
    expect(other.store.heads(FLEET_DOC_ID)).toHaveLength(1);
  });

  it('takes the same decision recorded on two nodes at once (a retried request), and every later one', async () => {
    const { fleet, founder, joined: [a, b] } = await foundedFleet(2, 3_000);
    const target = testIdentity(2).peerId;
    const labelled = decide(fleet, 'labels', { node: target, set: { role: 'db' }, remove: [] } as never);
    fleet.partition([0, 1], [2]);
    await Promise.all([a.decide(labelled), b.decide(labelled)]);
    await fleet.run(1_000);
    fleet.heal([0, 1], [2]);
    await fleet.run(5_000);
    // Automerge holds the two copies as a conflict under one key: the same decision, taken.
    for (const node of [founder, a, b]) {
      expect(node.store.digest(FLEET_DOC_ID)).toBe(founder.store.digest(FLEET_DOC_ID));
      expect(node.fleet()?.labels[target]).toEqual({ role: 'db' });
      expect(node.penalties.snapshot().byPeer[a.peer]?.['refused:not-authorized']).toBeUndefined();
      expect(node.penalties.snapshot().byPeer[b.peer]?.['refused:not-authorized']).toBeUndefined();
    }
    await founder.decide(decide(fleet, 'labels', { node: testIdentity(1).peerId, set: { role: 'web' }, remove: [] } as never));
    await fleet.run(2_000);
    for (const node of [founder, a, b]) expect(node.fleet()?.labels[testIdentity(1).peerId]).toEqual({ role: 'web' });
  });

  it('records on each node a revocation whose catalog cut stays pending there for 10 minutes', async () => {
    const { fleet, founder, joined: [other] } = await foundedFleet(1);
    const { certified } = await addOperator(fleet, founder, 'mallory');
    await fleet.run(1_000);
    // Heads of desired/catalog no node holds (the node it went through lost them, say).
    const catalogHeads = ['ab'.repeat(32)];
    const fleetHeads = [...(await fleet.pumpUntil(founder.store.joinHeads(FLEET_DOC_ID)))!].sort();
    await founder.decide(decide(fleet, 'operator-revoke', signOperatorRevocation(fleet.root.seed, fleet.fleetId, { publicKey: certified.publicKey, effectiveAt: fleet.clock.now(), reason: 'leaked', catalogHeads, fleetHeads }) as never));
    await fleet.run(1_000);
    const pendingEvents = (node: FleetNode) => node.events.list({ kind: 'security.revocation_cut_pending' });
    for (const node of [founder, other]) expect(node.status()['revocations']).toEqual([expect.objectContaining({ name: 'mallory', catalog: 'pending' })]);
    // Seen pending at the first check; not reported before it has been so for 10 minutes.
    fleet.clock.jumpTo(fleet.clock.now() + 60_000);
    await fleet.run(200);
    fleet.clock.jumpTo(fleet.clock.now() + REVOCATION_CUT_PENDING_MS - 120_000);
    await fleet.run(200);
    for (const node of [founder, other]) expect(pendingEvents(node)).toEqual([]);
    fleet.clock.jumpTo(fleet.clock.now() + 120_000);
    await fleet.run(1_000);
    for (const node of [founder, other]) {
      // Each node reports its own, once; and sees the other's.
      expect(pendingEvents(node).map((e) => [e.source.peer, e.subject, e.severity]).sort()).toEqual(
        [[founder.peer, certified.publicKey, 'high'], [other.peer, certified.publicKey, 'high']].sort(),
      );
    }
    fleet.clock.jumpTo(fleet.clock.now() + 60_000);
    await fleet.run(1_000);
    expect(pendingEvents(founder)).toHaveLength(2);
  });

  it('takes an operator revocation only with the root key, and from then on applies none of that operator\'s decisions', async () => {
    const { fleet, founder, joined: [other] } = await foundedFleet(1);
    const target = testIdentity(1).peerId;
    const { key: malloryKey, seed: mallorySeed, certified } = await addOperator(fleet, founder, 'mallory');
    await founder.decide(signDecision(malloryKey, fleet.fleetId, 'labels', { node: target, set: { by: 'mallory-before' }, remove: [] }, fleet.clock.now()));
    await fleet.run(1_000);
    expect(other.fleet()?.labels[target]).toEqual({ by: 'mallory-before' });

    // Mallory (an operator, without the root key) cannot revoke the fleet's first operator.
    const fake = signOperatorRevocation(mallorySeed, fleet.fleetId, { publicKey: toBase64Url(fleet.operatorKeys.publicKey), effectiveAt: fleet.clock.now(), reason: '' });
    await expect(founder.decide(signDecision(malloryKey, fleet.fleetId, 'operator-revoke', fake, fleet.clock.now()))).rejects.toThrow(/root key/);

    const effectiveAt = fleet.clock.now() + 1;
    const revocation = signOperatorRevocation(fleet.root.seed, fleet.fleetId, { publicKey: malloryKey.publicKey, effectiveAt, reason: 'stolen' });
    await founder.decide(decide(fleet, 'operator-revoke', revocation as never));
    await fleet.run(1_000);
    // A decision she dates after her revocation is refused where it is made, and, relayed by a
    // compromised member, taken in (replicas must agree) but not applied.
    const late = signDecision(malloryKey, fleet.fleetId, 'labels', { node: target, set: { by: 'mallory-after' }, remove: [] }, effectiveAt + 10);
    await expect(founder.decide(late)).rejects.toThrow(/revoked/);
    await other.store.change<FleetDocument>(FLEET_DOC_ID, (d) => recordDecision(d, late));
    await fleet.run(1_000);
    for (const node of [founder, other]) {
      expect(node.store.digest(FLEET_DOC_ID)).toBe(other.store.digest(FLEET_DOC_ID));
      expect(node.fleet()?.labels[target]).toEqual({ by: 'mallory-before' });
      expect(node.fleet()?.operators.find((o) => o.publicKey === malloryKey.publicKey)?.revokedAt).toBe(effectiveAt);
    }
  });
});
