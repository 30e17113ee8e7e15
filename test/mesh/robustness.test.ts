import * as A from '@automerge/automerge';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type DocId, FLEET_DOC_ID, nodeDocId, readNodeState, toPlain } from '../../crdt-schema/index.ts';
import {
  DocLockedError,
  DocStore,
  DocTooLargeError,
  MAX_DOC_BYTES,
  MemoryLogger,
  MemoryStorage,
  encodeMessage,
  syncProtocol,
} from '../../mesh/index.ts';
import { FLEET_ID, FailingStorage, MiniFleet, fakePeerId, writeAsNode } from '../helpers/mini-fleet.ts';

type Loose = Record<string, unknown>;
const ACTOR = 'aa'.repeat(16);

async function openStore(storage: MemoryStorage, fleet = new MiniFleet()): Promise<DocStore> {
  return DocStore.open({ storage, clock: fleet.clock, actorId: ACTOR, log: new MemoryLogger() });
}

/** Storage whose batches wait until `release()` while `holding`. */
class HeldStorage extends MemoryStorage {
  holding = false;
  readonly #waiting: Array<() => void> = [];

  override async batch(...args: Parameters<MemoryStorage['batch']>): Promise<void> {
    if (this.holding) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return super.batch(...args);
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

describe('document store', () => {
  it('makes a local change in memory before it is stored: readers see it while the durable write is under way', async () => {
    const storage = new HeldStorage();
    const store = await openStore(storage);
    const version = store.version;
    storage.holding = true;
    let stored = false;
    const writing = store.change<Loose>(FLEET_DOC_ID, (d) => {
      d['schema'] = 1;
      d['one'] = 1;
    }, { durable: true }).then(() => (stored = true));
    // Before the promise settles, and before any await: the pools owner answers claims on this.
    expect(toPlain(store.get(FLEET_DOC_ID))).toEqual({ schema: 1, one: 1 });
    expect(store.version).toBeGreaterThan(version);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stored).toBe(false);
    storage.release();
    await writing;
    expect(stored).toBe(true);
    expect(toPlain((await openStore(storage)).get(FLEET_DOC_ID))).toEqual({ schema: 1, one: 1 });
  });
});

describe('document store: writes made while one is under way', () => {
  it('stores the changes made during a write in one batch after it, acknowledging each once stored, and loads them all', async () => {
    const storage = new HeldStorage();
    const batches: Array<{ ops: number; sync: boolean }> = [];
    const batch = storage.batch.bind(storage);
    storage.batch = async (ops, options) => {
      batches.push({ ops: ops.length, sync: options?.sync === true });
      return batch(ops, options);
    };
    // Compaction after every 3 increments, so one falls inside the gathered batch.
    const store = await DocStore.open({ storage, clock: new MiniFleet().clock, actorId: ACTOR, log: new MemoryLogger(), compactAfterIncrements: 3 });
    const stored: string[] = [];
    storage.holding = true;
    const first = store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1), { durable: true }).then(() => stored.push('first'));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const rest = ['a', 'b', 'c', 'd'].map((key, i) =>
      store.change<Loose>(FLEET_DOC_ID, (d) => void (d[key] = i), { durable: key === 'b' }).then(() => stored.push(key)),
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(stored).toEqual([]);
    storage.release();
    await Promise.all([first, ...rest]);
    expect(stored).toEqual(['first', 'a', 'b', 'c', 'd']);
    // The first write alone, then the four changes made meanwhile in one synced batch.
    expect(batches.map((b) => b.sync)).toEqual([true, true]);
    expect(toPlain((await openStore(storage)).get(FLEET_DOC_ID))).toEqual({ schema: 1, a: 0, b: 1, c: 2, d: 3 });
    expect(await storage.range(['doc', FLEET_DOC_ID, 'inc'])).toHaveLength(2);
  });
});

describe('document store: change listeners', () => {
  it('tells listeners of a durable local change once it is stored (so no peer is pushed what could be lost), of any other change at once', async () => {
    const storage = new HeldStorage();
    const store = await openStore(storage);
    const heard: string[] = [];
    store.onChanged(({ docId }) => heard.push(docId));
    storage.holding = true;
    const durable = store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1), { durable: true }).then(() => heard.push('durable stored'));
    const other = 'node/' + fakePeerId(3);
    void store.change<Loose>(other as DocId, (d) => void (d['schema'] = 1));
    expect(heard).toEqual([other]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(heard).toEqual([other]);
    storage.release();
    await durable;
    expect(heard).toEqual([other, FLEET_DOC_ID, 'durable stored']);
  });

  it('tells listeners of a durable local change whose write failed, as the change stays in memory', async () => {
    const storage = new FailingStorage();
    const store = await openStore(storage);
    const heard: string[] = [];
    store.onChanged(({ docId }) => heard.push(docId));
    storage.failNextBatches = 1;
    await expect(store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1), { durable: true })).rejects.toThrow(/EIO/);
    expect(heard).toEqual([FLEET_DOC_ID]);
    expect(toPlain(store.get(FLEET_DOC_ID))).toEqual({ schema: 1 });
  });
});

describe('document store under failures', () => {
  it('keeps what it stored loadable after a failed write: the next write is a full snapshot', async () => {
    const storage = new FailingStorage();
    const store = await openStore(storage);
    await store.change<Loose>(FLEET_DOC_ID, (d) => {
      d['schema'] = 1;
      d['one'] = 1;
    });
    storage.failNextBatches = 1;
    await expect(store.change<Loose>(FLEET_DOC_ID, (d) => void (d['two'] = 2))).rejects.toThrow(/EIO/);
    await store.change<Loose>(FLEET_DOC_ID, (d) => void (d['three'] = 3));
    await store.flush();
    const reopened = await openStore(storage);
    expect(reopened.problems()).toEqual([]);
    expect(toPlain(reopened.get(FLEET_DOC_ID))).toMatchObject({ one: 1, two: 2, three: 3 });
  });

  it('refuses a change that would make a document larger than the limit, and the document stays usable', async () => {
    const store = await openStore(new MemoryStorage());
    await store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1));
    await expect(store.change<Loose>(FLEET_DOC_ID, (d) => void (d['blob'] = randomBytes(MAX_DOC_BYTES + 1)))).rejects.toBeInstanceOf(DocTooLargeError);
    await store.change<Loose>(FLEET_DOC_ID, (d) => void (d['after'] = true));
    expect(toPlain(store.get(FLEET_DOC_ID))).toEqual({ schema: 1, after: true });
    expect(A.getMissingDeps(store.get(FLEET_DOC_ID)!, [])).toEqual([]);
  });

  it('changes a held document in place, and a document read before the change still reads as it was', async () => {
    const storage = new MemoryStorage();
    const store = await openStore(storage);
    await store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1));
    const held = store.get(FLEET_DOC_ID)!;
    const heads = A.getHeads(held);
    await store.change<Loose>(FLEET_DOC_ID, (d) => void (d['two'] = 2));
    expect(toPlain(held)).toEqual({ schema: 1 });
    expect(A.getHeads(held)).toEqual(heads);
    expect(toPlain(store.get(FLEET_DOC_ID))).toEqual({ schema: 1, two: 2 });
    // A copy made of the earlier read (as replication forks what it verifies) is that version.
    expect(toPlain(store.fork(held))).toEqual({ schema: 1 });
    await store.flush();
    expect(toPlain((await openStore(storage)).get(FLEET_DOC_ID))).toEqual({ schema: 1, two: 2 });
  });

  it('leaves a document written by a newer schema untouched on disk', async () => {
    const storage = new MemoryStorage();
    const first = await openStore(storage);
    await first.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 99));
    await first.flush();
    const before = await storage.range(['doc', FLEET_DOC_ID]);
    const store = await openStore(storage);
    expect(store.problems()).toMatchObject([{ docId: FLEET_DOC_ID, problem: 'schema-too-new' }]);
    await expect(store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1))).rejects.toBeInstanceOf(DocLockedError);
    await expect(store.adopt(FLEET_DOC_ID, A.from<Loose>({ schema: 1 }), fakePeerId(9))).rejects.toBeInstanceOf(DocLockedError);
    expect(await storage.range(['doc', FLEET_DOC_ID])).toEqual(before);
  });
});

describe('replication under failures and hostile peers', () => {
  it('restarts a session whose message handling failed, and still converges', async () => {
    const fleet = new MiniFleet();
    const storageB = new FailingStorage();
    const a = await fleet.add(0);
    const b = await fleet.add(1, storageB);
    await writeAsNode(a.store, a.peer, { hostname: 'a-host' });
    await writeAsNode(b.store, b.peer, { hostname: 'b-host' });
    storageB.failNextBatches = 1;
    await fleet.connect(a, b);
    await fleet.run(3_000);
    expect(b.log.records.some((r) => r.message === 'handling a sync message failed; restarting the session')).toBe(true);
    expect(readNodeState(b.store.get(nodeDocId(a.peer)))?.hostname).toBe('a-host');
    expect(readNodeState(a.store.get(nodeDocId(b.peer)))?.hostname).toBe('b-host');
    await b.store.flush();
    const reopened = await DocStore.open({ storage: storageB, clock: fleet.clock, actorId: ACTOR, log: new MemoryLogger() });
    expect(reopened.problems()).toEqual([]);
    expect(reopened.digest(nodeDocId(a.peer))).toBe(a.store.digest(nodeDocId(a.peer)));
  });

  it('refuses a document over the size limit from a peer and keeps serving', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const attacker = fleet.network.createTransport(fakePeerId(50));
    const huge = A.save(A.from<Loose>({ schema: 1, fleetId: new A.ImmutableString(FLEET_ID), blob: randomBytes(MAX_DOC_BYTES + 1024) }));
    expect(huge.length).toBeLessThan(6 * 1024 * 1024);
    const stream = await attacker.openStream(a.peer, syncProtocol.id, { maxFrameBytes: syncProtocol.maxFrameBytes });
    await stream.send(encodeMessage(syncProtocol, { type: 'hello', body: { fleetId: FLEET_ID } }));
    await stream.send(encodeMessage(syncProtocol, { type: 'snapshot', body: { docId: FLEET_DOC_ID, bytes: huge } }));
    await fleet.run(100);
    expect(a.store.has(FLEET_DOC_ID)).toBe(false);
    expect(a.penalties.snapshot().byPeer[attacker.localPeer]).toEqual({ 'refused:too-large': 1 });
    const b = await fleet.add(1);
    await a.store.change<Loose>(FLEET_DOC_ID, (d) => void (d['schema'] = 1));
    await fleet.connect(a, b);
    await fleet.until(() => b.store.has(FLEET_DOC_ID));
  });

  it('takes in a node document only once the node is acceptable, without counting the early copy against the sender', async () => {
    const fleet = new MiniFleet();
    const members = new Set<string>();
    const a = await fleet.add(0);
    const b = await fleet.add(1, new MemoryStorage(), { acceptsDocument: (docId) => !docId.startsWith('node/') || members.has(docId.slice(5)) });
    const newcomer = fakePeerId(7);
    await writeAsNode(a.store, newcomer, { hostname: 'newcomer' });
    for (let i = 0; i < 10; i++) await writeAsNode(a.store, fakePeerId(100 + i), { hostname: 'made-up' });
    await fleet.connect(a, b);
    await fleet.run(1_000);
    expect(b.store.ids().filter((id: DocId) => id.startsWith('node/'))).toEqual([]);
    expect(b.penalties.snapshot().total).toBe(0);
    members.add(newcomer);
    await fleet.run(16_000); // one anti-entropy round
    expect(readNodeState(b.store.get(nodeDocId(newcomer)))?.hostname).toBe('newcomer');
    expect(b.store.ids().filter((id: DocId) => id.startsWith('node/'))).toEqual([nodeDocId(newcomer)]);
  });
});
