import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import { nodeDocId, readNodeState } from '../../crdt-schema/index.ts';
import {
  DocStore,
  InProcessVerifier,
  MemoryLogger,
  InvalidSealError,
  MemoryStorage,
  SealVerifier,
  SeededRandom,
  type SignatureCheck,
  actorPrefixFor,
  generateKeyPair,
  signSeal,
} from '../../mesh/index.ts';
import type { DocId } from '../../crdt-schema/index.ts';
import { MiniFleet, testIdentity, writeAsNode } from '../helpers/mini-fleet.ts';

const FLEET = '0123456789abcdef0123456789abcdef'; // the mini fleet's id too
const head = (n: number): string => n.toString(16).padStart(64, '0');

describe('seals over heads', () => {
  const random = new SeededRandom(5);
  const writer = generateKeyPair(random);
  const other = generateKeyPair(random);

  it('verifies a seal once, answers repeats from its cache, and refuses forgeries and moved seals', async () => {
    const verifier = new SealVerifier(new InProcessVerifier(), FLEET);
    const seal = signSeal(FLEET, 'node/x', [head(2), head(1)], writer);
    expect(seal.heads).toEqual([head(1), head(2)]);
    expect(await verifier.verify([seal, seal])).toEqual([true, true]);
    expect(await verifier.verify([seal])).toEqual([true]);
    expect(verifier.signaturesChecked).toBe(1);

    const otherSigner = { ...seal, signer: other.publicKey };
    const moreHeads = { ...seal, heads: [head(1), head(2), head(3)] };
    const otherDoc = { ...seal, docId: 'node/y' };
    const otherFleet = await new SealVerifier(new InProcessVerifier(), 'f'.repeat(32)).verify([seal]);
    const malformed = { ...seal, heads: ['not-a-hash'] };
    expect(await verifier.verify([otherSigner, moreHeads, otherDoc, malformed])).toEqual([false, false, false, false]);
    expect(otherFleet).toEqual([false]);
  });

  it('checks prefetched seals as one batch when first asked, and does not remember a verdict the verifier could not give', async () => {
    const batches: number[] = [];
    let failing = false;
    const counting = {
      verifyBatch: async (checks: readonly SignatureCheck[]) => {
        batches.push(checks.length);
        if (failing) throw new Error('worker crashed');
        return new InProcessVerifier().verifyBatch(checks);
      },
      close: async () => {},
    };
    const verifier = new SealVerifier(counting, FLEET);
    const seals = [1, 2, 3, 4, 5].map((n) => signSeal(FLEET, `node/${n}`, [head(n)], writer));
    verifier.prefetch(seals.slice(0, 4));
    verifier.prefetch([seals[0]!]); // already queued: not checked twice
    expect(batches).toEqual([]);
    expect(await verifier.verify([seals[0]!])).toEqual([true]);
    expect(batches).toEqual([4]);
    expect(await verifier.verify(seals.slice(1, 4))).toEqual([true, true, true]);
    expect(batches).toEqual([4]);

    failing = true;
    expect(await verifier.verify([seals[4]!])).toEqual([false]);
    failing = false;
    expect(await verifier.verify([seals[4]!])).toEqual([true]);
    expect(batches).toEqual([4, 1, 1]);
  });

  it('refuses to sign malformed heads', () => {
    expect(() => signSeal(FLEET, 'fleet', [], writer)).toThrow(InvalidSealError);
    expect(() => signSeal(FLEET, 'fleet', ['zz'], writer)).toThrow(InvalidSealError);
  });
});

describe('the seals a store keeps', () => {
  it("keeps each writer's latest seal of a document, one writer's or several, and the same after a restart", async () => {
    const random = new SeededRandom(9);
    const [first, second] = [generateKeyPair(random), generateKeyPair(random)];
    const storage = new MemoryStorage();
    const clock = new MiniFleet().clock;
    const open = () => DocStore.open({ storage, clock, actorId: 'cd'.repeat(16), log: new MemoryLogger(), fleetId: FLEET });
    const docId = 'fleet' as DocId;
    const signers = (store: DocStore) => store.seals(docId).map((seal) => `${Buffer.from(seal.signer).toString('hex').slice(0, 8)}:${seal.heads.join()}`).sort();
    const store = await open();
    await store.change<Record<string, number>>(docId, (d) => void Object.assign(d, { schema: 1, a: 1 }), { signer: first });
    await store.change<Record<string, number>>(docId, (d) => void (d['a'] = 2), { signer: first });
    const firstAlone = A.getHeads(store.get(docId)!).join();
    // One writer, twice: its latest seal only.
    expect(signers(store)).toEqual([`${Buffer.from(first.publicKey).toString('hex').slice(0, 8)}:${firstAlone}`]);
    await store.change<Record<string, number>>(docId, (d) => void (d['b'] = 1), { signer: second });
    await store.change<Record<string, number>>(docId, (d) => void (d['a'] = 3), { signer: first });
    const heads = A.getHeads(store.get(docId)!);
    const expected = signers(store);
    expect(expected).toHaveLength(2);
    expect(store.seals(docId).find((seal) => Buffer.compare(seal.signer, first.publicKey) === 0)?.heads).toEqual(heads);
    expect(store.seals(docId).find((seal) => Buffer.compare(seal.signer, second.publicKey) === 0)?.heads).not.toEqual(heads);
    await store.flush();
    const reopened = await open();
    expect(reopened.problems()).toEqual([]);
    expect(signers(reopened)).toEqual(expected);
    expect(reopened.seals('node/nobody' as DocId)).toEqual([]);
  });

  it('shares one seal between stores that stored the same one, and never a different seal of the same document', async () => {
    const random = new SeededRandom(11);
    const signer = generateKeyPair(random);
    const clock = new MiniFleet().clock;
    const docId = 'fleet' as DocId;
    const open = (storage: MemoryStorage) => DocStore.open({ storage, clock, actorId: 'ef'.repeat(16), log: new MemoryLogger(), fleetId: FLEET });
    const write = async (storage: MemoryStorage, value: number): Promise<void> => {
      const store = await open(storage);
      await store.change<Record<string, number>>(docId, (d) => void Object.assign(d, { schema: 1, a: value }), { signer });
      await store.flush();
    };
    const [one, same, other] = [new MemoryStorage(), new MemoryStorage(), new MemoryStorage()];
    await write(one, 1);
    for (const part of ['doc', 'seal']) for (const entry of await one.range([part])) await same.put(entry.key, entry.value);
    await write(other, 2);
    const [a, b, c] = [await open(one), await open(same), await open(other)];
    const [sealA, sealB, sealC] = [a.seals(docId)[0]!, b.seals(docId)[0]!, c.seals(docId)[0]!];
    expect(sealA).toBe(sealB);
    expect(sealC).not.toBe(sealA);
    expect(sealA.heads).toEqual(A.getHeads(a.get(docId)!));
    expect(sealC.heads).toEqual(A.getHeads(c.get(docId)!));
    expect(sealC.heads).not.toEqual(sealA.heads);
    expect(Object.isFrozen(sealA)).toBe(true);
  });
});

describe('sealed node documents in replication', () => {
  it("refuses a change to another node's document made under that node's actor id but not sealed by its key", async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    const victim = testIdentity(1).peerId;
    // a impersonates b's actor id (the old placeholder check passed this) and seals with its own key.
    const forged = A.change(A.init<Record<string, unknown>>({ actor: `${actorPrefixFor(victim)}deadbeef` }), (d) => {
      d['schema'] = 1;
      d['hostname'] = new A.ImmutableString('forged');
    });
    await a.store.adopt(nodeDocId(victim), forged, a.peer, [signSeal(FLEET, nodeDocId(victim), A.getHeads(forged), testIdentity(0))]);
    await fleet.connect(a, b);
    await fleet.run(300);
    expect(b.store.has(nodeDocId(victim))).toBe(false);
    expect(b.penalties.snapshot().byPeer[a.peer]).toEqual({ 'refused:not-authorized': 1 });
  });

  it('accepts a sealed node document relayed by another node, also after the relay restarts', async () => {
    const fleet = new MiniFleet();
    const relayStorage = new MemoryStorage();
    const relay = await fleet.add(0, relayStorage);
    const writer = testIdentity(7).peerId;
    await writeAsNode(relay.store, writer, { hostname: 'sealed' });
    await relay.store.flush();
    await relay.replicator.stop();
    await fleet.transportOf(relay.peer).stop();
    fleet.nodes.shift();
    const restarted = await fleet.add(0, relayStorage);
    expect(restarted.store.seals(nodeDocId(writer)).length).toBe(1);
    const reader = await fleet.add(1);
    await fleet.connect(restarted, reader);
    await fleet.until(() => readNodeState(reader.store.get(nodeDocId(writer)))?.hostname === 'sealed');
    expect(reader.store.seals(nodeDocId(writer)).length).toBe(1);
    expect(reader.penalties.snapshot().total).toBe(0);
  });
});
