import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DocId } from '../../crdt-schema/index.ts';
import { SummaryKeeper, summarize } from '../../mesh/replication/summary.ts';

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
  });
});
