import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AdmissionRecord, admissionRank, deriveMembership } from '../../crdt-schema/index.ts';

const founder = { peerId: 'F', name: 'founder', at: 0 };
const admit = (peerId: string, admittedBy: string, tokenHash: string): AdmissionRecord => ({ peerId, admittedBy, tokenHash, name: peerId, admittedAt: 1 });

describe('membership from admission records', () => {
  it('admits through chains of members and ignores admissions by non-members or with invalid grants', () => {
    const records = [admit('B', 'F', 't1'), admit('C', 'B', 't2'), admit('D', 'X', 't3'), admit('E', 'F', 'bad')];
    const { members } = deriveMembership(founder, records, (a) => a.tokenHash !== 'bad');
    expect(members.map((m) => m.peerId)).toEqual(['B', 'C', 'F']);
  });

  it('lets exactly one node win a token redeemed twice, the same one on every node, and names the loser', () => {
    const [p, q] = ['P', 'Q'];
    const records = [admit(p, 'F', 'tok'), admit(q, 'F', 'tok')];
    const expectedWinner = admissionRank('tok', p) < admissionRank('tok', q) ? p : q;
    const loser = expectedWinner === p ? q : p;
    const { members, lost } = deriveMembership(founder, records, () => true);
    expect(members.map((m) => m.peerId).filter((id) => id !== 'F')).toEqual([expectedWinner]);
    expect(lost).toEqual([{ peerId: loser, tokenHash: 'tok', winner: expectedWinner }]);
  });

  it('does not depend on the order admissions are seen in', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ peer: fc.constantFrom('A', 'B', 'C', 'D', 'E'), by: fc.constantFrom('F', 'A', 'B', 'C'), token: fc.constantFrom('t1', 't2', 't3') }), { maxLength: 12 }),
        (specs) => {
          const records = specs.map((x) => admit(x.peer, x.by, x.token));
          const forward = deriveMembership(founder, records, () => true);
          const backward = deriveMembership(founder, [...records].reverse(), () => true);
          expect(backward.members).toEqual(forward.members);
          // A token never admits two members.
          const tokens = forward.members.flatMap((m) => (m.tokenHash === undefined ? [] : [m.tokenHash]));
          expect(new Set(tokens).size).toBe(tokens.length);
        },
      ),
    );
  });
});
