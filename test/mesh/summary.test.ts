import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DocId } from '../../crdt-schema/index.ts';
import { SummaryKeeper, summarize } from '../../mesh/replication/summary.ts';
import { DocStore, MemoryLogger, MemoryStorage } from '../../mesh/index.ts';
import { FailingStorage, MiniFleet, type MiniNode, settle } from '../helpers/mini-fleet.ts';

describe('the summary', () => {
  it('is the wire format every release computes (a fixed example)', () => {
    const digests = new Map([['fleet', 'a'], ['node/x', 'b'], ['events/routine/2026-12-02/y', 'c']] as Array<[DocId, string]>);
    const summary = summarize(digests);
    expect(summary.count).toBe(3);
    expect(summary.root).toBe('b4c99740e56291ca19a7d484787c91df');
    // An empty bucket's hash: SHA-256 of nothing, cut to 8 bytes.
    expect(Buffer.from(summary.buckets.subarray(0, 8)).toString('hex')).toBe('e3b0c44298fc1c14');
  });
});

describe('the summary kept up to date', () => {
  it('equals a summary built from scratch after any run of documents added, changed and removed (each noted), and after a rescan', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), doc: fc.integer({ min: 0, max: 200 }), digest: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant('remove' as const), doc: fc.integer({ min: 0, max: 200 }) }),
      fc.record({ kind: fc.constant('summarize' as const) }),
      fc.record({ kind: fc.constant('rescan' as const) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const held = new Map<DocId, string>();
        const keeper = new SummaryKeeper();
        const check = (): void => {
          const kept = keeper.summary(() => held.keys(), (docId) => held.get(docId));
          const built = summarize(held);
          expect({ ...kept, buckets: Buffer.from(kept.buckets).toString('hex') }).toEqual({ ...built, buckets: Buffer.from(built.buckets).toString('hex') });
        };
        for (const s of steps) {
          const docId = `node/doc-${'doc' in s ? s.doc : 0}` as DocId;
          if (s.kind === 'put') held.set(docId, `digest-${s.digest}`);
          else if (s.kind === 'remove') held.delete(docId);
          if (s.kind === 'put' || s.kind === 'remove') keeper.note(docId);
          else if (s.kind === 'rescan') keeper.rescan();
          else check();
        }
        check();
      }),
      { numRuns: 200 },
    );
  });

  it('gives the same summary object while nothing was noted, and a new one once a change was', () => {
    const held = new Map<DocId, string>([['fleet' as DocId, 'a']]);
    const keeper = new SummaryKeeper();
    const first = keeper.summary(() => held.keys(), (docId) => held.get(docId));
    expect(keeper.summary(() => held.keys(), (docId) => held.get(docId))).toBe(first);
    held.set('fleet' as DocId, 'b');
    // Not noted: not read (the store tells the replicator what changed).
    expect(keeper.summary(() => held.keys(), (docId) => held.get(docId))).toBe(first);
    keeper.note('fleet' as DocId);
    const second = keeper.summary(() => held.keys(), (docId) => held.get(docId));
    expect(second.root).not.toBe(first.root);
    // The first one handed out is not changed under its holder.
    expect(first.root).toBe(summarize(new Map([['fleet' as DocId, 'a']])).root);
    expect(Buffer.from(first.buckets)).toEqual(Buffer.from(summarize(new Map([['fleet' as DocId, 'a']])).buckets));
    // Noted, but at the digest it had: the same summary as before.
    keeper.note('fleet' as DocId);
    expect(keeper.summary(() => held.keys(), (docId) => held.get(docId))).toBe(second);
  });
});

describe('the replicator\'s summary against its store', () => {
  const fromStore = (node: MiniNode) => summarize(new Map(node.store.ids().map((id) => [id, node.store.digest(id)!] as [DocId, string])));
  const hex = (s: { count: number; root: string; buckets: Uint8Array }) => ({ count: s.count, root: s.root, buckets: Buffer.from(s.buckets).toString('hex') });

  it('leaves out a document whose removal failed in storage (it is gone from memory)', async () => {
    const fleet = new MiniFleet();
    const storage = new FailingStorage();
    const a = await fleet.add(0, storage);
    await a.store.change<Record<string, unknown>>('events/x' as DocId, (d) => void (d['v'] = 1));
    await settle();
    expect(hex(a.replicator.summary())).toEqual(hex(fromStore(a)));
    storage.failNextBatches = 1;
    await expect(a.store.remove('events/x' as DocId)).rejects.toThrow();
    await fleet.run(100);
    expect(a.store.ids()).not.toContain('events/x');
    expect(hex(a.replicator.summary())).toEqual(hex(fromStore(a)));
  });

  it('holds no document for a change that changed nothing', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    a.replicator.summary();
    expect(await a.store.change('events/z' as DocId, () => {})).toBe(false);
    expect(a.store.ids()).not.toContain('events/z');
    await a.store.change<Record<string, unknown>>('events/y' as DocId, (d) => void (d['v'] = 1));
    await fleet.run(100);
    expect(hex(a.replicator.summary())).toEqual(hex(fromStore(a)));
  });

  it('leaves a durable change out until it is on disk, then takes it in', async () => {
    const fleet = new MiniFleet();
    const a = await fleet.add(0);
    const before = a.replicator.summary();
    const done = a.store.change<Record<string, unknown>>('events/d' as DocId, (d) => void (d['v'] = 1), { durable: true });
    expect(a.replicator.summary()).toBe(before);
    await done;
    expect(hex(a.replicator.summary())).toEqual(hex(fromStore(a)));
  });

  it('follows every change although a listener before it throws (each listener hears each change)', async () => {
    const fleet = new MiniFleet();
    const log = new MemoryLogger();
    const store = await DocStore.open({ storage: new MemoryStorage(), clock: fleet.clock, actorId: 'ab'.repeat(16), log });
    store.onChanged(() => {
      throw new Error('a faulty listener');
    });
    const keeper = new SummaryKeeper();
    store.onChanged(({ docId }) => keeper.note(docId));
    const current = () => keeper.summary(() => store.ids(), (id) => store.digest(id));
    const fromScratch = () => summarize(new Map(store.ids().map((id) => [id, store.digest(id)!] as [DocId, string])));
    current();
    await store.change<Record<string, unknown>>('events/a' as DocId, (d) => void (d['v'] = 1));
    await store.change<Record<string, unknown>>('events/b' as DocId, (d) => void (d['v'] = 2), { durable: true });
    await settle();
    expect(hex(current())).toEqual(hex(fromScratch()));
    await store.remove('events/a' as DocId);
    expect(hex(current())).toEqual(hex(fromScratch()));
    expect(store.ids()).toEqual(['events/b']);
    expect(log.records.filter((r) => r.message === 'a document change listener failed')).toHaveLength(3);
  });
});
