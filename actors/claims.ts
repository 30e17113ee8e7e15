import type { OwnerClaim, PromiseAnswer } from './promises.ts';

/** Why a claim is not (yet) promised by a majority, from the answers within a term. */
export interface ClaimObstacles {
  /** Nodes that members promised the singleton to instead, and whether each said it runs it. */
  readonly rivals: ReadonlyArray<{ readonly peer: string; readonly running: boolean }>;
  /** The highest epoch a member refused the claim for as stale (0 when none did). */
  readonly staleBelow: number;
}

/** No voter set replaced lately. */
export const NO_FORMER: readonly (readonly string[])[] = Object.freeze([]);

export interface ClaimsInit {
  readonly self: string;
  /** How long a grant counts, from when the round that asked for it was sent. */
  readonly termMs: number;
  /** The members whose promises count: the fleet's voters (actors/voters.ts), this node among them or not. */
  members(): readonly string[];
  /**
   * Optional: voter sets replaced within the last minute (docs/PLACEMENT.md §Voters, changes): a
   * majority of each must promise too, so a node that has not heard of the change yet and counts
   * the old set cannot hold a majority beside this one. The same array until it changes.
   */
  formerMembers?(): readonly (readonly string[])[];
  /** The time every `…Ms` and `sentAt` here is on (the lease's monotonic clock). */
  now(): number;
  /** A claim was made or given back: the members should hear of it at once. */
  changed(): void;
  /** A majority came to promise one of the claims. */
  promised(): void;
}

/**
 * The claimant's side of ownership promises (docs/PLACEMENT.md §Ownership promises): this node's
 * claims, the claims it gave back (told to the members for a term), and what each member,
 * this node included, answered to them, counted into "a majority promised it until …". The
 * quorum lease's rounds carry the claims and bring the answers.
 */
export class Claims {
  readonly #init: ClaimsInit;
  /** Singleton → the epoch claimed. */
  readonly #claims = new Map<string, number>();
  /** Claims given back, told to the members for a term after (a lost round must not keep them). */
  readonly #releases = new Map<string, { claim: OwnerClaim; untilMs: number }>();
  /** Per member (this node included), per singleton: the send time of its latest grant of the claim. */
  readonly #grants = new Map<string, Map<string, { epoch: number; sentAt: number }>>();
  /** Per singleton, per member: its latest refusal of the claim, with the send time. */
  readonly #refusals = new Map<string, Map<string, { answer: PromiseAnswer; sentAt: number }>>();
  /** Bumped with every change; with the member list's identity, keys the cached {@link Claims.promisedUntil}. */
  #version = 0;
  /**
   * Bumped with every change that can shorten a promise (a claim made or given back, everything
   * dropped). Answers taken in only lengthen them (a grant's send time only moves later), so a
   * cached promise from the same floor version is a lower bound: while it holds, the claim is
   * promised, with no count over the members for every answer of a round.
   */
  #floorVersion = 0;
  readonly #cache = new Map<string, { members: readonly string[]; former: readonly (readonly string[])[]; version: number; floorVersion: number; epoch: number; until: number }>();

  constructor(init: ClaimsInit) {
    this.#init = init;
  }

  /** Claims `name` at `epoch` (a claim at another epoch is given back); the members are asked at once. */
  claim(name: string, epoch: number): void {
    const previous = this.#claims.get(name);
    if (previous === epoch) return;
    if (previous !== undefined) this.#release(name, previous);
    this.#claims.set(name, epoch);
    this.#version++;
    this.#floorVersion++;
    this.#init.changed();
  }

  /** Gives `name`'s promises back: it is claimed no more, and the members are told at once. */
  unclaim(name: string): void {
    const epoch = this.#claims.get(name);
    if (epoch === undefined) return;
    this.#claims.delete(name);
    this.#release(name, epoch);
    this.#version++;
    this.#floorVersion++;
    this.#init.changed();
  }

  #release(name: string, epoch: number): void {
    for (const byName of this.#grants.values()) byName.delete(name);
    this.#refusals.delete(name);
    this.#releases.set(`${name}\u0000${epoch}`, { claim: { name, epoch }, untilMs: this.#init.now() + this.#init.termMs });
  }

  /** What a round sent at `nowMs` carries: the claims, and the releases still to be told. */
  forRound(nowMs: number): { claims: OwnerClaim[]; releases: OwnerClaim[] } {
    for (const [key, release] of this.#releases) if (release.untilMs <= nowMs) this.#releases.delete(key);
    return { claims: [...this.#claims].map(([name, epoch]) => ({ name, epoch })), releases: [...this.#releases.values()].map((r) => r.claim) };
  }

  /** Whether releases may still be due to the members (expired ones are dropped by the next {@link Claims.forRound}). */
  get releasing(): boolean {
    return this.#releases.size > 0;
  }

  /** Whether some claim has no majority's promise at `nowMs` (rounds then come sooner). */
  pending(nowMs: number): boolean {
    for (const [name, epoch] of this.#claims) if (!this.promised(name, epoch, nowMs)) return true;
    return false;
  }

  /** Drops every claim (the node stops) and returns the releases still to be told. */
  clear(nowMs: number): OwnerClaim[] {
    const { releases } = this.forRound(nowMs);
    this.#claims.clear();
    this.#releases.clear();
    this.#grants.clear();
    this.#refusals.clear();
    this.#version++;
    this.#floorVersion++;
    return releases;
  }

  /**
   * Until when a majority of the voters (this node included, if it votes) promised `name` at `epoch` to this
   * node: the send time of the round that the majority's last member answered, plus a term
   * (−∞ when no majority did, or `name` is not claimed at `epoch`). A member holds a promise for a
   * term from when it gave it, which is after it was asked, so it holds it at least this long.
   */
  promisedUntil(name: string, epoch: number): number {
    if (this.#claims.get(name) !== epoch) return Number.NEGATIVE_INFINITY;
    const members = this.#init.members();
    const former = this.#init.formerMembers?.() ?? NO_FORMER;
    const cached = this.#cache.get(name);
    if (cached !== undefined && cached.members === members && cached.former === former && cached.version === this.#version && cached.epoch === epoch) return cached.until;
    let until = this.#promisedBy(members, name, epoch);
    for (const set of former) until = Math.min(until, this.#promisedBy(set, name, epoch));
    this.#cache.set(name, { members, former, version: this.#version, floorVersion: this.#floorVersion, epoch, until });
    return until;
  }

  /** Until when a majority of `members` promised `name` at `epoch` (see {@link Claims.promisedUntil}). */
  #promisedBy(members: readonly string[], name: string, epoch: number): number {
    const { self } = this.#init;
    // A majority of the voters; this node's own promise counts only if it is one (with no member
    // list yet, its own alone, as the lease holds then).
    const voting = members.length === 0 || members.includes(self);
    const needed = Math.floor(members.length / 2) + 1;
    const sentTimes: number[] = [];
    const own = voting ? this.#grants.get(self)?.get(name) : undefined;
    if (own?.epoch === epoch) sentTimes.push(own.sentAt);
    for (const peer of members) {
      if (peer === self) continue;
      const grant = this.#grants.get(peer)?.get(name);
      if (grant?.epoch === epoch) sentTimes.push(grant.sentAt);
    }
    let until = Number.NEGATIVE_INFINITY;
    if (sentTimes.length >= needed) {
      sentTimes.sort((a, b) => b - a);
      until = sentTimes[needed - 1]! + this.#init.termMs;
    }
    return until;
  }

  /** Whether a majority promised `name` at `epoch` to this node at `nowMs`. */
  promised(name: string, epoch: number, nowMs = this.#init.now()): boolean {
    if (this.#claims.get(name) !== epoch) return false;
    const floor = this.#cache.get(name);
    if (floor !== undefined && floor.epoch === epoch && floor.floorVersion === this.#floorVersion && nowMs < floor.until && floor.members === this.#init.members() && floor.former === (this.#init.formerMembers?.() ?? NO_FORMER)) return true;
    return nowMs < this.promisedUntil(name, epoch);
  }

  /** What stands between the claim on `name` and a majority, by the refusals within a term. */
  obstacles(name: string, nowMs = this.#init.now()): ClaimObstacles {
    const rivals = new Map<string, boolean>();
    let staleBelow = 0;
    for (const refusal of this.#refusals.get(name)?.values() ?? []) {
      if (nowMs - refusal.sentAt >= this.#init.termMs) continue;
      const { answer } = refusal;
      if (answer.reason === 'promised' && answer.holder !== undefined && answer.holder !== this.#init.self) rivals.set(answer.holder, (rivals.get(answer.holder) ?? false) || answer.holderRunning === true);
      if (answer.reason === 'stale') staleBelow = Math.max(staleBelow, answer.highestEpoch ?? 0);
    }
    return { rivals: [...rivals].sort(([a], [b]) => (a < b ? -1 : 1)).map(([peer, running]) => ({ peer, running })), staleBelow };
  }

  /** Takes in `peer`'s answers to the claims of a round sent at `sentAt` (answers to claims given up since are dropped). */
  take(peer: string, sentAt: number, answers: readonly PromiseAnswer[]): void {
    const newlyPromised = answers.filter((a) => a.granted && this.#claims.get(a.name) === a.epoch && !this.promised(a.name, a.epoch));
    for (const answer of answers) {
      if (this.#claims.get(answer.name) !== answer.epoch) continue;
      if (answer.granted) {
        let byName = this.#grants.get(peer);
        if (byName === undefined) this.#grants.set(peer, (byName = new Map()));
        const grant = byName.get(answer.name);
        if (grant === undefined || grant.epoch !== answer.epoch || sentAt > grant.sentAt) byName.set(answer.name, { epoch: answer.epoch, sentAt });
      }
      let byPeer = this.#refusals.get(answer.name);
      if (byPeer === undefined) this.#refusals.set(answer.name, (byPeer = new Map()));
      const refusal = byPeer.get(peer);
      if (refusal !== undefined && refusal.sentAt > sentAt) continue;
      if (answer.granted) byPeer.delete(peer);
      else byPeer.set(peer, { answer, sentAt });
    }
    this.#version++;
    if (newlyPromised.some((a) => this.promised(a.name, a.epoch))) this.#init.promised();
  }
}
