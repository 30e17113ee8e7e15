import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VoterSet, majoritiesMeet, votersOf } from '../../actors/index.ts';

const member = (peerId: string, joinedAt: number) => ({ peerId, joinedAt });

describe('voters', () => {
  it('are every member in a fleet of up to the count, sorted by peer id', () => {
    expect(votersOf([member('c', 3), member('a', 1), member('b', 2)], 3)).toEqual(['a', 'b', 'c']);
    expect(votersOf([member('c', 3), member('a', 1)], 15)).toEqual(['a', 'c']);
  });

  it('in a larger fleet are the members admitted first, ties by peer id', () => {
    const members = [member('f', 0), member('e', 5), member('d', 5), member('c', 7), member('b', 9), member('a', 9)];
    expect(votersOf(members, 3)).toEqual(['d', 'e', 'f']);
    expect(votersOf(members, 5)).toEqual(['a', 'c', 'd', 'e', 'f']);
  });

  it('do not move when a node joins a fleet that has its voters, and move by one when a voter is revoked', () => {
    const first = Array.from({ length: 20 }, (_, i) => member(`p${String(i).padStart(2, '0')}`, 1_000 + i));
    const before = votersOf(first, 15);
    expect(votersOf([...first, member('a-late', 5_000)], 15)).toEqual(before);
    const revoked = first.filter((m) => m.peerId !== 'p03');
    const after = votersOf(revoked, 15);
    expect(after.filter((p) => !before.includes(p))).toEqual(['p15']);
    expect(before.filter((p) => !after.includes(p))).toEqual(['p03']);
  });

  it('do not depend on the order the member list is in', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ peerId: fc.string({ minLength: 1, maxLength: 4 }), joinedAt: fc.integer({ min: 0, max: 5 }) }), { selector: (m) => m.peerId, maxLength: 30 }), fc.integer({ min: 1, max: 20 }), (members, count) => {
        const voters = votersOf(members, count);
        expect(votersOf([...members].reverse(), count)).toEqual(voters);
        expect(voters).toHaveLength(Math.min(count, members.length));
      }),
    );
  });

  it('are kept for one member list and worked out again for a new one', () => {
    const set = new VoterSet(2);
    const list = [member('a', 1), member('b', 2), member('c', 3)];
    const voters = set.of(list, 0);
    expect(set.of(list, 0)).toBe(voters);
    // A new list with the same voters gives the same array (the counts cached by it stay good).
    expect(set.of([...list, member('d', 4)], 0)).toBe(voters);
    expect(set.of([member('c', 0), ...list.slice(1)], 0)).toEqual(['b', 'c']);
    expect(() => new VoterSet(0)).toThrow(RangeError);
  });

  it('keep a replaced set as former for a minute after the change, and then drop it', () => {
    const set = new VoterSet(3, 60_000);
    const list = [member('a', 1), member('b', 2), member('c', 3), member('d', 4)];
    set.of(list, 1_000);
    expect(set.former(1_000)).toEqual([]);
    // c's admission is revoked: d becomes a voter, and a, b, c still count for a minute.
    expect(set.of(list.filter((m) => m.peerId !== 'c'), 5_000)).toEqual(['a', 'b', 'd']);
    const former = set.former(5_000);
    expect(former).toEqual([['a', 'b', 'c']]);
    expect(set.former(64_999)).toBe(former);
    expect(set.former(65_000)).toEqual([]);
  });

  it('keep no former set when one member joins or leaves: any two majorities still meet', () => {
    const set = new VoterSet(15, 60_000);
    const list = [member('a', 1)];
    set.of(list, 0);
    for (const [i, peer] of ['b', 'c', 'd', 'e'].entries()) set.of([...list, ...['b', 'c', 'd', 'e'].slice(0, i + 1).map((p, j) => member(p, j + 2))], 1_000 * (i + 1));
    expect(set.former(5_000)).toEqual([]);
    expect(majoritiesMeet(['a', 'b', 'c'], ['a', 'b', 'c', 'd'])).toBe(true);
    expect(majoritiesMeet(['a', 'b', 'c', 'd'], ['a', 'b', 'c'])).toBe(true);
    // One swapped for another: 2 of {a, b, c} and 2 of {a, b, d} can be {a, c} and {b, d}.
    expect(majoritiesMeet(['a', 'b', 'c'], ['a', 'b', 'd'])).toBe(false);
    // Two joined at once: 2 of {a, b, c} and 3 of {a, b, c, d, e} can be {a, b} and {c, d, e}.
    expect(majoritiesMeet(['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e'])).toBe(false);
  });

  it('keep no former set worked out from a member list that did not name this node (a joiner catching up)', () => {
    const everyone = ['a', 'b', 'c', 'd', 'e'].map((p, i) => member(p, i + 1));
    // The joiner e first holds the founder's admission alone, then the whole list: no former.
    const joiner = new VoterSet(15, 60_000, 'e');
    joiner.of(everyone.slice(0, 1), 0);
    expect(joiner.of(everyone, 100)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(joiner.former(200)).toEqual([]);
    // The founder, a member by both lists, sees the same jump as a change it was part of.
    const founder = new VoterSet(15, 60_000, 'a');
    founder.of(everyone.slice(0, 1), 0);
    founder.of(everyone, 100);
    expect(founder.former(200)).toEqual([['a']]);
    // Once the joiner is a member, a later change that needs the old set is kept as ever.
    const later = everyone.filter((m) => m.peerId !== 'b' && m.peerId !== 'c');
    joiner.of([...later, member('f', 9), member('g', 10)], 1_000);
    expect(joiner.former(1_000)).toEqual([['a', 'b', 'c', 'd', 'e']]);
    // A member whose list stopped naming it (its admission lost) and that comes back with a voter
    // swapped keeps the old set: other nodes may still count over it.
    const lost = new VoterSet(3, 60_000, 'e');
    lost.of(everyone, 0);
    lost.of(everyone.filter((m) => m.peerId !== 'e'), 100);
    const swapped = [member('a', 1), member('b', 2), member('d', 4), member('e', 5)];
    expect(lost.of(swapped, 200)).toEqual(['a', 'b', 'd']);
    expect(lost.former(300)).toEqual([['a', 'b', 'c']]);
  });

  it('agree with a search over every pair of majorities', () => {
    const majorities = (set: string[]): string[][] => {
      const need = Math.floor(set.length / 2) + 1;
      const out: string[][] = [];
      for (let mask = 0; mask < 1 << set.length; mask++) {
        const pick = set.filter((_, i) => (mask >> i) & 1);
        if (pick.length === need) out.push(pick);
      }
      return out;
    };
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), { minLength: 1 }), fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), { minLength: 1 }), (a, b) => {
        const meet = majorities(a).every((qa) => majorities(b).every((qb) => qa.some((p) => qb.includes(p))));
        expect(majoritiesMeet(a, b)).toBe(meet);
      }),
    );
  });
});
