import { type Clock, type TimerId, monotonicNow } from '../mesh/index.ts';
import { Claims, NO_FORMER } from './claims.ts';
import type { OwnerClaim, PromiseAnswer } from './promises.ts';

export interface LeaseConfig {
  /** How often the lease is renewed while wanted. */
  readonly renewMs: number;
  /** How long an acknowledgement counts, from when its request was sent. */
  readonly leaseMs: number;
  /** Members asked per round beyond the number needed (fleets larger than {@link LeaseConfig.askAllUpTo}). */
  readonly spare: number;
  /** Fleets up to this size ask every reachable member each round. */
  readonly askAllUpTo: number;
  /**
   * How many members vote: in a larger fleet the lease and the promises count a majority of the
   * members admitted first, this many (actors/voters.ts; `Infinity`: every member). Every node of
   * a fleet must use the same number.
   */
  readonly voters: number;
}

/** Defaults, with their reasons in docs/PLACEMENT.md §Placement and §Voters. */
export const DEFAULT_LEASE_CONFIG: LeaseConfig = { renewMs: 250, leaseMs: 1_000, spare: 16, askAllUpTo: 64, voters: 15 };

/** A singleton a node runs, as its lease rounds tell the members. */
export interface Holding {
  readonly name: string;
  readonly epoch: number;
}

/** What a lease round asks a member, and what it answers. */
export interface LeaseRequest {
  /** Peers the asker wants the member's view of (holders it may take over from). */
  readonly watch: readonly string[];
  /** What the asker runs now. */
  readonly holds: readonly Holding[];
  /** Singletons the asker runs or is about to activate, at which epoch: it asks the member to promise each (docs/PLACEMENT.md §Ownership promises). */
  readonly claims: readonly OwnerClaim[];
  /** Promises the asker gives back (it stopped, or gave up a claim). */
  readonly releases: readonly OwnerClaim[];
}

export interface LeaseAnswer {
  /** Which of the watched peers the member holds alive. */
  readonly alive: readonly string[];
  /** Who told the member, within a lease, that they run a singleton (the asker left out). */
  readonly holders: ReadonlyArray<Holding & { readonly peer: string; readonly agoMs: number }>;
  /** The newest epoch of each singleton the member knows of (records, orders, lease rounds). */
  readonly epochs: Readonly<Record<string, number>>;
  /** The member's answer to each of the request's claims. */
  readonly promises: readonly PromiseAnswer[];
}

/** How soon a round follows one that left a claim short of a majority. */
const CLAIM_RETRY_MS = 50;

/** The longest a persistently silent member waits before it is asked again. */
const RETRY_MAX_MS = 30_000;

export interface QuorumLeaseInit {
  readonly clock: Clock;
  readonly self: string;
  /**
   * The members whose answers count: the fleet's voters (actors/voters.ts), which this node may
   * or may not be one of. The same array until they change (counts are cached by it).
   */
  members(): readonly string[];
  /**
   * Optional: voter sets replaced within the last minute; the lease, the promises and the
   * handover agreement need a majority of each as well (docs/PLACEMENT.md §Voters, changes).
   * The same array until it changes.
   */
  formerMembers?(): readonly (readonly string[])[];
  /** Whether `peer` is worth asking (failure detection does not hold it dead or gone). */
  reachable(peer: string): boolean;
  /**
   * Optional: whether this node has heard from `peer` (directly or by gossip). Members never heard
   * from (not started yet, or gone before this node came up) are asked only when those heard from
   * are too few for a majority with spares; without it every reachable member counts as heard.
   */
  heard?(peer: string): boolean;
  /**
   * Optional, with {@link QuorumLeaseInit.heard}: whether a member never heard from may still
   * answer — its node document lists addresses it listens on. Only such members are asked when
   * those heard from are too few; one admitted but never started (no addresses) is not.
   */
  listed?(peer: string): boolean;
  /** Asks `peer` to acknowledge; resolves with its answer, or undefined when none came within `timeoutMs`. */
  ping(peer: string, request: LeaseRequest, timeoutMs: number): Promise<LeaseAnswer | undefined>;
  /** What this node runs now (told to the members with every round). */
  holding(): readonly Holding[];
  /** This node's own answer to its claims (it is one of the members whose promises count). */
  promiseLocally(claims: readonly OwnerClaim[], releases: readonly OwnerClaim[]): readonly PromiseAnswer[] | Promise<readonly PromiseAnswer[]>;
  /** Called when the lease became valid after not being valid. */
  onGained?(): void;
  /** Called when a majority came to promise one of this node's claims. */
  onPromised?(): void;
  readonly config?: Partial<LeaseConfig>;
}

/**
 * "This node sees a majority of the known members", as a lease: the node holds it while a
 * majority (itself included) acknowledged a request this node sent within the last `leaseMs`.
 * Counting from the send time makes the lease end no later than the partition that cuts the
 * node off from its majority, plus `leaseMs`: the bound a new owner waits out before it
 * activates what a dead owner held.
 */
export class QuorumLease {
  readonly #init: QuorumLeaseInit;
  readonly #config: LeaseConfig;
  /**
   * Per member: the send time of its latest acknowledged request (with what it was asked to
   * watch and which of those it held alive), and of its latest failed one.
   */
  readonly #acks = new Map<string, { ackedSentAt: number; failedAt: number; watched: ReadonlySet<string>; alive: ReadonlySet<string>; holders: LeaseAnswer['holders']; epochs: LeaseAnswer['epochs'] }>();
  #watch: string[] = [];
  /** Consecutive failed rounds per member, and when a persistently silent one is asked again. */
  readonly #failures = new Map<string, number>();
  readonly #retryAt = new Map<string, number>();
  /** Bumped with every answer; with the member list's identity, keys the cached {@link QuorumLease.validUntil}. */
  #version = 0;
  #cached: { members: readonly string[]; former: readonly (readonly string[])[]; version: number; until: number } | undefined;
  readonly #inFlight = new Set<string>();
  #timer: TimerId | undefined;
  #wanted = false;
  #wasValid = false;
  /** This node's claims on singletons, which every round carries (docs/PLACEMENT.md §Ownership promises). */
  readonly claims: Claims;

  constructor(init: QuorumLeaseInit) {
    this.#init = init;
    this.#config = { ...DEFAULT_LEASE_CONFIG, ...init.config };
    this.claims = new Claims({
      self: init.self,
      termMs: this.#config.leaseMs,
      members: () => init.members(),
      ...(init.formerMembers === undefined ? {} : { formerMembers: init.formerMembers }),
      now: () => this.now(),
      changed: () => this.#roundSoon(),
      promised: () => init.onPromised?.(),
    });
  }

  get config(): LeaseConfig {
    return this.#config;
  }

  /**
   * The lease's time, which every `nowMs` here is on: the clock's monotonic reading, so that a
   * step of the wall clock (NTP) neither lengthens a lease or a promise nor cuts one short.
   */
  now(): number {
    return monotonicNow(this.#init.clock);
  }

  /** Renews the lease while wanted (this node owns or is about to own a singleton). */
  want(wanted: boolean): void {
    if (wanted === this.#wanted) return;
    this.#wanted = wanted;
    if (wanted) this.#round();
    else if (!this.claims.releasing && this.#timer !== undefined) {
      this.#init.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /**
   * Stops the rounds. Claims given back shortly before (a graceful shutdown deactivates first) are
   * told to the members once more, so the next owner need not wait the term out; their answers
   * are not waited for (a member that does not hear it lets the promise lapse).
   */
  stop(): void {
    this.#wanted = false;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const releases = this.claims.clear(this.now());
    if (releases.length === 0) return;
    const request: LeaseRequest = { watch: [], holds: [], claims: [], releases };
    void Promise.resolve(this.#init.promiseLocally([], releases)).catch(() => undefined);
    for (const peer of this.#targets()) void this.#init.ping(peer, request, this.#config.renewMs).catch(() => undefined);
  }

  /**
   * Until when the lease holds (−∞ when it does not; +∞ in a fleet of one). Recomputed only when
   * an answer arrived or the member list changed since: it is read on every singleton step.
   */
  validUntil(): number {
    const members = this.#init.members();
    const former = this.#former();
    if (this.#cached !== undefined && this.#cached.members === members && this.#cached.former === former && this.#cached.version === this.#version) return this.#cached.until;
    let until = this.#computeValidUntil(members);
    for (const set of former) until = Math.min(until, this.#computeValidUntil(set));
    this.#cached = { members, former, version: this.#version, until };
    return until;
  }

  #former(): readonly (readonly string[])[] {
    return this.#init.formerMembers?.() ?? NO_FORMER;
  }

  /** How many of `members` other than this node make a majority of them with this node, if it is one of them. */
  #othersNeeded(members: readonly string[]): number {
    return Math.floor(members.length / 2) + 1 - (members.includes(this.#init.self) ? 1 : 0);
  }

  #computeValidUntil(members: readonly string[]): number {
    // A fleet of one, or no member list yet: nothing to ask.
    const needed = members.length === 0 ? 0 : this.#othersNeeded(members);
    if (needed === 0) return Number.POSITIVE_INFINITY;
    // Only members that ever answered can count; sorting those is enough.
    const sentTimes: number[] = [];
    for (const peer of members) {
      const at = peer === this.#init.self ? undefined : this.#acks.get(peer)?.ackedSentAt;
      if (at !== undefined && Number.isFinite(at)) sentTimes.push(at);
    }
    if (sentTimes.length < needed) return Number.NEGATIVE_INFINITY;
    sentTimes.sort((a, b) => b - a);
    return sentTimes[needed - 1]! + this.#config.leaseMs;
  }

  valid(nowMs = this.now()): boolean {
    return nowMs < this.validUntil();
  }

  /** Peers the next rounds ask the members about (holders of singletons this node may take over). */
  watch(peers: readonly string[]): void {
    // Placement says so at every evaluation, nearly always that it watches nobody: no new list then.
    if (peers.length === 0 && this.#watch.length === 0) return;
    this.#watch = [...peers].sort();
  }

  /**
   * Whether the members agree that `peer` is gone: members that answered, within the lease, a
   * round that asked about it and hold it gone form a majority together with this node, and
   * outnumber those that hold it alive. If so, the side `peer` is on is a minority and holds no
   * lease, so a node whose own view is stale (it was cut off and still holds everyone dead, and
   * the members it came back with do too) cannot take over from an owner the majority sees
   * alive. But a few members that have not heard of a death yet do not hold the handover off: in
   * a large fleet the last of the members asked learns of it by gossip seconds after most, and
   * while a handover is watched the rounds ask every reachable member, not a sample
   * (docs/PLACEMENT.md §Placement, Handover). The promises, not this check, keep two owners
   * from running at once.
   */
  quorumAgreesGone(peer: string, nowMs = this.now()): boolean {
    return this.#agreesGone(this.#init.members(), peer, nowMs) && this.#former().every((set) => this.#agreesGone(set, peer, nowMs));
  }

  #agreesGone(members: readonly string[], peer: string, nowMs: number): boolean {
    // With this node (if it votes), a majority of the voters.
    const needed = this.#othersNeeded(members);
    let gone = 0;
    let alive = 0;
    for (const other of members) {
      if (other === this.#init.self || other === peer) continue;
      const ack = this.#acks.get(other);
      if (ack === undefined || nowMs - ack.ackedSentAt >= this.#config.leaseMs || !ack.watched.has(peer)) continue;
      if (ack.alive.has(peer)) alive++;
      else gone++;
    }
    return gone >= needed && gone > alive;
  }

  /**
   * Other nodes that, by the answers to this node's rounds within a lease, run `name` now. Two
   * majorities share a member, so a node that runs a singleton under its own lease is reported
   * here by at least one member of any quorum this node holds, even when this node's records of
   * it are stale (it just restarted).
   */
  /** The newest epoch of `name` any member answering within a lease knows of (0 when none). */
  reportedEpoch(name: string, nowMs = this.now()): number {
    let epoch = 0;
    for (const ack of this.#acks.values()) {
      if (nowMs - ack.ackedSentAt < this.#config.leaseMs) epoch = Math.max(epoch, ack.epochs[name] ?? 0);
    }
    return epoch;
  }

  reportedHolders(name: string, nowMs = this.now()): Holding[] & Array<{ peer: string }> {
    const out: Array<Holding & { peer: string }> = [];
    for (const ack of this.#acks.values()) {
      if (nowMs - ack.ackedSentAt >= this.#config.leaseMs) continue;
      for (const holder of ack.holders) {
        if (holder.name !== name || holder.peer === this.#init.self || holder.agoMs >= this.#config.leaseMs) continue;
        if (!out.some((h) => h.peer === holder.peer && h.epoch === holder.epoch)) out.push({ peer: holder.peer, name: holder.name, epoch: holder.epoch });
      }
    }
    return out;
  }

  /** Starts a round at once (after the current step): a claim or release should not wait for the renewal timer. */
  #roundSoon(): void {
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timer = this.#init.clock.setTimeout(() => this.#round(), 0);
  }

  #round(): void {
    const { clock } = this.#init;
    this.#timer = undefined;
    const sentAt = this.now();
    const { claims, releases } = this.claims.forRound(sentAt);
    // Releases are told for a term even when nothing is wanted any more.
    if (!this.#wanted && releases.length === 0) return;
    // A claim no majority promised yet is on the failover path: members whose answer was lost are asked again soon.
    const pending = this.claims.pending(sentAt);
    this.#timer = clock.setTimeout(() => this.#round(), pending ? Math.min(CLAIM_RETRY_MS, this.#config.renewMs) : this.#config.renewMs);
    const watch = this.#watch;
    const request: LeaseRequest = { watch, holds: this.#init.holding(), claims, releases };
    if (claims.length > 0 || releases.length > 0) {
      const local = this.#init.promiseLocally(claims, releases);
      if (local instanceof Promise) local.then((answers) => this.claims.take(this.#init.self, sentAt, answers), () => {});
      else this.claims.take(this.#init.self, sentAt, local);
    }
    for (const peer of this.#targets()) {
      this.#inFlight.add(peer);
      this.#init.ping(peer, request, this.#config.renewMs * 2).then(
        (answer) => this.#answered(peer, sentAt, watch, answer),
        () => this.#answered(peer, sentAt, watch, undefined),
      );
    }
  }

  /**
   * Who to ask this round: everyone reachable in a small fleet; in a large one, the likeliest to
   * answer. In a large set, members never heard from are left out while those heard from are
   * enough for a majority with the spares; otherwise, and always in a small set such as the
   * voters, those heard from and those whose node documents list addresses are asked (a member
   * admitted but never started is not dialled at every round: that cost a 1,000-member fleet's
   * joiner 3 s). In a large fleet that has just started, a node hears of the others'
   * incarnations by gossip over a minute or more (at 1,000 nodes, a few hundred in the first
   * 20 s), and a lease that asked only those could never see a majority, so no singleton could
   * fail over (docs/PLACEMENT.md §Placement).
   */
  #targets(): string[] {
    const now = this.now();
    const current = this.#init.members();
    const former = this.#former();
    // Voters of a set replaced lately are asked too: a majority of each is needed.
    const members = former.length === 0 ? current : [...new Set([current, ...former].flat())];
    const needed = this.#othersNeeded(members);
    const { heard, listed } = this.#init;
    const reachable = members.filter((peer) => peer !== this.#init.self && this.#init.reachable(peer));
    // Whether those heard from are enough is judged before the members still in flight or backing
    // off are set aside (a claim's 50 ms rounds keep many in flight).
    const heardFrom = heard === undefined ? reachable : reachable.filter((peer) => heard(peer));
    const large = reachable.length > this.#config.askAllUpTo;
    // In a small set (the voters, at most `askAllUpTo`) every member heard from or listed is asked:
    // with only those heard from, exactly a majority of them at a large fleet's start (where a
    // node hears of others' incarnations over minutes), one missed answer would fail the round.
    const pool = large && heardFrom.length >= needed + this.#config.spare ? heardFrom : listed === undefined ? reachable : reachable.filter((peer) => heard!(peer) || listed(peer));
    const others = pool.filter((peer) => !this.#inFlight.has(peer) && (this.#retryAt.get(peer) ?? 0) <= now);
    // While a handover is watched, every voter is asked: the takeover needs a majority of the voters to hold the old owner gone.
    if (others.length <= this.#config.askAllUpTo || this.#watch.length > 0) return others;
    const rank = (peer: string): number => {
      const ack = this.#acks.get(peer);
      return ack === undefined ? 0 : ack.failedAt > ack.ackedSentAt ? -1 : ack.ackedSentAt;
    };
    return others.sort((a, b) => rank(b) - rank(a) || (a < b ? -1 : 1)).slice(0, needed + this.#config.spare);
  }

  /**
   * A member that failed three rounds in a row (dead, though failure detection may not say so
   * yet) is asked again after 1 s, doubling to 30 s, so a node does not spend its rounds on it;
   * one or two misses cost nothing.
   */
  #backOff(peer: string, answered: boolean): void {
    if (answered) {
      this.#failures.delete(peer);
      this.#retryAt.delete(peer);
      return;
    }
    const failures = (this.#failures.get(peer) ?? 0) + 1;
    if (this.#failures.size < 100_000) this.#failures.set(peer, failures);
    if (failures >= 3) this.#retryAt.set(peer, this.now() + Math.min(RETRY_MAX_MS, 1_000 * 2 ** (failures - 3)));
  }

  #answered(peer: string, sentAt: number, watched: readonly string[], answer: LeaseAnswer | undefined): void {
    this.#inFlight.delete(peer);
    const entry = this.#acks.get(peer) ?? { ackedSentAt: Number.NEGATIVE_INFINITY, failedAt: Number.NEGATIVE_INFINITY, watched: new Set<string>(), alive: new Set<string>(), holders: [], epochs: {} };
    if (answer !== undefined && sentAt >= entry.ackedSentAt) {
      entry.ackedSentAt = sentAt;
      entry.watched = new Set(watched);
      entry.alive = new Set(answer.alive.filter((p) => watched.includes(p)));
      entry.holders = answer.holders;
      entry.epochs = answer.epochs;
    } else if (answer === undefined) {
      entry.failedAt = Math.max(entry.failedAt, sentAt);
    }
    this.#backOff(peer, answer !== undefined);
    this.#acks.set(peer, entry);
    if (answer === undefined) return; // A miss never makes the lease valid; it may lapse, which readers see by time.
    this.claims.take(peer, sentAt, answer.promises);
    // An answer only moves a member's latest acknowledged round later, so with the same members
    // the lease lasts at least as long as before: one that holds now still holds, and is not
    // worked out again for every answer of a round (a large fleet's round has dozens).
    const before = this.#cached;
    this.#version++;
    const now = this.now();
    const valid = before !== undefined && before.members === this.#init.members() && before.former === this.#former() && now < before.until ? true : this.valid(now);
    if (valid && !this.#wasValid) this.#init.onGained?.();
    this.#wasValid = valid;
  }
}
