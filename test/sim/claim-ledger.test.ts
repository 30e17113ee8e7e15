import { describe, expect, it } from 'vitest';
import { ClaimLedger } from '../../sim/claim-ledger.ts';

describe('the claim ledger behind the pool invariants', () => {
  it('lets a member be claimed again once its claim ended, and takes a late copy of an ended claim for the old claim it is', () => {
    const ledger = new ClaimLedger();
    ledger.answered(10, 'c-1', 'm1');
    ledger.seen(11, 'm1', 'c-1', 'held by the member');
    ledger.ended('m1', 'c-1');
    ledger.seen(12, 'm1', 'c-1', 'a lagging copy of the owner record');
    ledger.answered(20, 'c-2', 'm1');
    expect(ledger.memberViolations).toEqual([]);
    expect(ledger.claimViolations).toEqual([]);
    expect(ledger.claims).toBe(2);
  });

  it('names a member held by a claim while another of its claims had not ended', () => {
    const ledger = new ClaimLedger((peer) => `n${peer.slice(1)}`);
    ledger.answered(10, 'c-1', 'm1');
    ledger.seen(30.4, 'm1', 'c-2', 'held by the member, seen on n2');
    expect(ledger.memberViolations).toEqual(['at 30 ms n1 is held by claim c-2 (held by the member, seen on n2) while c-1 had not ended']);
  });

  it('names a claim id answered with two members, or recorded on two', () => {
    const ledger = new ClaimLedger();
    ledger.answered(10, 'c-1', 'm1');
    ledger.answered(20, 'c-1', 'm2');
    ledger.seen(30, 'm3', 'c-3', 'recorded by n0 as owner');
    ledger.seen(40, 'm4', 'c-3', 'held by the member');
    expect(ledger.claimViolations).toEqual([
      'at 20 ms claim c-1 was answered with m2, earlier with m1',
      'at 20 ms claim c-1 is on 2 members (m1, m2; answered)',
      'at 40 ms claim c-3 is on 2 members (m3, m4; held by the member)',
    ]);
    expect(ledger.memberViolations).toEqual([]);
  });
});
