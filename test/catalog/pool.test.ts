import { describe, expect, it } from 'vitest';
import * as A from '@automerge/automerge';
import { IllegalTransitionError, type Pool, type PoolMember, type PoolsDocument, REAPER_DEFAULTS, chooseClaim, memberMachine, poolMembersOf, poolOf, readPoolsDoc, reap, recordHeldClaim, recordPoolClaim, toPlain } from '../../crdt-schema/index.ts';

const nowMs = 100_000_000_000;
const minute = 60_000;
const pool = (fields: Record<string, unknown> = {}): Pool => poolOf({ name: 'runners', template: 'ci-runner', target: 3, min: 1, max: 5, ...fields });
const member = (instance: string, state: PoolMember['state'], ageMinutes: number): PoolMember => ({ instance, state, warmingStartedAtMs: nowMs - ageMinutes * minute });

describe('pool input', () => {
  it('takes the original defaults: target 1, min 0, max 10, ephemeral, active', () => {
    expect(poolOf({ name: 'p', template: 't' })).toEqual({ name: 'p', template: 't', target: 1, min: 0, max: 10, lifecycle: 'ephemeral', status: 'active' });
  });

  it('refuses sizes out of order, out of range or fractional', () => {
    expect(() => pool({ min: 4 })).toThrow('pool "runners".target: must be at least min (target 3, min 4)');
    expect(() => pool({ max: 2 })).toThrow('pool "runners".target: must be at most max (target 3, max 2)');
    expect(() => pool({ max: 1_001 })).toThrow('pool "runners".max: must be a whole number from 0 to 1000');
    expect(() => pool({ target: 2.5 })).toThrow('pool "runners".target: must be a whole number');
    expect(() => pool({ lifecycle: 'persistent' })).toThrow('must be one of ephemeral, spot');
  });

  it('refuses a member listed twice', () => {
    const members = [{ instance: 'i1', state: 'ready', warmingStartedAtMs: 0 }, { instance: 'i1', state: 'warming', warmingStartedAtMs: 0 }];
    expect(() => poolMembersOf(members, 'members')).toThrow('members: "i1" appears more than once');
  });
});

describe('pool members', () => {
  it('never fails a claimed member under its claimer', () => {
    expect(() => memberMachine.next('claimed', 'fail')).toThrow(IllegalTransitionError);
    expect(memberMachine.allowed('claimed')).toEqual(['release', 'reuse']);
  });
});

describe('claiming', () => {
  it('claims the oldest ready member, ties broken by instance id', () => {
    const members = [member('i3', 'ready', 10), member('i2', 'ready', 50), member('i1', 'ready', 50), member('i0', 'warming', 90), member('i9', 'claimed', 99)];
    expect(chooseClaim(pool(), members)).toEqual({ type: 'claim', instance: 'i1' });
    expect(chooseClaim(pool(), [...members].reverse())).toEqual({ type: 'claim', instance: 'i1' });
  });

  it('refuses when no member is ready, or the pool is not active', () => {
    expect(chooseClaim(pool(), [member('i0', 'warming', 1)])).toMatchObject({ type: 'refuse', reason: 'no-ready-member', message: 'pool runners has no ready member (target 3, warming 1); the reaper replenishes it' });
    for (const status of ['paused', 'draining', 'archived']) {
      expect(chooseClaim(pool({ status }), [member('i1', 'ready', 1)])).toMatchObject({ type: 'refuse', reason: 'not-active' });
    }
  });
});

describe('reaper', () => {
  it('fails members warming past 30 minutes and recycles ready ones past 4 hours', () => {
    const members = [member('w-old', 'warming', 31), member('w-new', 'warming', 29), member('r-old', 'ready', 4 * 60 + 1), member('r-new', 'ready', 4 * 60 - 1)];
    expect(reap(pool(), members, nowMs).filter((decision) => decision.type === 'transition')).toEqual([
      { type: 'transition', instance: 'r-old', event: 'recycle', reason: 'ready-expired' },
      { type: 'transition', instance: 'w-old', event: 'fail', reason: 'warming-timeout' },
    ]);
  });

  it('replenishes to target counting what survives the pass', () => {
    const members = [member('r1', 'ready', 1), member('w-old', 'warming', 31), member('c1', 'claimed', 5)];
    expect(reap(pool(), members, nowMs).at(-1)).toEqual({ type: 'provision', count: 2, cappedByMax: false });
  });

  it('never provisions past max, claimed members included', () => {
    const members = [member('c1', 'claimed', 1), member('c2', 'claimed', 1), member('c3', 'claimed', 1), member('c4', 'claimed', 1), member('r1', 'ready', 1)];
    expect(reap(pool(), members, nowMs)).toEqual([]);
    expect(reap(pool(), members.slice(0, 3), nowMs)).toEqual([{ type: 'provision', count: 2, cappedByMax: true }]);
  });

  it('terminates errored members', () => {
    expect(reap(pool({ target: 0, min: 0 }), [member('e1', 'errored', 1)], nowMs)).toEqual([{ type: 'terminate', instance: 'e1', reason: 'errored' }]);
  });

  it('empties a draining pool without replenishing it, and leaves paused and archived pools alone', () => {
    const members = [member('r1', 'ready', 1), member('w1', 'warming', 1), member('c1', 'claimed', 1)];
    expect(reap(pool({ status: 'draining' }), members, nowMs)).toEqual([{ type: 'transition', instance: 'r1', event: 'recycle', reason: 'draining' }]);
    expect(reap(pool({ status: 'paused' }), [member('w-old', 'warming', 99)], nowMs)).toEqual([]);
    expect(reap(pool({ status: 'archived' }), [member('w-old', 'warming', 99)], nowMs)).toEqual([]);
  });

  it('decides the same whatever order members come in', () => {
    const members = [member('b', 'warming', 40), member('a', 'ready', 300), member('c', 'errored', 1), member('d', 'ready', 1)];
    expect(reap(pool(), [...members].reverse(), nowMs)).toEqual(reap(pool(), members, nowMs));
    expect(REAPER_DEFAULTS).toEqual({ warmingTimeoutMs: 30 * minute, readyTtlMs: 240 * minute });
  });
});

describe('pools documents', () => {
  const member = '12D3KooWMember';
  const record = { pool: 'ci', member, claimId: 'c-1', state: 'claimed' as const, epoch: 3, at: 20, claimedAt: 10, for: 'job 7', via: 'n1', memberStartedAt: 5 };

  it('writes each record and the held claim as one JSON string, and reads those and the maps of schema 1 documents alike', () => {
    let doc = A.change(A.init<PoolsDocument>(), (d) => {
      recordPoolClaim(d, record);
      recordHeldClaim(d, { pool: 'ci', claimId: 'c-1', state: 'claimed', epoch: 3, at: 11 });
    });
    expect(doc.schema).toBe(2);
    expect(typeof toPlain((doc.claims as Record<string, unknown>)[member])).toBe('string');
    expect(readPoolsDoc(doc)).toEqual({ claims: new Map([[member, record]]), held: { pool: 'ci', claimId: 'c-1', state: 'claimed', epoch: 3, at: 11 } });
    // What a schema 1 writer made: maps of fields.
    const str = (value: string) => new A.ImmutableString(value);
    doc = A.change(A.init<PoolsDocument>(), (d) => {
      d.schema = 1;
      d.claims = { [member]: { pool: str('ci'), member: str(member), claimId: str('c-0'), state: str('released'), epoch: 2, at: 9, claimedAt: 8 } };
      d.held = { pool: str('ci'), claimId: str('c-0'), state: str('released'), epoch: 2, at: 9 };
    });
    expect(readPoolsDoc(doc)).toEqual({ claims: new Map([[member, { pool: 'ci', member, claimId: 'c-0', state: 'released', epoch: 2, at: 9, claimedAt: 8 }]]), held: { pool: 'ci', claimId: 'c-0', state: 'released', epoch: 2, at: 9 } });
  });

  it('leaves out records that do not parse, name another member or break the rules', () => {
    const doc = A.change(A.init<PoolsDocument>(), (d) => {
      d.schema = 2;
      d.claims = {
        [member]: new A.ImmutableString(JSON.stringify(record)),
        other: new A.ImmutableString(JSON.stringify(record)),
        broken: new A.ImmutableString('{"member": "broken"'),
        badState: new A.ImmutableString(JSON.stringify({ ...record, member: 'badState', state: 'stolen' })),
        huge: new A.ImmutableString(JSON.stringify({ ...record, member: 'huge', for: 'x'.repeat(10_000) })),
      };
      d.held = new A.ImmutableString('[]');
    });
    expect(readPoolsDoc(doc)).toEqual({ claims: new Map([[member, record]]) });
  });
});
