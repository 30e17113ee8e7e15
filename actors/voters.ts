/**
 * The members whose answers count for the quorum lease and the ownership promises
 * (docs/PLACEMENT.md §Voters): every member in a fleet of up to `count`, and in a larger one the
 * `count` members admitted first (the founder first; ties by peer id). Any node may still own a
 * singleton; only the voters' majority is counted. A pure function of the member list, so every
 * node holding the same list counts over the same voters, and a node that joins a fleet which
 * already has `count` members changes no one's voters: the set moves only when a voter's
 * admission is revoked (or lost to another use of its token), a rare, signed operator decision.
 */
export function votersOf(members: ReadonlyArray<{ readonly peerId: string; readonly joinedAt: number }>, count: number): string[] {
  const chosen = members.length <= count ? members : [...members].sort((a, b) => a.joinedAt - b.joinedAt || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)).slice(0, Math.max(1, count));
  return chosen.map((m) => m.peerId).sort();
}

/**
 * {@link votersOf} kept for one member list: the same array comes back until the list (an
 * immutable array replaced when membership changes) does, which is what the lease's and the
 * claims' cached counts are keyed by.
 */
export class VoterSet {
  readonly #count: number;
  #of: object | undefined;
  #voters: readonly string[] = [];

  constructor(count: number) {
    if (!(count >= 1)) throw new RangeError(`voters must be at least 1 (got ${count})`);
    this.#count = count;
  }

  /** The voters of `members`. */
  of(members: ReadonlyArray<{ readonly peerId: string; readonly joinedAt: number }>): readonly string[] {
    if (this.#of !== members) {
      this.#of = members;
      this.#voters = votersOf(members, this.#count);
    }
    return this.#voters;
  }
}
