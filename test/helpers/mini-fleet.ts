import * as A from '@automerge/automerge';
import { createHash } from 'node:crypto';
import { nodeDocId } from '../../crdt-schema/index.ts';
import {
  type AnyDoc,
  DocStore,
  ManualClock,
  MemoryLogger,
  MemoryNetwork,
  MemoryStorage,
  type PeerId,
  PeerPenalties,
  Replicator,
  type Storage,
  actorPrefixFor,
  keyPairFromSeed,
  peerIdFromPublicKey,
  signSeal,
} from '../../mesh/index.ts';

export interface TestIdentity {
  readonly peerId: PeerId;
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

const identities = new Map<string, TestIdentity>();

/** A deterministic Ed25519 identity for in-memory tests: its peer id is a real libp2p peer id. */
export function testIdentity(index: number): TestIdentity {
  const seed = new Uint8Array(createHash('sha256').update(`powernode-test-peer-${index}`).digest());
  const { publicKey } = keyPairFromSeed(seed);
  const identity = { peerId: peerIdFromPublicKey(publicKey) as PeerId, publicKey, seed };
  identities.set(identity.peerId, identity);
  return identity;
}

/** The peer id of {@link testIdentity}. */
export function fakePeerId(index: number): PeerId {
  return testIdentity(index).peerId;
}

/** Lets every pending promise and I/O callback run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface MiniNode {
  readonly peer: PeerId;
  readonly storage: Storage;
  store: DocStore;
  replicator: Replicator;
  readonly penalties: PeerPenalties;
  readonly log: MemoryLogger;
  readonly disconnects: PeerId[];
}

export const FLEET_ID = '0123456789abcdef0123456789abcdef';

/** Store + replicator nodes on one in-memory network and one virtual clock. */
export class MiniFleet {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly nodes: MiniNode[] = [];

  async add(index: number, storage: Storage = new MemoryStorage(), options: { acceptsDocument?: (docId: string) => boolean; neighbours?: number } = {}): Promise<MiniNode> {
    const peer = fakePeerId(index);
    const transport = this.network.createTransport(peer);
    const log = new MemoryLogger();
    const disconnects: PeerId[] = [];
    const store = await DocStore.open({ storage, clock: this.clock, actorId: `${actorPrefixFor(peer)}0000000${index % 10}`, log, fleetId: FLEET_ID });
    const penalties = new PeerPenalties({
      clock: this.clock,
      onExceeded: (bad) => {
        disconnects.push(bad);
        void transport.hangUp(bad);
      },
    });
    const replicator = new Replicator({
      transport,
      store,
      clock: this.clock,
      log,
      penalties,
      fleetId: FLEET_ID,
      isPeerAllowed: () => true,
      ...(options.acceptsDocument === undefined ? {} : { acceptsDocument: options.acceptsDocument }),
      ...(options.neighbours === undefined ? {} : { neighbours: options.neighbours }),
    });
    replicator.start();
    const node: MiniNode = { peer, storage, store, replicator, penalties, log, disconnects };
    this.nodes.push(node);
    return node;
  }

  transportOf(peer: PeerId) {
    return this.network.lookup(peer)!;
  }

  async connect(a: MiniNode, b: MiniNode): Promise<void> {
    await this.transportOf(a.peer).dial(b.peer, []);
    await this.run(50);
  }

  /** Runs virtual time forward, letting async work settle between steps. */
  async run(ms: number, stepMs = 5): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
      await this.clock.advanceAsync(stepMs, settle);
    }
    await settle();
  }

  async until(condition: () => boolean, maxMs = 5_000): Promise<void> {
    for (let elapsed = 0; elapsed < maxMs; elapsed += 10) {
      if (condition()) return;
      await this.run(10);
    }
    if (!condition()) throw new Error(`condition not met within ${maxMs} ms of virtual time`);
  }
}

/**
 * Writes `peer`'s observed-state document under that peer's own actor, sealed with its own key
 * (a {@link testIdentity}), and hands it to `store` as if it had arrived from that peer.
 */
export async function writeAsNode(store: DocStore, peer: PeerId, fields: Record<string, unknown>, fleetId = FLEET_ID): Promise<void> {
  const identity = identities.get(peer);
  if (identity === undefined) throw new Error(`writeAsNode needs a testIdentity peer, got ${peer}`);
  const docId = nodeDocId(peer);
  const base = store.get(docId) ?? A.init<Record<string, unknown>>();
  const doc: AnyDoc = A.change(A.clone(base, { actor: `${actorPrefixFor(peer)}00000001` }), (d: Record<string, unknown>) => {
    d['schema'] = 1;
    d['peerId'] = new A.ImmutableString(peer);
    for (const [key, value] of Object.entries(fields)) d[key] = typeof value === 'string' ? new A.ImmutableString(value) : value;
  });
  await store.adopt(docId, doc, peer, [signSeal(fleetId, docId, A.getHeads(doc), identity)]);
}

/** Memory storage whose next batches fail, as a full or failing disk would. */
export class FailingStorage extends MemoryStorage {
  failNextBatches = 0;

  override async batch(...args: Parameters<MemoryStorage['batch']>): Promise<void> {
    if (this.failNextBatches > 0) {
      this.failNextBatches--;
      throw new Error('EIO: simulated write failure');
    }
    return super.batch(...args);
  }
}
