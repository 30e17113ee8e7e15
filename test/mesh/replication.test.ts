import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import { type DocId, FLEET_DOC_ID, eventsDocId, nodeDocId, readFleet, readNodeState, toPlain } from '../../crdt-schema/index.ts';
import { ACK_DELAY_MS, EVENT_PUSH_BATCH_MS, HAVE_DELAY_MS, MemoryStorage, type PeerId, type SyncMessage, actorPrefixFor, decodeMessage, encodeFrame, encodeMessage, neighbourScore, sameHeadsReceived, signSeal, syncProtocol } from '../../mesh/index.ts';
import { bucketOf } from '../../mesh/replication/summary.ts';
import { FLEET_ID, MiniFleet, type MiniNode, fakePeerId, testIdentity, writeAsNode } from '../helpers/mini-fleet.ts';

type Loose = Record<string, unknown>;

async function seedFleetDoc(fleet: MiniFleet, index: number, members: number): Promise<void> {
  const node = fleet.nodes[index]!;
  await node.store.change<Loose>(FLEET_DOC_ID, (d) => {
    d['schema'] = 1;
    d['fleetId'] = new A.ImmutableString(FLEET_ID);
    d['members'] = {};
    for (let i = 0; i < members; i++) (d['members'] as Loose)[`member-${i}`] = { labels: { role: new A.ImmutableString('worker') } };
  });
}

/** A change to `peer`'s own document as `peer` writes it, at a fixed time, so its hash is the same on every run. */
function ownChange(base: A.Doc<Loose>, peer: PeerId, key: string, value: number): A.Doc<Loose> {
  return A.change(A.clone(base, { actor: `${actorPrefixFor(peer)}00000001` }), { time: 0 }, (d: Loose) => {
    d['schema'] = 1;
    d['peerId'] = new A.ImmutableString(peer);
    d[key] = value;
  });
}

/**
 * Two changes `x` then `y` on `base` such that Automerge's bloom filter of a peer holding only
 * `base` wrongly says that it holds `x`: answering that peer's first sync message, Automerge
 * sends `y` alone, which the peer cannot apply until it has asked for `x`.
 */
function changesHiddenByBloom(base: A.Doc<Loose>, peer: PeerId, from: number): { x: A.Doc<Loose>; y: A.Doc<Loose> } {
  for (let i = from; i < from + 20_000; i++) {
    const x = ownChange(base, peer, 'x', i);
    const y = ownChange(x, peer, 'y', i);
    const [asking, question] = A.generateSyncMessage(base, A.initSyncState());
    const [holder, holderState] = A.receiveSyncMessage(y, A.initSyncState(), question!);
    const [, answer] = A.generateSyncMessage(holder, holderState);
    const [received] = A.receiveSyncMessage(A.clone(base), asking, answer!);
    if (A.getMissingDeps(received, []).length > 0) return { x, y };
  }
  throw new Error('no bloom-filter false positive found');
}

const labelOf = (fleet: MiniFleet, index: number, member: string): unknown =>
  (toPlain(fleet.nodes[index]!.store.get(FLEET_DOC_ID)) as { members?: Record<string, { labels: Loose }> }).members?.[member]?.labels['role'];

describe('replication', () => {
  it('brings a new peer up to date with a snapshot, then carries later changes both ways', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    await seedFleetDoc(fleet, 0, 3);
    await fleet.connect(a, b);
    await fleet.until(() => b.store.has(FLEET_DOC_ID));
    expect(labelOf(fleet, 1, 'member-2')).toBe('worker');
    expect(b.replicator.stats()[0]!.snapshotsIn).toBe(1);

    await a.store.change<Loose>(FLEET_DOC_ID, (d) => {
      ((d['members'] as Loose)['member-1'] as { labels: Loose }).labels['role'] = new A.ImmutableString('gateway');
    });
    await fleet.until(() => labelOf(fleet, 1, 'member-1') === 'gateway');

    await b.store.change<Loose>(
      nodeDocId(b.peer),
      (d) => {
        d['schema'] = 1;
        d['peerId'] = new A.ImmutableString(b.peer);
        d['hostname'] = new A.ImmutableString('b-host');
      },
      { signer: testIdentity(1) },
    );
    await fleet.until(() => readNodeState(a.store.get(nodeDocId(b.peer)))?.hostname === 'b-host');
    expect(a.store.digest(FLEET_DOC_ID)).toBe(b.store.digest(FLEET_DOC_ID));
  });

  it("answers a peer whose stream arrives before its own is open, without waiting for anti-entropy", async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    await seedFleetDoc(fleet, 0, 2);
    await writeAsNode(b.store, b.peer, { hostname: 'late-b' });
    // Hold b's own sync stream until a's summary has reached b.
    const transportB = fleet.transportOf(b.peer);
    const openStream = transportB.openStream.bind(transportB);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    transportB.openStream = async (...args) => {
      await gate;
      return openStream(...args);
    };
    await fleet.connect(a, b);
    await fleet.run(100);
    expect(b.replicator.stats()[0]?.messagesIn).toBeGreaterThanOrEqual(2);
    release();
    await fleet.run(500);
    expect(b.store.digest(FLEET_DOC_ID)).toBe(a.store.digest(FLEET_DOC_ID));
    expect(readNodeState(a.store.get(nodeDocId(b.peer)))?.hostname).toBe('late-b');
  });

  it('relays changes through a peer to one that is not directly connected', async () => {
    const fleet = new MiniFleet();
    const [a, b, c] = [await fleet.add(0), await fleet.add(1), await fleet.add(2)];
    await seedFleetDoc(fleet, 0, 1);
    await fleet.connect(a, b);
    await fleet.connect(b, c);
    await fleet.until(() => c.store.has(FLEET_DOC_ID));
    await a.store.change<Loose>(FLEET_DOC_ID, (d) => {
      ((d['members'] as Loose)['member-0'] as { labels: Loose }).labels['role'] = new A.ImmutableString('relayed');
    });
    await fleet.until(() => labelOf(fleet, 2, 'member-0') === 'relayed');
    expect(fleet.transportOf(a.peer).connectedPeers()).not.toContain(c.peer);
  });

  it('reconnecting peers that hold the same documents exchange only their summaries', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    await seedFleetDoc(fleet, 0, 5);
    for (let i = 0; i < 200; i++) await writeAsNode(a.store, fakePeerId(100 + i), { n: i });
    await fleet.connect(a, b);
    await fleet.until(() => b.store.ids().length === 201 && b.store.ids().every((id) => b.store.digest(id) === a.store.digest(id)));
    await fleet.transportOf(a.peer).hangUp(b.peer);
    await fleet.run(20);
    await fleet.connect(a, b);
    await fleet.run(200);
    const [session] = b.replicator.stats();
    // hello + summary each way; no entries, snapshots or sync messages.
    expect(session!.messagesIn).toBe(2);
    expect(session!.messagesOut).toBe(2);
    expect(session!.bytesIn + session!.bytesOut).toBeLessThan(1_500);
  });

  it('refuses a document whose schema is newer than this node understands, and keeps serving', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    await a.store.change<Loose>(FLEET_DOC_ID, (d) => {
      d['schema'] = 99;
      d['fleetId'] = new A.ImmutableString(FLEET_ID);
    });
    await a.store.change<Loose>(
      nodeDocId(a.peer),
      (d) => {
        d['schema'] = 1;
        d['peerId'] = new A.ImmutableString(a.peer);
      },
      { signer: testIdentity(0) },
    );
    await fleet.connect(a, b);
    await fleet.until(() => b.store.has(nodeDocId(a.peer)));
    await fleet.run(100);
    expect(b.store.has(FLEET_DOC_ID)).toBe(false);
    expect(b.penalties.snapshot().byPeer[a.peer]).toEqual({ 'refused:schema-too-new': 1 });
    const refusal = b.log.records.find((r) => r.message === 'refused a change from a peer');
    expect(String(refusal?.fields['detail'])).toMatch(/schema 99; this node understands up to 1/);
    expect(a.log.records.some((r) => r.message === 'a peer refused one of our documents')).toBe(true);
  });

  it("refuses a change to another node's document made by a different writer", async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    // a forges b's observed state with its own actor.
    await a.store.change<Loose>(nodeDocId(b.peer), (d) => {
      d['schema'] = 1;
      d['hostname'] = new A.ImmutableString('forged');
    });
    await fleet.connect(a, b);
    await fleet.run(200);
    expect(b.store.has(nodeDocId(b.peer))).toBe(false);
    expect(b.penalties.snapshot().byPeer[a.peer]).toEqual({ 'refused:not-authorized': 1 });
  });

  it('counts garbage and malformed frames on the sync stream and keeps replicating with others', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    const attacker = fleet.network.createTransport('12D3KooWAttacker11111111111111111111111111111111' as never);
    await seedFleetDoc(fleet, 0, 1);
    const garbage = [new Uint8Array([0xff, 0x00, 0x13]), new TextEncoder().encode('GET / HTTP/1.1'), new Uint8Array([0x83, 0x09, 0x61, 0x78, 0xa0])];
    for (const frame of garbage) {
      const stream = await attacker.openStream(a.peer, syncProtocol.id, { maxFrameBytes: 1 << 20 });
      await stream.send(frame);
      await fleet.run(10);
    }
    const big = await attacker.openStream(a.peer, syncProtocol.id, { maxFrameBytes: 1 << 30 });
    await big.send(new Uint8Array(syncProtocol.maxFrameBytes + 1));
    await fleet.run(20);
    expect(a.penalties.snapshot().byPeer[attacker.localPeer]).toEqual({ malformed: 2, 'unsupported-version': 1, oversized: 1 });
    expect(encodeFrame(new Uint8Array(1)).length).toBe(2);
    await fleet.connect(a, b);
    await fleet.until(() => b.store.has(FLEET_DOC_ID));
  });

  it('recovers a damaged stored document from a peer and loses nothing else', async () => {
    const fleet = new MiniFleet();
    const storage = new MemoryStorage();
    const a = await fleet.add(0, storage);
    const b = await fleet.add(1);
    await seedFleetDoc(fleet, 0, 4);
    await a.store.change<Loose>(
      nodeDocId(a.peer),
      (d) => {
        d['schema'] = 1;
        d['peerId'] = new A.ImmutableString(a.peer);
        d['hostname'] = new A.ImmutableString('a-host');
      },
      { signer: testIdentity(0) },
    );
    await fleet.connect(a, b);
    await fleet.until(() => b.store.digest(FLEET_DOC_ID) === a.store.digest(FLEET_DOC_ID) && b.store.has(nodeDocId(a.peer)));
    await a.store.flush();

    // Flip a byte in the middle of the fleet document's stored increment, then restart a.
    const [increment] = await storage.range(['doc', FLEET_DOC_ID, 'inc']);
    storage.corrupt(increment!.key, (bytes) => {
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      return bytes;
    });
    await fleet.transportOf(a.peer).stop();
    await a.replicator.stop();
    fleet.nodes.shift();
    const restarted = await fleet.add(0, storage);
    expect(restarted.store.problems()).toMatchObject([{ docId: FLEET_DOC_ID, problem: 'damaged' }]);
    expect(restarted.store.has(FLEET_DOC_ID)).toBe(false);
    expect(readNodeState(restarted.store.get(nodeDocId(a.peer)))?.hostname).toBe('a-host');
    expect((await storage.range(['quarantine', FLEET_DOC_ID])).length).toBeGreaterThan(0);

    await fleet.connect(restarted, b);
    await fleet.until(() => restarted.store.has(FLEET_DOC_ID));
    expect(readFleet(restarted.store.get(FLEET_DOC_ID))?.fleetId).toBe(FLEET_ID);
    expect(labelOf(fleet, fleet.nodes.indexOf(restarted), 'member-3')).toBe('worker');
    expect(restarted.store.problems()).toEqual([]);
  });
});

describe('replication: sync neighbours', () => {
  /** `count` nodes, each connected to every other, each choosing `neighbours` of them. */
  async function meshOf(count: number, neighbours: number): Promise<{ fleet: MiniFleet; nodes: MiniNode[] }> {
    const fleet = new MiniFleet();
    const nodes: MiniNode[] = [];
    for (let i = 0; i < count; i++) nodes.push(await fleet.add(i, new MemoryStorage(), { neighbours }));
    for (let i = 0; i < count; i++) for (let j = i + 1; j < count; j++) await fleet.transportOf(nodes[i]!.peer).dial(nodes[j]!.peer, []);
    // Sessions closed while the choices settled are opened again by the side that wants them (1 s).
    await fleet.run(2_000, 20);
    return { fleet, nodes };
  }

  it('syncs with its chosen neighbours and the peers that chose it, not with every connected peer, and a change still reaches every node', async () => {
    const { fleet, nodes } = await meshOf(10, 2);
    for (const node of nodes) {
      expect(fleet.transportOf(node.peer).connectedPeers()).toHaveLength(9);
      expect(node.replicator.neighbours().size).toBe(2);
      const sessions = node.replicator.stats().map((s) => s.peer);
      // Its own two, and only peers that chose it besides.
      for (const peer of node.replicator.neighbours()) expect(sessions).toContain(peer);
      for (const peer of sessions) {
        const other = nodes.find((n) => n.peer === peer)!;
        expect(node.replicator.neighbours().has(peer) || other.replicator.neighbours().has(node.peer)).toBe(true);
      }
    }
    const sessions = nodes.reduce((sum, node) => sum + node.replicator.stats().length, 0) / 2;
    expect(sessions).toBeLessThanOrEqual(20);
    expect(sessions).toBeLessThan(45);
    await seedFleetDoc(fleet, 3, 2);
    await fleet.until(() => nodes.every((node) => node.store.digest(FLEET_DOC_ID) === nodes[3]!.store.digest(FLEET_DOC_ID)));
  });

  it('chooses another neighbour when one disconnects, and closes what neither side wants any more', async () => {
    const { fleet, nodes } = await meshOf(6, 1);
    const a = nodes[0]!;
    const first = [...a.replicator.neighbours()][0]!;
    await fleet.transportOf(a.peer).hangUp(first);
    await fleet.run(2_000, 20);
    const second = [...a.replicator.neighbours()][0]!;
    expect(second).not.toBe(first);
    expect(a.replicator.stats().map((s) => s.peer)).toContain(second);
    // Every session left is wanted by one side or the other.
    for (const node of nodes) {
      for (const { peer } of node.replicator.stats()) {
        const other = nodes.find((n) => n.peer === peer)!;
        expect(node.replicator.neighbours().has(peer) || other.replicator.neighbours().has(node.peer)).toBe(true);
      }
    }
    await seedFleetDoc(fleet, 0, 1);
    await fleet.until(() => nodes.every((node) => node.store.has(FLEET_DOC_ID)));
  });

  it('syncs with one more connected peer each anti-entropy round, in turn, so a neighbour graph cut in two is joined', async () => {
    // Four test identities whose one-neighbour choices make two pairs: a and b choose each other,
    // c and d each other. All four are connected, but the neighbour graph is cut in two.
    const nearest = (self: number, among: number[]): number => among.filter((i) => i !== self).sort((x, y) => neighbourScore(fakePeerId(self), fakePeerId(x)) - neighbourScore(fakePeerId(self), fakePeerId(y)))[0]!;
    let pairs: number[] | undefined;
    for (let a = 0; a < 12 && pairs === undefined; a++) {
      for (let b = a + 1; b < 12 && pairs === undefined; b++) {
        for (let c = b + 1; c < 12 && pairs === undefined; c++) {
          for (let d = c + 1; d < 12 && pairs === undefined; d++) {
            const four = [a, b, c, d];
            if (nearest(a, four) === b && nearest(b, four) === a && nearest(c, four) === d && nearest(d, four) === c) pairs = four;
          }
        }
      }
    }
    expect(pairs).toBeDefined();
    const fleet = new MiniFleet();
    const nodes: MiniNode[] = [];
    for (const index of pairs!) nodes.push(await fleet.add(index, new MemoryStorage(), { neighbours: 1 }));
    for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) await fleet.transportOf(nodes[i]!.peer).dial(nodes[j]!.peer, []);
    await fleet.run(2_000, 20);
    expect(nodes.map((node) => [...node.replicator.neighbours()])).toEqual([[nodes[1]!.peer], [nodes[0]!.peer], [nodes[3]!.peer], [nodes[2]!.peer]]);
    await seedFleetDoc(fleet, 0, 1);
    await fleet.run(5_000, 50);
    // Within its half at once; the other half only once a rotation bridges them (the first round is at 15 s).
    expect(nodes[1]!.store.has(FLEET_DOC_ID)).toBe(true);
    expect(nodes[2]!.store.has(FLEET_DOC_ID) || nodes[3]!.store.has(FLEET_DOC_ID)).toBe(false);
    await fleet.until(() => nodes.every((node) => node.store.digest(FLEET_DOC_ID) === nodes[0]!.store.digest(FLEET_DOC_ID)), 20_000);
  });
});

describe('replication: hinted relays', () => {
  /**
   * `count` nodes, each connected to every other and syncing with all of them. Every sync frame
   * sent is logged as [from, to, type, carries changes]; `drop` loses the frames it matches.
   */
  async function fullMesh(count: number, drop: (from: number, to: PeerId, message: SyncMessage) => boolean = () => false) {
    const fleet = new MiniFleet();
    const nodes: MiniNode[] = [];
    const sent: Array<{ from: number; to: PeerId; type: string; changes: boolean }> = [];
    for (let i = 0; i < count; i++) {
      const node = await fleet.add(i, new MemoryStorage(), { neighbours: count });
      const transport = fleet.transportOf(node.peer);
      const openStream = transport.openStream.bind(transport);
      transport.openStream = async (peer, protocol, options) => {
        const stream = await openStream(peer, protocol, options);
        const send = stream.send.bind(stream);
        stream.send = async (frame) => {
          const message = decodeMessage(syncProtocol, frame);
          sent.push({ from: i, to: peer, type: message.type, changes: message.type === 'sync' && A.decodeSyncMessage(message.body.message).changes.length > 0 });
          if (!drop(i, peer, message)) await send(frame);
        };
        return stream;
      };
      nodes.push(node);
    }
    for (let i = 0; i < count; i++) for (let j = i + 1; j < count; j++) await fleet.transportOf(nodes[i]!.peer).dial(nodes[j]!.peer, []);
    await seedFleetDoc(fleet, 0, 1);
    await fleet.until(() => nodes.every((node) => node.store.digest(FLEET_DOC_ID) === nodes[0]!.store.digest(FLEET_DOC_ID)));
    await fleet.run(2 * HAVE_DELAY_MS);
    sent.length = 0;
    return { fleet, nodes, sent };
  }

  const relabel = (node: MiniNode, role: string) =>
    node.store.change<Loose>(FLEET_DOC_ID, (d) => {
      ((d['members'] as Loose)['member-0'] as { labels: Loose }).labels['role'] = new A.ImmutableString(role);
    });

  /** Sets `key` in the event bucket `bucket` as node `index` writes it (sealed by its key). */
  const writeEvent = (node: MiniNode, index: number, bucket: DocId, key: string) =>
    node.store.change<Loose>(bucket, (d) => {
      d['schema'] = 1;
      d[key] = 1;
    }, { signer: testIdentity(index) });
  const sameEverywhere = (nodes: readonly MiniNode[], docId: DocId) => nodes.every((n) => n.store.digest(docId) === nodes[0]!.store.digest(docId));

  it('does not relay a change to the peers its origin pushed it to, and tells them later what it holds', async () => {
    const { fleet, nodes, sent } = await fullMesh(5);
    const indexOf = (peer: PeerId) => nodes.findIndex((n) => n.peer === peer);
    await relabel(nodes[2]!, 'gateway');
    await fleet.until(() => nodes.every((_, i) => labelOf(fleet, i, 'member-0') === 'gateway'));
    // The origin's four pushes carried the change; none of the receivers sent it on to another.
    expect(sent.filter((m) => m.from === 2 && m.changes)).toHaveLength(4);
    expect(sent.filter((m) => m.from !== 2 && indexOf(m.to) !== 2 && m.type === 'sync')).toEqual([]);
    // Within the delay each receiver names the version it holds to the others it has not heard
    // it from (a pair's first `have` answers for both), and nothing more follows.
    await fleet.run(HAVE_DELAY_MS + 500);
    const among = sent.filter((m) => m.from !== 2 && indexOf(m.to) !== 2);
    expect(among.every((m) => m.type === 'have')).toBe(true);
    const pairs = among.map((m) => [m.from, indexOf(m.to)].sort().join('-'));
    expect(new Set(pairs).size).toBe(6);
    expect(among.length).toBeLessThanOrEqual(12);
    // Without the hint, each receiver would have pushed the change to the other three (12 pushes, and answers).
    expect(sent.filter((m) => m.from !== 2 && m.changes)).toEqual([]);
  });

  it('brings a peer whose push from the origin was lost up to date from the others, without waiting for anti-entropy', async () => {
    let lose = false;
    const { fleet, nodes, sent } = await fullMesh(4, (from, to, message) => lose && from === 1 && to === nodes[3]!.peer && message.type === 'sync');
    lose = true;
    await relabel(nodes[1]!, 'edge');
    await fleet.run(200);
    expect(labelOf(fleet, 0, 'member-0')).toBe('edge');
    expect(labelOf(fleet, 3, 'member-0')).toBe('worker');
    // A receiver's `have` shows node 3 the version it lacks; it syncs it from that receiver.
    await fleet.until(() => labelOf(fleet, 3, 'member-0') === 'edge', HAVE_DELAY_MS + 1_000);
    expect(sent.some((m) => m.to === nodes[3]!.peer && m.type === 'have')).toBe(true);
  });

  it('pushes the changes an event bucket takes within EVENT_PUSH_BATCH_MS as one message per peer', async () => {
    const { fleet, nodes, sent } = await fullMesh(3);
    const bucket = eventsDocId(nodes[0]!.peer, 'low', fleet.clock.now());
    const write = (key: string) => writeEvent(nodes[0]!, 0, bucket, key);
    await write('first');
    await fleet.run(EVENT_PUSH_BATCH_MS / 2);
    await write('second');
    expect(sent.filter((m) => m.from === 0)).toEqual([]);
    await fleet.until(() => sameEverywhere(nodes, bucket));
    // Both changes in one message to each peer (a snapshot: the peers did not hold the bucket).
    expect(sent.filter((m) => m.from === 0 && (m.type === 'sync' || m.type === 'snapshot')).length).toBeLessThanOrEqual(4);
    expect(sent.filter((m) => m.from === 0 && m.type === 'snapshot')).toHaveLength(2);
  });

  it('names the peers a change still waiting for its push will reach, when an answer carries it first, so no receiver relays it', async () => {
    const { fleet, nodes, sent } = await fullMesh(4);
    const bucket = eventsDocId(nodes[0]!.peer, 'low', fleet.clock.now());
    const write = (key: string) => writeEvent(nodes[0]!, 0, bucket, key);
    // Every peer holds the bucket (its first copy comes as a snapshot).
    await write('zero');
    await fleet.until(() => sameEverywhere(nodes, bucket));
    await fleet.run(2 * HAVE_DELAY_MS);
    // 'first' is pushed EVENT_PUSH_BATCH_MS after it is written and acknowledged ACK_DELAY_MS
    // later; 'second' is written in between, so its own push is still due when those
    // acknowledgements arrive, and the answers to them carry it.
    await write('first');
    await fleet.run(EVENT_PUSH_BATCH_MS + ACK_DELAY_MS / 2);
    expect(sameEverywhere(nodes, bucket)).toBe(true);
    sent.length = 0;
    await write('second');
    await fleet.until(() => sameEverywhere(nodes, bucket));
    await fleet.run(2 * HAVE_DELAY_MS);
    expect(sent.filter((m) => m.from === 0 && m.changes).length).toBeGreaterThan(0);
    // No receiver sent the change on to another (before, each relayed it to the two others).
    expect(sent.filter((m) => m.from !== 0 && m.to !== nodes[0]!.peer && m.changes)).toEqual([]);
  });

  it('acknowledges changes pushed within ACK_DELAY_MS of each other with one message', async () => {
    const { fleet, nodes, sent } = await fullMesh(3);
    await relabel(nodes[0]!, 'first');
    await fleet.run(ACK_DELAY_MS / 4);
    await relabel(nodes[0]!, 'second');
    await fleet.until(() => nodes.every((_, i) => labelOf(fleet, i, 'member-0') === 'second'));
    await fleet.run(2 * ACK_DELAY_MS);
    expect(sent.filter((m) => m.from === 0 && m.changes)).toHaveLength(4);
    // One acknowledgement from each peer, not one a push.
    for (const peer of [1, 2]) expect(sent.filter((m) => m.from === peer && m.to === nodes[0]!.peer && m.type === 'sync')).toHaveLength(1);
  });

  it('answers a peer repeating that it holds another version of a document with one fresh sync, not one each time', async () => {
    const fleet = new MiniFleet();
    const b = await fleet.add(1);
    await b.store.change<Loose>(FLEET_DOC_ID, (d) => {
      d['schema'] = 1;
      d['fleetId'] = new A.ImmutableString(FLEET_ID);
      d['members'] = {};
    });
    for (let i = 0; i < 300; i++) await b.store.change<Loose>(FLEET_DOC_ID, (d) => void ((d['members'] as Loose)[`m${i}`] = i));
    const liar = fleet.network.createTransport(fakePeerId(9));
    let answers = 0;
    liar.handle(syncProtocol.id, (stream) => void (async () => {
      for await (const frame of stream) if (decodeMessage(syncProtocol, frame).type === 'sync') answers++;
    })(), { maxFrameBytes: syncProtocol.maxFrameBytes });
    const stream = await liar.openStream(b.peer, syncProtocol.id, { maxFrameBytes: syncProtocol.maxFrameBytes });
    await stream.send(encodeMessage(syncProtocol, { type: 'hello', body: { fleetId: FLEET_ID } }));
    await fleet.run(50);
    const lies: SyncMessage[] = [
      { type: 'have', body: { entries: [[FLEET_DOC_ID, 'ffffffffffffffff']] } },
      { type: 'entries', body: { bucket: bucketOf(FLEET_DOC_ID), entries: [[FLEET_DOC_ID, 'eeeeeeeeeeeeeeee']] } },
    ];
    for (let i = 0; i < 200; i++) await stream.send(encodeMessage(syncProtocol, lies[i % 2]!));
    await fleet.run(200);
    expect(answers).toBeGreaterThanOrEqual(1);
    expect(answers).toBeLessThanOrEqual(2);
  });

  it('relays to every peer a version it merged with changes of its own', async () => {
    const { fleet, nodes, sent } = await fullMesh(3);
    await relabel(nodes[0]!, 'a');
    await nodes[1]!.store.change<Loose>(FLEET_DOC_ID, (d) => {
      d['note'] = new A.ImmutableString('b');
    });
    await fleet.until(() => nodes.every((n) => n.store.digest(FLEET_DOC_ID) === nodes[0]!.store.digest(FLEET_DOC_ID)));
    expect(labelOf(fleet, 2, 'member-0')).toBe('a');
    expect((toPlain(nodes[2]!.store.get(FLEET_DOC_ID)) as Loose)['note']).toBe('b');
    expect(sent.some((m) => m.type === 'sync' && m.changes)).toBe(true);
  });
});

describe('replication: a document several neighbours offer at once', () => {
  it('is asked of one of them, and of another when that copy does not come', async () => {
    const fleet = new MiniFleet();
    const [a, b, c, n] = [await fleet.add(0), await fleet.add(1), await fleet.add(2), await fleet.add(3)];
    // n's requests to a are lost (a never answers them).
    const transportN = fleet.transportOf(n.peer);
    const openStream = transportN.openStream.bind(transportN);
    transportN.openStream = async (peer, protocol, options) => {
      const stream = await openStream(peer, protocol, options);
      if (peer !== a.peer || protocol !== syncProtocol.id) return stream;
      const send = stream.send.bind(stream);
      stream.send = async (frame) => (decodeMessage(syncProtocol, frame).type === 'want' ? undefined : send(frame));
      return stream;
    };
    for (const [x, y] of [[a, b], [a, c], [b, c], [a, n], [b, n], [c, n]] as const) await fleet.connect(x, y);
    await fleet.run(500);
    await writeAsNode(a.store, a.peer, { hostname: 'offered' });
    // a offers it to n first; b and c offer it as soon as they hold it, and wait for a's copy.
    await fleet.run(1_000);
    expect(n.store.has(nodeDocId(a.peer))).toBe(false);
    await fleet.until(() => n.store.has(nodeDocId(a.peer)), 3_000);
    const snapshots = n.replicator.stats().map((session) => session.snapshotsIn);
    expect(snapshots.reduce((sum, count) => sum + count, 0)).toBe(1);
    expect(n.replicator.stats().find((session) => session.peer === a.peer)?.snapshotsIn).toBe(0);
  });
});

describe('replication: messages about what both hold', () => {
  /** Runs Automerge sync between two documents until it is quiet; returns both sync states. */
  function converge(a: A.Doc<Loose>, b: A.Doc<Loose>, sa = A.initSyncState(), sb = A.initSyncState()) {
    for (let round = 0; round < 10; round++) {
      let message: Uint8Array | null;
      [sa, message] = A.generateSyncMessage(a, sa);
      if (message !== null) [b, sb] = A.receiveSyncMessage(A.clone(b), sb, message);
      [sb, message] = A.generateSyncMessage(b, sb);
      if (message !== null) [a, sa] = A.receiveSyncMessage(A.clone(a), sa, message);
    }
    return { a, b, sa, sb };
  }
  const comparable = (state: A.SyncState): unknown => ({ ...(state as unknown as Loose), theirCapabilities: undefined });

  it('advances the sync state as Automerge does for a message with the same heads, with or without changes', () => {
    // Fixed change times: a change's hash covers its time, and a sync message's bloom filter can
    // take a change for one the peer holds (a false positive), so with wall-clock times this test
    // failed now and then, when the ack came before the change it should acknowledge.
    const base = A.change(A.init<Loose>({ actor: 'aa' }), { time: 1 }, (d) => void (d['x'] = 1));
    // Without changes: the last message of an exchange, the peer acknowledging what both hold.
    const first = converge(base, A.clone(base, { actor: 'bb' }));
    const b2 = A.change(A.clone(first.b, { actor: 'bb' }), { time: 2 }, (d) => void (d['y'] = 2));
    let [sb, ack] = A.generateSyncMessage(b2, first.sb);
    const [a2, sa2] = A.receiveSyncMessage(A.clone(first.a), first.sa, ack!);
    [, ack] = A.generateSyncMessage(a2, sa2);
    const decodedAck = A.decodeSyncMessage(ack!);
    expect(decodedAck.changes).toHaveLength(0);
    expect(A.getHeads(b2)).toEqual(decodedAck.heads);
    const [, real] = A.receiveSyncMessage(A.clone(b2), sb, ack!);
    expect(comparable(sameHeadsReceived(sb, decodedAck))).toEqual(comparable(real));

    // With changes this node holds already (relayed to it by another neighbour first).
    const c = A.clone(first.b, { actor: 'cc' });
    const synced = converge(first.a, c);
    const a3 = A.change(A.clone(synced.a, { actor: 'aa' }), { time: 3 }, (d) => void (d['z'] = 3));
    const c3 = A.merge(A.clone(synced.b, { actor: 'cc' }), a3);
    const [, push] = A.generateSyncMessage(a3, synced.sa);
    const decodedPush = A.decodeSyncMessage(push!);
    expect(decodedPush.changes.length).toBeGreaterThan(0);
    expect(A.getHeads(c3)).toEqual(decodedPush.heads);
    [sb] = [synced.sb];
    const [, realPush] = A.receiveSyncMessage(A.clone(c3), sb, push!);
    expect(comparable(sameHeadsReceived(sb, decodedPush))).toEqual(comparable(realPush));
  });
});

describe('replication: changes whose dependencies are missing', () => {
  // The sync storm of docs/SIMULATION.md (leader-kill, seed 3): a restarted node's first sync
  // message carries a bloom filter of what it holds; a false positive on the first of two
  // changes it lacks makes its peer send only the second. Automerge would keep that change
  // queued and ask for its dependency; a session that dropped it with the clone it was applied
  // to asked for the change the peer had already sent, which the peer does not send again.
  it('keeps a received change until its dependency arrives and asks the peer for that dependency', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    const docId = nodeDocId(a.peer);
    const base = ownChange(A.init<Loose>(), a.peer, 'base', 1);
    // The first value that does it with Automerge 3.5 (searched from 0); the search goes on from
    // there if another release encodes changes differently.
    const { y } = changesHiddenByBloom(base, a.peer, 1_899);
    await b.store.adopt(docId, A.clone(base), a.peer, [signSeal(FLEET_ID, docId, A.getHeads(base), testIdentity(0))]);
    await a.store.adopt(docId, A.clone(y), a.peer, [signSeal(FLEET_ID, docId, A.getHeads(y), testIdentity(0))]);

    await fleet.connect(a, b);
    await fleet.until(() => b.store.digest(docId) === a.store.digest(docId), 2_000);
    const [session] = b.replicator.stats();
    // Converged by sync alone: no start-over with a full copy, and a handful of messages.
    expect(session!.resyncs).toBe(0);
    expect(session!.snapshotsIn).toBe(0);
    expect(session!.messagesIn).toBeLessThan(12);
    expect(b.log.records.some((r) => r.message.startsWith('sync of a document made no progress'))).toBe(false);
  });

  it('takes the dependency from whichever peer sends it first, and the waiting change from any', async () => {
    const fleet = new MiniFleet();
    const [a, b, c] = [await fleet.add(0), await fleet.add(1), await fleet.add(2)];
    const docId = nodeDocId(a.peer);
    const base = ownChange(A.init<Loose>(), a.peer, 'base', 1);
    const { y } = changesHiddenByBloom(base, a.peer, 1_899);
    await b.store.adopt(docId, A.clone(base), a.peer, [signSeal(FLEET_ID, docId, A.getHeads(base), testIdentity(0))]);
    for (const holder of [a, c]) await holder.store.adopt(docId, A.clone(y), a.peer, [signSeal(FLEET_ID, docId, A.getHeads(y), testIdentity(0))]);

    // b meets both holders at once: each answers its bloom filter with the second change alone.
    void fleet.transportOf(b.peer).dial(a.peer, []);
    void fleet.transportOf(b.peer).dial(c.peer, []);
    await fleet.until(() => b.store.digest(docId) === a.store.digest(docId), 2_000);
    await fleet.run(200);
    for (const session of b.replicator.stats()) {
      expect(session.resyncs).toBe(0);
      expect(session.messagesIn).toBeLessThan(12);
    }
    // The store holds what applied, never changes still waiting for a dependency.
    expect(A.getMissingDeps(b.store.get(docId)!, [])).toEqual([]);
  });

  it('keeps a bounded number of waiting messages from a peer that never sends the dependency', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const b = await fleet.add(1);
    const peer = fleet.network.createTransport(fakePeerId(7));
    const docId = nodeDocId(a.peer);
    const base = ownChange(A.init<Loose>(), a.peer, 'base', 1);
    await b.store.adopt(docId, A.clone(base), a.peer, [signSeal(FLEET_ID, docId, A.getHeads(base), testIdentity(0))]);
    // Changes on top of one (x) that is never sent.
    const x = ownChange(base, a.peer, 'x', 1);
    const stream = await peer.openStream(b.peer, syncProtocol.id, { maxFrameBytes: syncProtocol.maxFrameBytes });
    await stream.send(encodeMessage(syncProtocol, { type: 'hello', body: { fleetId: FLEET_ID } }));
    for (let i = 0; i < 10; i++) {
      // Each from another of a's actors, so they are not one actor's duplicate sequence numbers.
      const y = A.change(A.clone(x, { actor: `${actorPrefixFor(a.peer)}0000010${i}` }), { time: 0 }, (d: Loose) => {
        d['y'] = i;
      });
      const message = A.encodeSyncMessage({ heads: A.getHeads(y), need: [], have: [], changes: [A.getLastLocalChange(y)!] });
      await stream.send(encodeMessage(syncProtocol, { type: 'sync', body: { docId, message } }));
      await fleet.run(5);
    }
    const session = b.replicator.stats().find((s) => s.peer === peer.localPeer)!;
    expect(session.resyncs).toBe(1);
    expect(b.log.records.some((r) => r.message.startsWith('changes received from the peer wait for too many missing ones'))).toBe(true);
    expect(A.getHeads(b.store.get(docId)!)).toEqual(A.getHeads(base));
    expect(A.getMissingDeps(b.store.get(docId)!, [])).toEqual([]);
  });
});

describe('DocStore persistence', () => {
  it('compacts increments into a snapshot and reloads the same document', async () => {
    const fleet = new MiniFleet();
    const storage = new MemoryStorage();
    const a = await fleet.add(0, storage);
    const id = 'fleet' as DocId;
    for (let i = 0; i < 150; i++) {
      await a.store.change<Loose>(id, (d) => {
        d['schema'] = 1;
        d['counter'] = i;
      });
    }
    await a.store.flush();
    const increments = await storage.range(['doc', id, 'inc']);
    expect(increments.length).toBeLessThan(64);
    expect(await storage.get(['doc', id, 'snap'])).toBeDefined();
    const digest = a.store.digest(id);
    await a.replicator.stop();
    await fleet.transportOf(a.peer).stop();
    fleet.nodes.shift();
    const reopened = await fleet.add(0, storage);
    expect(reopened.store.digest(id)).toBe(digest);
    expect((toPlain(reopened.store.get(id)) as Loose)['counter']).toBe(149);
  });
});
