import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leastSent } from '../../mesh/membership/swim.ts';

describe("SWIM's choice of updates to piggyback", () => {
  it('is what a stable sort by times sent of the entries newest first, then the first few, gives', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 12 }), { maxLength: 200 }), fc.nat({ max: 40 }), (sent, count) => {
        const entries = sent.map((s, i) => ({ id: i, sent: s }));
        const expected = [...entries].reverse().sort((a, b) => a.sent - b.sent).slice(0, count);
        expect(leastSent(entries, count)).toEqual(expected);
      }),
      { numRuns: 2_000 },
    );
  });
});
