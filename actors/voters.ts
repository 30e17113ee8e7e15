/**
 * The members whose answers count for the quorum lease and the ownership promises
 * (docs/PLACEMENT.md §Voters): every member in a fleet of up to `count`, and in a larger one the
 * `count` members admitted first (the founder first; ties by peer id). Any node may still own a
 * singleton; only the voters' majority is counted. A pure function of the member list, so every
 * node holding the same list counts over the same voters, and a node that joins a fleet which
 * already has `count` members usually changes no one's voters: the set moves when a voter's
 * admission is revoked (or lost to another use of its token), or when an admission's time (the
 * admitter's clock) precedes the last voter's. {@link VoterSet} keeps a replaced set counting
 * for a minute beside the new one when their majorities could miss each other.
 */
export function votersOf(members: ReadonlyArray<{ readonly peerId: string; readonly joinedAt: number }>, count: number): string[] {
  const chosen = members.length <= count ? members : [...members].sort((a, b) => a.joinedAt - b.joinedAt || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)).slice(0, Math.max(1, count));
  return chosen.map((m) => m.peerId).sort();
}

/**
 * Whether every majority of `a` shares a member with every majority of `b`: the two majorities
 * can stay apart only by taking what the other set lacks first, so they must meet when what
 * remains of each, after those, is more than the members the sets share.
 */
export function majoritiesMeet(a: readonly string[], b: readonly string[]): boolean {
  const inB = new Set(b);
  const shared = a.filter((peer) => inB.has(peer)).length;
  const needA = Math.floor(a.length / 2) + 1;
  const needB = Math.floor(b.length / 2) + 1;
  return Math.max(0, needA - (a.length - shared)) + Math.max(0, needB - (b.length - shared)) > shared;
}

/** How long a replaced voter set still counts beside the new one (docs/PLACEMENT.md §Voters, changes). */
export const VOTER_CHANGE_MS = 60_000;

/** At most this many replaced sets are kept (a burst of membership changes). */
const FORMER_KEPT = 16;

/**
 * {@link votersOf} kept for one member list: the same array comes back until the voters change
 * (not merely the list, an immutable array replaced when membership changes), which is what the
 * lease's and the claims' cached counts are keyed by. A set replaced within the last
 * `changeMs` is kept as {@link VoterSet.former}: while a change replicates, nodes that have it and
 * nodes that have not count over different sets, whose majorities need not overlap (15 voters
 * with one swapped: 8 + 8 of 16), so a node that has it needs a majority of the old set too.
 */
export class VoterSet {
  readonly #count: number;
  readonly #changeMs: number;
  readonly #self: string | undefined;
  #of: object | undefined;
  /** Whether any member list so far named this node (`self`): see {@link VoterSet.of}. */
  #everMember = false;
  #voters: readonly string[] = [];
  #former: Array<{ readonly voters: readonly string[]; readonly until: number }> = [];
  #formerView: readonly (readonly string[])[] = [];

  /**
   * `self`, this node's peer id: a set worked out before any member list named this node (a
   * joiner's fleet document still catching up) is never kept as former.
   */
  constructor(count: number, changeMs = VOTER_CHANGE_MS, self?: string) {
    if (!(count >= 1)) throw new RangeError(`voters must be at least 1 (got ${count})`);
    this.#count = count;
    this.#changeMs = changeMs;
    this.#self = self;
  }

  /** The voters of `members`; `nowMs` (a monotonic time) dates a change. */
  of(members: ReadonlyArray<{ readonly peerId: string; readonly joinedAt: number }>, nowMs: number): readonly string[] {
    if (this.#of === members) return this.#voters;
    this.#of = members;
    const wasMember = this.#everMember;
    if (!wasMember) this.#everMember = this.#self === undefined || members.some((m) => m.peerId === this.#self);
    const next = votersOf(members, this.#count);
    if (next.length === this.#voters.length && next.every((peer, i) => peer === this.#voters[i])) return this.#voters;
    // Kept only when a majority of the old set and one of the new could miss each other (a voter
    // swapped for another, say); one member added or removed leaves every two majorities sharing
    // a member, so a fleet growing one join at a time never needs the old set's majority as well.
    // And only once this node has been a member by some list: a joiner whose fleet document
    // arrives in pieces first sees the founder alone, then everyone — a jump from a list no member
    // holds any more, which kept the founder's answer needed for a minute after the join, so a
    // partition that cut the founder off left the joiner without a lease (the five-process
    // integration test failed ~1 run in 8 that way). A node that was a member and is not by the
    // old list (it lost its admission, and the sync that re-admits it also swaps a voter) keeps
    // the old set as ever: others may still count over it.
    if (this.#voters.length > 0 && wasMember && !majoritiesMeet(this.#voters, next)) {
      this.#former = [...this.#former, { voters: this.#voters, until: nowMs + this.#changeMs }].slice(-FORMER_KEPT);
      this.#formerView = this.#former.map((f) => f.voters);
    }
    this.#voters = next;
    return next;
  }

  /** Voter sets replaced within the last `changeMs` of `nowMs`, oldest first; the same array until one is added or expires. */
  former(nowMs: number): readonly (readonly string[])[] {
    if (this.#former.length > 0 && this.#former[0]!.until <= nowMs) {
      this.#former = this.#former.filter((f) => f.until > nowMs);
      this.#formerView = this.#former.map((f) => f.voters);
    }
    return this.#formerView;
  }
}
