import type { ActivationRecord } from '../crdt-schema/index.ts';
import type { Clock, EventInput, Logger, MemberState, TimerId } from '../mesh/index.ts';
import { eventIdOf } from '../mesh/index.ts';
import type { ActorHost, ActorOptions, Behavior } from './host.ts';
import type { EpochFence } from './fence.ts';
import type { QuorumLease } from './lease.ts';
import { rendezvousOwner } from './rendezvous.ts';

/** Every member's activation records, by peer and then singleton name. */
export type RecordsView = ReadonlyMap<string, Readonly<Record<string, ActivationRecord>>>;

/** What a singleton's behaviour is built with: which activation it is. */
export interface SingletonContext {
  readonly name: string;
  readonly epoch: number;
  readonly owner: string;
  readonly since: number;
}

/** A member as placement sees it. */
export interface PlacementMember {
  readonly peerId: string;
  readonly name: string;
  readonly state: MemberState;
  /** When failure detection last changed its state (this node's clock). */
  readonly stateSince: number;
  /** When it last came up (first seen, or back from dead or left; a refuted suspicion does not count). */
  readonly upSince: number;
  readonly incarnation: number;
  readonly labels: Readonly<Record<string, string>>;
}

/** The message an observing singleton gets on activation, on every member change, and every few seconds. */
export interface MembersMessage {
  readonly type: 'members';
  readonly now: number;
  readonly members: readonly PlacementMember[];
}

/** A control-plane singleton, registered by name on every node. */
export interface SingletonSpec {
  readonly name: string;
  /** Members carrying this label (and value, if given) are eligible; every member when absent. */
  readonly eligible?: { readonly key: string; readonly value?: string };
  behavior(context: SingletonContext): Behavior<unknown, unknown>;
  readonly options?: ActorOptions;
  /** Told the members' states ({@link MembersMessage}): for sensors. */
  readonly observesMembers?: boolean;
}

export interface PlacementConfig {
  /** How often placement is evaluated where it runs, claims or would own a singleton (and sooner on changes). */
  readonly evaluateMs: number;
  /** The longest a node with no singleton in hand goes unevaluated when nothing pokes it. */
  readonly idleEvaluateMs: number;
  /** Beyond the lease, how long a new owner waits after the old one is seen dead. */
  readonly handoverMarginMs: number;
  /** Two activations seen this long at once are recorded as a duplicate. */
  readonly duplicateGraceMs: number;
  /** A singleton that failed past its restart budget skips its node this long. */
  readonly failedCooldownMs: number;
  /** Observing singletons are told the members at least this often. */
  readonly observeTickMs: number;
  /**
   * A member alive again (restarted, or back from a partition) takes over a singleton from a
   * running owner only after being alive this long, so views that converge after a heal move
   * each singleton once, not once per change.
   */
  readonly stableMs: number;
  /**
   * A claim that no majority promised within this long is given up (its promises released) and
   * tried again after {@link PlacementConfig.claimBackoffMs}: two claimants that split the
   * members between them, or one that only a minority answers, must not hold the others off.
   */
  readonly claimTimeoutMs: number;
  /** How long a node that gave up a claim, or yielded it to a rival, waits before it claims again. */
  readonly claimBackoffMs: number;
  /**
   * Test-only fault: ignore the quorum lease and the handover wait, so two owners can run at once
   * (the simulator uses it to show that its safety invariant catches exactly that). Never set it
   * on a real node.
   */
  readonly unsafeIgnoreQuorum: boolean;
}

/** No members to watch (an evaluation with nothing to watch passes this rather than a new empty array). */
const NOBODY: readonly string[] = [];

/** Pokes closer together than this share one evaluation. */
const POKE_COALESCE_MS = 50;

export const DEFAULT_PLACEMENT_CONFIG: PlacementConfig = { evaluateMs: 100, idleEvaluateMs: 5_000, handoverMarginMs: 250, duplicateGraceMs: 2_000, failedCooldownMs: 60_000, observeTickMs: 5_000, stableMs: 3_000, claimTimeoutMs: 2_000, claimBackoffMs: 1_000, unsafeIgnoreQuorum: false };

export interface PlacementInit {
  readonly clock: Clock;
  readonly log: Logger;
  readonly self: string;
  readonly host: ActorHost;
  readonly lease: QuorumLease;
  readonly fence: EpochFence;
  /** Members with their states and labels (this node included, as alive). */
  members(): readonly PlacementMember[];
  /**
   * Optional: a number that changes whenever what choosing owners reads of the members (who,
   * states, since when, labels) changes, so an owner worked out for a member list equal in that
   * is kept when only incarnations moved. Without it, any new member list counts as a change.
   */
  membersShape?(): number;
  /** One member's state, as failure detection sees it (cheaper than {@link PlacementInit.members}). */
  stateOf(peer: string): MemberState | undefined;
  /** Every member's activation records, by peer and singleton name (this node's included). */
  records(): RecordsView;
  /** Writes this node's record of a singleton (durably, in its own sealed document). */
  write(name: string, record: ActivationRecord): Promise<void>;
  /** Records a fleet event (duplicate activations). */
  emit(event: EventInput): Promise<unknown>;
  /**
   * Optional: the members that told this node, within a lease, that they run `name` (their lease
   * rounds), with the epoch each named. Without it, only the records count.
   */
  announcedHolders?(name: string): ReadonlyMap<string, number>;
  /**
   * Optional: whether this node watches for duplicate activations (default: yes). Only voters do
   * (docs/PLACEMENT.md §Placement, Duplicate activations): one of them hears the lease rounds of
   * any two nodes that both run a singleton, and in a large fleet a thousand detectors wrote a
   * thousand event documents for one duplicate.
   */
  detectsDuplicates?(): boolean;
  readonly config?: Partial<PlacementConfig>;
}

interface Activation {
  readonly epoch: number;
  readonly since: number;
  /** False while its record is being written. */
  running: boolean;
}

/** A claim on a singleton this node is about to own, waiting for a majority's promises. */
interface Claim {
  readonly epoch: number;
  /** When it was made, on the lease's clock ({@link QuorumLease.now}). */
  readonly sinceMs: number;
}

/** The actor name a singleton runs under on its owner. */
export const singletonActorName = (name: string): string => `singleton/${name}`;

/**
 * Places control-plane singletons (docs/PLACEMENT.md §Placement): each runs on the rendezvous
 * owner among alive, eligible members, and only while that node holds a quorum lease and a
 * majority's promise of it (§Ownership promises). A would-be owner claims the next epoch; once a
 * majority promised it, the activation is recorded in the owner's sealed document before the
 * actor starts. A new owner waits until the previous one recorded its stop, or was seen dead for
 * longer than a lease. Two activations alive at once are recorded as a fleet event.
 */
export class Placement {
  readonly #init: PlacementInit;
  readonly #config: PlacementConfig;
  readonly #specs = new Map<string, SingletonSpec>();
  readonly #active = new Map<string, Activation>();
  readonly #claims = new Map<string, Claim>();
  /**
   * Stops whose record could not be written (a storage error): written again at each evaluation
   * until one succeeds, or until this node activates the singleton again (whose record supersedes
   * it). Left unwritten, the record would say for ever that this node runs what it stopped.
   */
  readonly #unrecordedStops = new Map<string, { readonly record: ActivationRecord; writing: boolean }>();
  /** The highest epoch this node claimed of each singleton: it never claims one it gave back (a late release could cancel it). */
  readonly #lastClaimed = new Map<string, number>();
  /** Until when (the lease's clock) this node does not claim a singleton again, after giving a claim up. */
  readonly #backoffUntil = new Map<string, number>();
  readonly #duplicates = new Map<string, number>();
  #failedUntil = new Map<string, number>();
  /** Each singleton's owner as last worked out, with its inputs and the time window it holds over ({@link Placement.#owner}). */
  readonly #owners = new Map<string, { members: readonly PlacementMember[]; shape: number | undefined; records: RecordsView; ownFailedUntil: number; from: number; until: number; owner: string | undefined }>();
  #observedRecords: RecordsView | undefined;
  /** The inputs of the last duplicate check that found no singleton held twice. */
  #noDuplicatesIn: { members: readonly PlacementMember[]; shape: number | undefined; records: RecordsView } | undefined;
  #timer: TimerId | undefined;
  #timerDueMs = Number.POSITIVE_INFINITY;
  /** Whether the last evaluation found anything that changes with time alone ({@link Placement.#nextDelay}). */
  #busy = true;
  #membersDirty = false;
  #lastObserveTick = 0;
  #stopped = true;

  constructor(init: PlacementInit) {
    this.#init = init;
    this.#config = { ...DEFAULT_PLACEMENT_CONFIG, ...init.config };
  }

  register(spec: SingletonSpec): void {
    if (this.#specs.has(spec.name)) throw new Error(`a singleton named ${spec.name} is already registered`);
    this.#specs.set(spec.name, spec);
  }

  /**
   * Starts evaluating. Records this node left active from an earlier run (it crashed) are
   * closed first: nothing of that run is running now.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    const own = this.#init.records().get(this.#init.self) ?? {};
    for (const [name, record] of Object.entries(own)) {
      if (record.active) await this.#init.write(name, { ...record, active: false, until: this.#init.clock.now(), reason: 'the node restarted' });
    }
    this.#schedule(0);
  }

  /** Stops every singleton running here and records that (a graceful shutdown hands over at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    for (const name of this.#claims.keys()) this.#init.lease.claims.unclaim(name);
    this.#claims.clear();
    // Each deactivation gives its promises back at once (a round starts while the stops are recorded).
    await Promise.all([...this.#active.keys()].map((name) => this.#deactivate(name, 'the node is shutting down')));
    this.#init.lease.stop();
  }

  /**
   * Evaluates soon (membership, labels or records changed; the lease was gained). Pokes within
   * {@link POKE_COALESCE_MS} share one evaluation: a joining node takes in a thousand documents
   * in a second, and each would otherwise cost a pass over every member.
   */
  poke(): void {
    if (this.#stopped || this.#timerDueMs <= this.#init.clock.now() + POKE_COALESCE_MS) return;
    this.#schedule(POKE_COALESCE_MS);
  }

  /** A majority just promised one of this node's claims: evaluates at once (this is on the failover path, and rare). */
  promised(): void {
    if (this.#stopped || this.#timerDueMs <= this.#init.clock.now()) return;
    this.#schedule(0);
  }

  /** A singleton's actor failed past its restart budget: it stops here and skips this node for a while. */
  failed(actorName: string): void {
    const name = [...this.#specs.keys()].find((n) => singletonActorName(n) === actorName);
    if (name === undefined || !this.#active.has(name)) return;
    const until = this.#init.clock.now() + this.#config.failedCooldownMs;
    this.#failedUntil.set(name, until);
    void this.#deactivate(name, 'it failed past its restart budget', until);
  }

  /** Whether this node runs `name` now (its record written, its lease valid, its epoch promised by a majority). */
  isActive(name: string): boolean {
    const active = this.#active.get(name);
    return active?.running === true && this.#holds(name, active.epoch);
  }

  #leaseValid(): boolean {
    return this.#config.unsafeIgnoreQuorum || this.#init.lease.valid();
  }

  /** Whether this node may run `name` at `epoch` now: it sees a majority, and a majority promised it the epoch. */
  #holds(name: string, epoch: number): boolean {
    return this.#config.unsafeIgnoreQuorum || (this.#init.lease.valid() && this.#init.lease.claims.promised(name, epoch));
  }

  /** What this node runs now, for its lease rounds to tell the members. */
  holding(): Array<{ name: string; epoch: number }> {
    return [...this.#active].filter(([, a]) => a.running).map(([name, a]) => ({ name, epoch: a.epoch }));
  }

  /** The activation `name` runs under here, if it runs here. */
  activation(name: string): { epoch: number; since: number } | undefined {
    const active = this.#active.get(name);
    return active?.running === true ? { epoch: active.epoch, since: active.since } : undefined;
  }

  /** Each registered singleton as the records show it: the newest activation, and whether it runs. */
  view(): Array<{ name: string; owner: string | null; epoch: number; since: number | null; active: boolean; ownerState: MemberState | null }> {
    const records = this.#init.records();
    return [...this.#specs.keys()].sort().map((name) => {
      let newest: { owner: string; record: ActivationRecord } | undefined;
      for (const [owner, byName] of records) {
        const record = byName[name];
        if (record === undefined) continue;
        if (newest === undefined || record.epoch > newest.record.epoch || (record.epoch === newest.record.epoch && owner > newest.owner)) newest = { owner, record };
      }
      if (newest === undefined) return { name, owner: null, epoch: 0, since: null, active: false, ownerState: null };
      return { name, owner: newest.owner, epoch: newest.record.epoch, since: newest.record.since, active: newest.record.active, ownerState: newest.owner === this.#init.self ? 'alive' : (this.#init.stateOf(newest.owner) ?? null) };
    });
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timerDueMs = this.#init.clock.now() + delayMs;
    this.#timer = this.#init.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerDueMs = Number.POSITIVE_INFINITY;
      try {
        this.#evaluate();
      } catch (error) {
        this.#init.log.error('evaluating placement failed', { error: String(error) });
      }
      if (!this.#stopped) this.#schedule(this.#nextDelay());
    }, delayMs);
  }

  /**
   * When to evaluate next, unpoked. A node that runs, claims or would own a singleton, waits out
   * a handover, or has a duplicate under watch evaluates every `evaluateMs`: leases, promises and
   * handover waits lapse with time, and answers to the lease's rounds do not poke. Any other node
   * waits for a poke (members, labels or records changed) or for the next instant at which an
   * owner it worked out could turn out otherwise (a member's cooldown ends, or it has been up
   * long enough to count as stable), and at the latest `idleEvaluateMs`. In a 100-node fleet
   * that is a tenth of the evaluations (docs/PLACEMENT.md §Placement).
   */
  #nextDelay(): number {
    const { evaluateMs, idleEvaluateMs } = this.#config;
    if (this.#busy) return evaluateMs;
    const now = this.#init.clock.now();
    let due = now + idleEvaluateMs;
    for (const cached of this.#owners.values()) if (cached.until > now) due = Math.min(due, cached.until);
    return Math.max(evaluateMs, due - now);
  }

  #evaluate(): void {
    const now = this.#init.clock.now();
    if (this.#unrecordedStops.size > 0) this.#recordStopsAgain();
    const members = this.#init.members();
    // Read once per evaluation: each singleton's owner and the duplicate check compare it, and
    // asking again rebuilt nothing but checked the members' cache each time (a thousand idle
    // evaluations a second in a 1,000-node fleet). Nothing below changes it synchronously.
    const shape = this.#init.membersShape?.();
    const records = this.#init.records();
    // The same records (the control plane hands back the same map until a document changes)
    // were observed already: the fence keeps the newest stamp, so observing again changes nothing.
    if (records !== this.#observedRecords) {
      for (const [peer, byName] of records) for (const [name, record] of Object.entries(byName)) this.#init.fence.observe(name, { epoch: record.epoch, owner: peer });
      this.#observedRecords = records;
    }
    let wanted = false;
    const watch = new Set<string>();
    for (const spec of this.#specs.values()) {
      const owner = this.#owner(spec, members, shape, records, now);
      const active = this.#active.get(spec.name);
      if (owner === this.#init.self || active !== undefined || this.#claims.has(spec.name)) wanted = true;
      if (active !== undefined) {
        if (!active.running) continue;
        if (owner !== this.#init.self) void this.#deactivate(spec.name, `${owner ?? 'no member'} is its owner now`);
        else if (!this.#leaseValid()) void this.#deactivate(spec.name, 'this node lost its quorum lease (it sees no majority of the members)');
        else if (!this.#holds(spec.name, active.epoch)) void this.#deactivate(spec.name, "the members' promises of its epoch lapsed (no majority renewed them within a term)");
        continue;
      }
      const mayTake = owner === this.#init.self && this.#leaseValid() && (this.#config.unsafeIgnoreQuorum || this.#handoverClear(spec.name, members, records, now, watch));
      if (mayTake && this.#config.unsafeIgnoreQuorum) void this.#activate(spec, this.#nextEpoch(spec.name, records));
      else if (this.#claims.has(spec.name)) this.#pursue(spec, owner, mayTake, records);
      else if (mayTake && (this.#backoffUntil.get(spec.name) ?? 0) <= this.#init.lease.now()) this.#claim(spec.name, records);
    }
    this.#init.lease.watch(watch.size === 0 ? NOBODY : [...watch]);
    this.#init.lease.want(wanted);
    this.#checkDuplicates(members, shape, records, now);
    this.#busy = wanted || watch.size > 0 || this.#duplicateWatched() || this.#unrecordedStops.size > 0;
    if (this.#membersDirty || now - this.#lastObserveTick >= this.#config.observeTickMs) this.#tellObservers();
  }

  /** Members' states changed: observers are told at the next evaluation (changes coalesce). */
  membersChanged(): void {
    this.#membersDirty = true;
    this.poke();
  }

  /** Tells running observers the members now. */
  #tellObservers(): void {
    this.#membersDirty = false;
    const now = this.#init.clock.now();
    this.#lastObserveTick = now;
    let message: MembersMessage | undefined;
    for (const spec of this.#specs.values()) {
      if (spec.observesMembers !== true || this.#active.get(spec.name)?.running !== true) continue;
      message ??= { type: 'members', now, members: this.#init.members() };
      this.#init.host.tell(singletonActorName(spec.name), message);
    }
  }

  /**
   * The rendezvous owner of `spec` among its candidates now. Placement asks ten times a second
   * and the answer is a function of the members, the records, this node's own cooldown and the
   * time; so it is kept with those inputs and the window of time over which it cannot change
   * (from when it was worked out until the next member's cooldown ends or it has been alive long
   * enough to count as stable), and worked out again only outside it or when an input changed.
   */
  #owner(spec: SingletonSpec, members: readonly PlacementMember[], shape: number | undefined, records: RecordsView, now: number): string | undefined {
    const ownFailedUntil = this.#failedUntil.get(spec.name) ?? 0;
    const cached = this.#owners.get(spec.name);
    if (cached !== undefined && (shape === undefined ? cached.members === members : cached.shape === shape) && cached.records === records && cached.ownFailedUntil === ownFailedUntil && cached.from <= now && now < cached.until) return cached.owner;
    const window = { until: Number.POSITIVE_INFINITY };
    const owner = rendezvousOwner(spec.name, this.#candidates(spec, members, records, now, window));
    this.#owners.set(spec.name, { members, shape, records, ownFailedUntil, from: now, until: window.until, owner });
    return owner;
  }

  /**
   * The members that may own `spec` now. `window.until` is lowered to the earliest time after
   * `now` at which one of the time-dependent tests below could turn out otherwise (each turns from
   * false to true as time goes on, so the answer holds from `now` until then).
   */
  #candidates(spec: SingletonSpec, members: readonly PlacementMember[], records: RecordsView, now: number, window: { until: number }): string[] {
    const eligible = members
      .filter((m) => m.state === 'alive' || m.state === 'suspect' || m.peerId === this.#init.self)
      .filter((m) => spec.eligible === undefined || (spec.eligible.value === undefined ? m.labels[spec.eligible.key] !== undefined : m.labels[spec.eligible.key] === spec.eligible.value))
      .filter((m) => {
        const failedUntil = m.peerId === this.#init.self ? (this.#failedUntil.get(spec.name) ?? 0) : (records.get(m.peerId)?.[spec.name]?.failedUntil ?? 0);
        if (failedUntil <= now) return true;
        window.until = Math.min(window.until, failedUntil);
        return false;
      });
    // Members alive again only recently wait, unless they already hold it or nobody else can.
    const { stableMs } = this.#config;
    const stable = eligible.filter((m) => {
      // Up for a while, not merely unsuspected for a while: a suspicion it refuted (many a minute
      // on a loaded machine) does not make a member wait again, nor move a singleton off it.
      if (now - m.upSince >= stableMs || records.get(m.peerId)?.[spec.name]?.active === true) return true;
      // Checked again from a little before it turns stable (so rounding never keeps it out past then).
      window.until = Math.min(window.until, m.upSince + stableMs - 1);
      return false;
    });
    return (stable.length > 0 ? stable : eligible).map((m) => m.peerId);
  }

  /**
   * Whether no other node may still run `name`: each one whose record says it runs it has
   * recorded its stop, or has been dead (or gone) for longer than a lease lasts, as a majority
   * of the members agrees (their answers to the lease's rounds, which `watch` asks about).
   */
  #handoverClear(name: string, members: readonly PlacementMember[], records: RecordsView, now: number, watch: Set<string>): boolean {
    const byPeer = new Map(members.map((m) => [m.peerId, m]));
    const waitMs = this.#init.lease.config.leaseMs + this.#config.handoverMarginMs;
    // Another node runs it by the members' word (its lease rounds), unless its record says it stopped since.
    for (const holder of this.#init.lease.reportedHolders(name)) {
      const record = records.get(holder.peer)?.[name];
      if (record === undefined || record.active || record.epoch < holder.epoch) return false;
    }
    let clear = true;
    for (const [peer, byName] of records) {
      if (peer === this.#init.self || byName[name]?.active !== true) continue;
      const member = byPeer.get(peer);
      if (member === undefined) continue; // No longer a member (revoked): cut off, and fenced.
      if (member.state === 'alive' || member.state === 'suspect') return false;
      watch.add(peer);
      if (now - member.stateSince < waitMs || !this.#init.lease.quorumAgreesGone(peer)) clear = false;
    }
    return clear;
  }

  /** The epoch a new activation of `name` takes: above every one this node knows of, from records, the members and orders. */
  #nextEpoch(name: string, records: RecordsView): number {
    let epoch = 1;
    for (const byName of records.values()) epoch = Math.max(epoch, (byName[name]?.epoch ?? 0) + 1);
    // Epochs the members reported, in case this node's records lag (it just restarted).
    for (const holder of this.#init.lease.reportedHolders(name)) epoch = Math.max(epoch, holder.epoch + 1);
    return Math.max(epoch, this.#init.lease.reportedEpoch(name) + 1, (this.#init.fence.newest(name)?.epoch ?? 0) + 1, (this.#lastClaimed.get(name) ?? 0) + 1);
  }

  /** Claims `name` at the next epoch (above `staleBelow`): the lease's rounds ask the members to promise it. */
  #claim(name: string, records: RecordsView, staleBelow = 0): void {
    const epoch = Math.max(this.#nextEpoch(name, records), staleBelow + 1);
    this.#lastClaimed.set(name, epoch);
    this.#claims.set(name, { epoch, sinceMs: this.#init.lease.now() });
    this.#init.lease.claims.claim(name, epoch);
  }

  /**
   * A claim under way: activates once a majority promised it (and this node may take the
   * singleton now); gives it up when another node is the owner now, when a rival that runs it or
   * ranks higher holds members' promises (two would-be owners that split the members must not
   * wait each other out), or when no majority promised it in time; claims a higher epoch when
   * members refused this one as stale. While this node is the owner but may not take it yet (its
   * lease or the handover check wavered, as they do on a starved machine) the claim is kept, so
   * that the epoch it activates is the one it claimed.
   */
  #pursue(spec: SingletonSpec, owner: string | undefined, mayTake: boolean, records: RecordsView): void {
    const { name } = spec;
    const claim = this.#claims.get(name)!;
    const now = this.#init.lease.now();
    if (owner !== this.#init.self) return this.#withdraw(name, now, false, `${owner ?? 'no member'} is its owner now`);
    if (mayTake && this.#init.lease.claims.promised(name, claim.epoch)) {
      this.#claims.delete(name);
      void this.#activate(spec, claim.epoch);
      return;
    }
    const { rivals, staleBelow } = this.#init.lease.claims.obstacles(name);
    // A rival this node holds dead (an owner that just crashed) is not yielded to: its promises lapse within a term.
    const rival = rivals.find((r) => this.#seemsAlive(r.peer) && (r.running || rendezvousOwner(name, [this.#init.self, r.peer]) === r.peer));
    if (rival !== undefined) return this.#withdraw(name, now, true, `members promised it to ${rival.peer}, which ${rival.running ? 'runs it' : 'ranks higher'}`);
    if (now - claim.sinceMs >= this.#config.claimTimeoutMs) return this.#withdraw(name, now, true, `no majority promised epoch ${claim.epoch} within ${this.#config.claimTimeoutMs} ms`);
    if (mayTake && staleBelow >= claim.epoch) this.#claim(name, records, staleBelow);
  }

  #seemsAlive(peer: string): boolean {
    const state = this.#init.stateOf(peer);
    return state === 'alive' || state === 'suspect';
  }

  #withdraw(name: string, now: number, backOff: boolean, why: string): void {
    const claim = this.#claims.get(name);
    this.#claims.delete(name);
    this.#init.lease.claims.unclaim(name);
    if (backOff) this.#backoffUntil.set(name, now + this.#config.claimBackoffMs);
    this.#init.log.info('gave up a claim on a singleton', { singleton: name, epoch: claim?.epoch, why });
  }

  async #activate(spec: SingletonSpec, epoch: number): Promise<void> {
    const { clock, log, host, self } = this.#init;
    const since = clock.now();
    const activation: Activation = { epoch, since, running: false };
    this.#active.set(spec.name, activation);
    this.#unrecordedStops.delete(spec.name);
    try {
      await this.#init.write(spec.name, { epoch, since, active: true });
    } catch (error) {
      this.#active.delete(spec.name);
      this.#init.lease.claims.unclaim(spec.name);
      log.error('recording a singleton activation failed; not starting it', { singleton: spec.name, error: String(error) });
      return;
    }
    if (this.#active.get(spec.name) !== activation) return;
    this.#init.fence.observe(spec.name, { epoch, owner: self });
    const inner = spec.behavior({ name: spec.name, epoch, owner: self, since });
    host.spawn(singletonActorName(spec.name), this.#gated(inner, spec.name, epoch), spec.options ?? {});
    activation.running = true;
    log.info('activated a singleton', { singleton: spec.name, epoch });
    if (spec.observesMembers === true) host.tell(singletonActorName(spec.name), { type: 'members', now: clock.now(), members: this.#init.members() } satisfies MembersMessage);
  }

  /** A behaviour whose effects are dropped once the lease has lapsed: a stale owner issues nothing. */
  #gated(inner: Behavior<unknown, unknown>, name: string, epoch: number): Behavior<unknown, unknown> {
    return {
      initial: () => inner.initial(),
      step: (state, message) => {
        const result = inner.step(state, message);
        if (this.#holds(name, epoch)) return result;
        // Its state would now expect what the dropped effects were to bring (answers, its next
        // tick), which never comes: were the lease back before the next evaluation, it would run
        // on stalled for ever. So it starts over from its initial state, as after a crash, and is
        // told the members at the next evaluation (which stops it if the lease is still gone).
        this.#init.log.warn('a singleton acted after its lease lapsed; its effects are dropped and it starts over', { singleton: name });
        this.#membersDirty = true;
        this.poke();
        return { state: inner.initial() };
      },
    };
  }

  async #deactivate(name: string, reason: string, failedUntil?: number): Promise<void> {
    const active = this.#active.get(name);
    if (active === undefined) return;
    this.#active.delete(name);
    this.#init.host.stop(singletonActorName(name));
    // Stopped: its promises go back to the members at once, so the next owner need not wait them out.
    this.#init.lease.claims.unclaim(name);
    this.#init.log.info('deactivated a singleton', { singleton: name, epoch: active.epoch, reason });
    const record: ActivationRecord = { epoch: active.epoch, since: active.since, active: false, until: this.#init.clock.now(), reason, ...(failedUntil === undefined ? {} : { failedUntil }) };
    try {
      await this.#init.write(name, record);
    } catch (error) {
      this.#init.log.error('recording a singleton deactivation failed; writing it again at the next evaluation', { singleton: name, error: String(error) });
      if (!this.#active.has(name)) this.#unrecordedStops.set(name, { record, writing: false });
    }
    this.poke();
  }

  /** Writes again each stop whose record could not be written (one write at a time each). */
  #recordStopsAgain(): void {
    for (const [name, stop] of this.#unrecordedStops) {
      if (stop.writing) continue;
      stop.writing = true;
      this.#init.write(name, stop.record).then(
        () => {
          if (this.#unrecordedStops.get(name) === stop) this.#unrecordedStops.delete(name);
          this.#init.log.info('recorded a singleton deactivation after an earlier failure', { singleton: name, epoch: stop.record.epoch });
        },
        (error: unknown) => {
          stop.writing = false;
          this.#init.log.error('recording a singleton deactivation failed again', { singleton: name, error: String(error) });
        },
      );
    }
  }

  /** Whether a duplicate activation is being timed against its grace (one already reported is not). */
  #duplicateWatched(): boolean {
    for (const firstSeen of this.#duplicates.values()) if (firstSeen >= 0) return true;
    return false;
  }

  /** Two live members whose records both run a singleton, for longer than the grace: a fleet event. */
  #checkDuplicates(members: readonly PlacementMember[], shape: number | undefined, records: RecordsView, now: number): void {
    // Nothing held twice in these very inputs last time, and nothing pending: nothing can be now.
    // The members' shape (who, states, since when, labels) stands for the members where the host
    // keeps it: which of them are live is all this reads of them, and a new incarnation alone
    // (a thousand at a large fleet's start) gives a new members array but the same shape.
    const before = this.#noDuplicatesIn;
    if (this.#duplicates.size === 0 && before !== undefined && (shape === undefined ? before.members === members : before.shape === shape) && before.records === records) return;
    this.#noDuplicatesIn = undefined;
    if (this.#init.detectsDuplicates?.() === false) {
      this.#duplicates.clear();
      this.#noDuplicatesIn = { members, shape, records };
      return;
    }
    const live = new Set(members.filter((m) => m.state === 'alive' || m.state === 'suspect' || m.peerId === this.#init.self).map((m) => m.peerId));
    const seen = new Set<string>();
    let recordedTwice = false;
    for (const name of this.#specs.keys()) {
      const recorded = [...records].filter(([peer, byName]) => live.has(peer) && byName[name]?.active === true).map(([peer, byName]) => ({ peer, epoch: byName[name]!.epoch }));
      if (recorded.length < 2) continue;
      recordedTwice = true;
      // A record below the newest epoch counts only while its holder shows it still runs it (its
      // lease rounds say so, or it is this node): an owner that died leaves its record active, and
      // in a large fleet some members hold it alive for seconds after its successor's record
      // reached them — that is a failover, not a duplicate. Two records of one epoch always count.
      const newest = Math.max(...recorded.map((r) => r.epoch));
      const announced = this.#init.announcedHolders?.(name);
      const holders = recorded
        .filter((r) => r.epoch === newest || (r.peer === this.#init.self ? this.isActive(name) : announced === undefined || announced.has(r.peer)))
        .map((r) => `${r.peer}:${r.epoch}`)
        .sort();
      if (holders.length < 2) continue;
      const key = `${name}|${holders.join(',')}`;
      seen.add(key);
      const firstSeen = this.#duplicates.get(key) ?? now;
      this.#duplicates.set(key, firstSeen);
      if (firstSeen < 0 || now - firstSeen < this.#config.duplicateGraceMs) continue;
      this.#duplicates.set(key, -1); // Reported.
      void this.#init
        .emit({ id: eventIdOf('placement.duplicate_activation', key), kind: 'placement.duplicate_activation', severity: 'high', subject: name, detail: `${name} runs on ${holders.length} nodes at once: ${holders.join(', ')}`, payload: { holders: holders.join(',') } })
        .catch((error: unknown) => this.#init.log.error('recording a duplicate activation failed', { error: String(error) }));
    }
    for (const key of this.#duplicates.keys()) if (!seen.has(key)) this.#duplicates.delete(key);
    // Two records active at once are looked at again at every evaluation: whether the older holder announces it runs it changes with time.
    if (!recordedTwice) this.#noDuplicatesIn = { members, shape, records };
  }
}
