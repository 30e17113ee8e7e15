import { type EventFilter, sameActivationRecords } from '../crdt-schema/index.ts';
import { type Clock, type EventInput, type FleetNode, Listeners, type Logger, type PeerId, type Storage, type TimerId, type Transport, monotonicNow, s } from '../mesh/index.ts';
import { EpochFence, type EpochStamp, type FenceRefusal } from './fence.ts';
import { ActorHost, type Behavior, type EffectPort, type PortOutcome } from './host.ts';
import { DEFAULT_CRITICAL_AFTER_MS, instanceSilenceSpec } from './instance-silence.ts';
import { DEFAULT_LEASE_CONFIG, type Holding, type LeaseAnswer, type LeaseConfig, QuorumLease } from './lease.ts';
import { Placement, type PlacementConfig, type PlacementMember, type RecordsView, type SingletonSpec } from './placement.ts';
import { OwnerPromises, type PromiseAnswer, memoryPromiseStore, storagePromiseStore } from './promises.ts';
import { RemoteActors } from './remote.ts';
import { VOTER_CHANGE_MS, VoterSet } from './voters.ts';

export const LEASE_ACTOR = 'sys/lease';
/** The labels of a member that has none (shared: placement only reads them). */
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const ANNOUNCE_COALESCE_MS = 50;
export const ORDERS_ACTOR = 'sys/orders';

/** An order from a singleton to an executor on some node, stamped with the activation that issued it. */
export interface Order {
  readonly type: 'order';
  readonly singleton: string;
  readonly epoch: number;
  readonly owner: string;
  /** Which executor runs it. */
  readonly kind: string;
  readonly body: string;
  /** The peer it came from, set by the actor protocol (never by the sender); absent for this node's own orders. */
  readonly from?: string;
}

/** What an executor answers. */
export type OrderAnswer = { readonly accepted: true; readonly result: unknown } | ({ readonly accepted: false } & (FenceRefusal | { readonly reason: 'unknown-kind' | 'failed'; readonly detail: string }));

/**
 * Runs one kind of order on this node; returns a plain result, or a promise of one when the
 * answer must wait for I/O (a durable record): the order is answered when it settles.
 */
export type OrderExecutor = (body: string, stamp: EpochStamp) => unknown;

/** The port an executor's promise is awaited on (the orders actor's step stays synchronous). */
const AWAIT_PORT = 'sys.orders.await';

const orderShape = s.object({
  type: s.literal('order'),
  /** Set by the actor protocol to the peer the order came from (authenticated by the transport); absent for this node's own orders. */
  from: s.optional(s.string({ min: 1, max: 100 })),
  singleton: s.string({ min: 1, max: 100 }),
  epoch: s.uint(),
  owner: s.string({ min: 1, max: 100 }),
  kind: s.string({ min: 1, max: 64 }),
  body: s.string({ max: 64 * 1024 }),
});
const stampedNameShape = s.object({ name: s.string({ min: 1, max: 100 }), epoch: s.uint() });
const pingShape = s.object({
  type: s.literal('ping'),
  from: s.string({ min: 1, max: 100 }),
  watch: s.array(s.string({ min: 1, max: 100 }), { max: 64 }),
  holds: s.array(stampedNameShape, { max: 64 }),
  claims: s.array(stampedNameShape, { max: 64 }),
  releases: s.array(stampedNameShape, { max: 256 }),
});
type LeasePing = ReturnType<typeof pingShape.check>;
/** A lease round's answer, checked before the asker believes it (a node never trusts a peer's bytes). */
const leaseAnswerShape = s.object({
  alive: s.array(s.string({ min: 1, max: 100 }), { max: 64 }),
  holders: s.array(s.object({ peer: s.string({ min: 1, max: 100 }), name: s.string({ min: 1, max: 100 }), epoch: s.uint(), agoMs: s.uint() }), { max: 10_000 }),
  epochs: s.record(s.string({ min: 1, max: 100 }), s.uint(), { maxKeys: 10_000 }),
  promises: s.array(
    s.object({
      name: s.string({ min: 1, max: 100 }),
      epoch: s.uint(),
      granted: s.boolean(),
      reason: s.optional(s.oneOf(['promised', 'stale', 'restarting', 'full'] as const)),
      holder: s.optional(s.string({ min: 1, max: 100 })),
      holderRunning: s.optional(s.boolean()),
      highestEpoch: s.optional(s.uint()),
      highestOwner: s.optional(s.string({ min: 1, max: 100 })),
    }),
    { max: 64 },
  ),
});

/** Announced (over the API's WebSocket too) when a singleton's owner, epoch or activity changes. */
export interface SingletonsChanged {
  readonly type: 'singleton:changed';
  readonly singletons: ReturnType<Placement['view']>;
}

export interface ControlPlaneInit {
  readonly node: FleetNode;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly log: Logger;
  /** When a silent member escalates to critical (the original: 33 minutes). */
  readonly silenceCriticalAfterMs?: number;
  readonly lease?: Partial<LeaseConfig>;
  readonly placement?: Partial<PlacementConfig>;
  /** Singletons beyond the built-in ones (tests, later capabilities). */
  readonly singletons?: readonly SingletonSpec[];
  /** Ports beyond the built-in ones, for those singletons' `perform` effects. */
  readonly ports?: Readonly<Record<string, EffectPort>>;
  /**
   * The node's storage, where it keeps the highest epoch it promised of each singleton across
   * restarts (docs/PLACEMENT.md §Ownership promises). Without it that is kept in memory only,
   * which is safe only for nodes that never restart on the same state (tests).
   */
  readonly storage?: Storage;
}

/**
 * The node's control plane (docs/PLACEMENT.md): an actor host reachable from other nodes, a quorum
 * lease, placement of singletons with epochs, an epoch fence in front of the order executors, and
 * the built-in singletons (the instance-silence sensor). Built on a {@link FleetNode}'s ports, so
 * the simulator runs it as is.
 */
export class ControlPlane {
  readonly host: ActorHost;
  readonly remote: RemoteActors;
  readonly lease: QuorumLease;
  readonly placement: Placement;
  /** The singletons this node runs placement for (every node registers the same): the only names orders and the fence take. */
  readonly #knownSingletons = new Set<string>();
  readonly fence = new EpochFence((name) => this.#knownSingletons.has(name));
  /** The promises this node gives would-be owners (counted when it is a voter). */
  readonly promises: OwnerPromises;
  readonly #init: ControlPlaneInit;
  /** Whose answers the lease and the promises count (docs/PLACEMENT.md §Voters). */
  readonly #voters: VoterSet;
  #lastVoters: readonly string[] | undefined;
  /** Executors by order kind, each with the one singleton whose orders it takes (any known one when unnamed). */
  readonly #executors = new Map<string, { readonly run: OrderExecutor; readonly singleton?: string }>([['noop', { run: () => ({ done: true }) }]]);
  #unsubscribe: (() => void) | undefined;
  readonly #singletonListeners = new Listeners<SingletonsChanged>();
  /** What each member's latest lease round said it runs, and when (this node's clock). */
  readonly #heardHolds = new Map<string, { holds: readonly Holding[]; atMs: number }>();
  /** `members()` and the activation records as last built, with what they were built from. */
  #membersCache:
    | { list: ReturnType<FleetNode['membershipList']>; fleet: ReturnType<FleetNode['fleet']>; swim: number; members: PlacementMember[]; index: ReadonlyMap<string, number>; shape: number }
    | undefined;
  #recordsCache: { ids: readonly string[]; version: number; records: RecordsView } | undefined;
  #lastView = '';
  #announceTimer: TimerId | undefined;

  constructor(init: ControlPlaneInit) {
    this.#init = init;
    const { node, clock, log, transport } = init;
    const self = node.peer;
    this.host = new ActorHost({
      clock,
      log,
      self,
      sendRemote: (to, message) => this.remote.tell(to, message),
      onEscalate: (name) => this.placement.failed(name),
      ports: {
        'events.emit': (request) => node.events.emit(request as EventInput),
        'events.list': async (filter) => node.events.list(filter as EventFilter),
        [AWAIT_PORT]: (request) => request as Promise<unknown>,
        ...init.ports,
      },
    });
    this.remote = new RemoteActors({
      transport,
      clock,
      log,
      penalties: node.penalties,
      host: this.host,
      isAdmitted: (peer) => node.admission.isAdmitted(peer),
      isReachable: (peer) => this.#reachable(peer),
    });
    const leaseMs = { ...DEFAULT_LEASE_CONFIG, ...init.lease }.leaseMs;
    this.promises = new OwnerPromises({
      clock,
      log,
      termMs: leaseMs,
      store: init.storage === undefined ? memoryPromiseStore() : storagePromiseStore(init.storage, log),
      known: (name) => this.fence.newest(name),
    });
    this.#voters = new VoterSet({ ...DEFAULT_LEASE_CONFIG, ...init.lease }.voters, VOTER_CHANGE_MS, init.node.peer);
    this.lease = new QuorumLease({
      clock,
      self,
      members: () => this.voters(),
      formerMembers: () => this.formerVoters(),
      reachable: (peer) => this.#reachable(peer),
      // Members never heard from (not started yet, or gone before this node came up) are asked only when too few others are.
      heard: (peer) => node.swim.heardFrom(peer),
      listed: (peer) => (node.nodeState(peer)?.addrs.length ?? 0) > 0,
      ping: (peer, request, timeoutMs) =>
        this.remote
          .ask<unknown>(
            { node: peer as PeerId, path: LEASE_ACTOR },
            { type: 'ping', from: self, watch: [...request.watch], holds: [...request.holds], claims: [...request.claims], releases: [...request.releases] },
            { timeoutMs },
          )
          .then(
            (answer) => this.#checkedAnswer(peer, answer),
            () => undefined,
          ),
      promiseLocally: (claims, releases) => this.promises.answer(self, claims, releases, new Set(this.placement.holding().map((h) => h.name))),
      holding: () => this.placement.holding(),
      onGained: () => this.placement.poke(),
      onPromised: () => this.placement.promised(),
      ...(init.lease === undefined ? {} : { config: init.lease }),
    });
    this.placement = new Placement({
      clock,
      log,
      self,
      host: this.host,
      lease: this.lease,
      fence: this.fence,
      members: () => this.members(),
      membersShape: () => this.membersShape(),
      stateOf: (peer) => node.swim.state(peer),
      records: () => this.#records(),
      write: (name, record) => node.recordActivation(name, record),
      emit: (event) => node.events.emit(event),
      announcedHolders: (name) => this.#announcedHolders(name),
      detectsDuplicates: () => this.voters().includes(self),
      ...(init.placement === undefined ? {} : { config: init.placement }),
    });
    for (const spec of [instanceSilenceSpec(init.silenceCriticalAfterMs ?? DEFAULT_CRITICAL_AFTER_MS), ...(init.singletons ?? [])]) {
      this.#knownSingletons.add(spec.name);
      this.placement.register(spec);
    }
    this.host.spawn(LEASE_ACTOR, this.#leaseBehavior(), { remote: pingShape as s.Shape<unknown>, mailbox: 10_000 });
    this.host.spawn(ORDERS_ACTOR, this.#ordersBehavior(), { remote: orderShape as s.Shape<unknown>, mailbox: 10_000 });
  }

  /**
   * Adds an executor for orders of `kind`. With `singleton`, it takes orders of that singleton
   * only: a member that records an activation of a made-up singleton cannot order what belongs
   * to a real one (claim pool members, say) under a fence no real owner ever set.
   */
  registerExecutor(kind: string, executor: OrderExecutor, options: { readonly singleton?: string } = {}): void {
    this.#executors.set(kind, { run: executor, ...(options.singleton === undefined ? {} : { singleton: options.singleton }) });
  }

  async start(): Promise<void> {
    const { node } = this.#init;
    this.remote.start();
    this.#unsubscribe = node.onEvent((event) => {
      if (event.type === 'member:state') {
        if (event.state === 'dead' || event.state === 'left') this.remote.peerDown(event.peerId as PeerId);
        this.placement.membersChanged();
      } else if (event.type === 'doc:changed' && (event.docId === 'fleet' || event.docId.startsWith('node/'))) {
        this.placement.poke();
        this.#scheduleAnnounce();
      }
    });
    await this.promises.start();
    await this.placement.start();
  }

  /** Hands over every singleton running here (recorded), then stops messaging. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    if (this.#announceTimer !== undefined) this.#init.clock.clearTimeout(this.#announceTimer);
    await this.placement.stop();
    this.remote.stop();
  }

  /** Calls `listener` with every singleton whenever where one runs (owner, epoch, active) changes. */
  onSingletonsChanged(listener: (event: SingletonsChanged) => void): () => void {
    return this.#singletonListeners.add(listener);
  }

  /** Where singletons run is announced at most every 50 ms: document changes come in bursts. */
  #scheduleAnnounce(): void {
    if (this.#announceTimer !== undefined) return;
    this.#announceTimer = this.#init.clock.setTimeout(() => {
      this.#announceTimer = undefined;
      this.#announceView();
    }, ANNOUNCE_COALESCE_MS);
  }

  #announceView(): void {
    const singletons = this.placement.view();
    const key = JSON.stringify(singletons.map(({ ownerState: _, ...rest }) => rest));
    if (key === this.#lastView) return;
    this.#lastView = key;
    this.#singletonListeners.emit({ type: 'singleton:changed', singletons });
  }

  /** Sends an order to `to`'s executors, stamped as `stamp` of `singleton` would, and returns the answer. */
  async order(to: PeerId, singleton: string, stamp: EpochStamp, kind: string, body = '', timeoutMs = 5_000): Promise<OrderAnswer> {
    const order: Order = { type: 'order', singleton, epoch: stamp.epoch, owner: stamp.owner, kind, body };
    if (to === this.#init.node.peer) return this.host.ask<OrderAnswer>(ORDERS_ACTOR, order, { timeoutMs });
    return this.remote.ask<OrderAnswer>({ node: to, path: ORDERS_ACTOR }, order, { timeoutMs });
  }

  /** Members as placement sees them: trust's members, failure detection's states, operators' labels. */
  members(): PlacementMember[] {
    const { node } = this.#init;
    // Placement reads this ten times a second; it is built again only when membership, the
    // fleet document (labels) or a member's state changed, so the same array comes back meanwhile.
    const list = node.membershipList();
    const fleet = node.fleet();
    const swimVersion = node.swim.version;
    const cached = this.#membersCache;
    if (cached !== undefined && cached.list === list && cached.fleet === fleet && cached.swim === swimVersion) return cached.members;
    // What `node.members()` says of each (state, labels), read straight from membership, failure
    // detection and the fleet document. With the same members and labels, only the members
    // failure detection changed since are read again (a large fleet's start changes one state or
    // another hundreds of times a second); a member whose entry is unchanged keeps its object.
    const changed = cached !== undefined && cached.list === list && cached.fleet === fleet ? node.swim.changedSince(cached.swim) : undefined;
    let members: PlacementMember[];
    let index: ReadonlyMap<string, number>;
    let shapeChanged = false;
    if (cached !== undefined && changed !== undefined) {
      members = cached.members.slice();
      index = cached.index;
      for (const peer of changed) {
        const at = index.get(peer);
        if (at === undefined) continue;
        const before = members[at]!;
        const member = this.#member(before.peerId, before.name, fleet, before);
        if (member !== before && (member.state !== before.state || member.stateSince !== before.stateSince || member.upSince !== before.upSince)) shapeChanged = true;
        members[at] = member;
      }
    } else {
      const previous = cached?.index;
      const byPeer = new Map<string, number>();
      members = list.map((m, i) => {
        byPeer.set(m.peerId, i);
        const at = previous?.get(m.peerId);
        const before = at === undefined ? undefined : cached!.members[at];
        return this.#member(m.peerId, m.name, fleet, before);
      });
      index = byPeer;
      shapeChanged = cached === undefined || members.length !== cached.members.length || members.some((m, i) => {
        const before = cached.members[i]!;
        return m.peerId !== before.peerId || m.name !== before.name || m.state !== before.state || m.stateSince !== before.stateSince || m.upSince !== before.upSince || m.labels !== before.labels;
      });
    }
    const shape = shapeChanged ? (cached?.shape ?? 0) + 1 : cached!.shape;
    this.#membersCache = { list, fleet, swim: swimVersion, members, index, shape };
    return members;
  }

  /**
   * Changes whenever what placement reads of the members to choose owners (who they are, their
   * states and since when, their labels) changes; a new incarnation alone leaves it.
   */
  membersShape(): number {
    this.members();
    return this.#membersCache!.shape;
  }

  /** `peer` as a placement member now; `before` itself when nothing about it changed. */
  #member(peer: string, name: string, fleet: ReturnType<FleetNode['fleet']>, before: PlacementMember | undefined): PlacementMember {
    const { node } = this.#init;
    const swim = node.swim.member(peer);
    const state = peer === node.peer ? 'alive' : (swim?.state ?? 'alive');
    const stateSince = swim?.since ?? 0;
    const upSince = swim?.upSince ?? 0;
    const incarnation = swim?.incarnation ?? 0;
    const labels = fleet?.labels[peer] ?? NO_LABELS;
    if (before !== undefined && before.name === name && before.state === state && before.stateSince === stateSince && before.upSince === upSince && before.incarnation === incarnation && before.labels === labels) return before;
    return { peerId: peer, name, state, stateSince, upSince, incarnation, labels };
  }

  /** Every member's activation records, built again only when a document or membership changed. */
  #records(): RecordsView {
    const { node } = this.#init;
    const ids = node.memberIds();
    const version = node.store.version;
    const cached = this.#recordsCache;
    if (cached !== undefined && cached.ids === ids && cached.version === version) return cached.records;
    const built = node.activationRecords();
    // Most document changes (observations, events, other documents) leave every record as it
    // was: the same map then comes back, so what placement keeps by it stays good.
    const records = cached !== undefined && sameRecords(cached.records, built) ? cached.records : built;
    this.#recordsCache = { ids, version, records };
    return records;
  }

  /**
   * Whose answers the lease and the promises count: a majority of these, not of every member
   * (docs/PLACEMENT.md §Voters). Without the fleet document (not received yet, or quarantined)
   * there is no member list to choose from: the voters last chosen stay, and before any were,
   * every node whose document this node holds counts (placement runs nothing then: it has no
   * members to choose an owner from).
   */
  voters(): readonly string[] {
    const list = this.#init.node.membershipList();
    if (list.length > 0) {
      const now = monotonicNow(this.#init.clock);
      const voters = this.#voters.of(list, now);
      if (voters !== this.#lastVoters && this.#lastVoters !== undefined) this.#init.log.info('the voters changed', { voters: voters.length, before: this.#lastVoters.length, formerCounting: this.#voters.former(now).length });
      this.#lastVoters = voters;
    }
    return this.#lastVoters ?? this.#init.node.memberIds();
  }

  /** Voter sets replaced within the last minute, which still count beside {@link ControlPlane.voters} (docs/PLACEMENT.md §Voters). */
  formerVoters(): readonly (readonly string[])[] {
    this.voters();
    return this.#voters.former(monotonicNow(this.#init.clock));
  }

  /** What `status` shows of the control plane. */
  status(): Record<string, unknown> {
    const hostStats = this.host.stats();
    // The lease counts on the monotonic clock; shown as wall-clock time.
    const validUntil = this.lease.validUntil() - this.lease.now() + this.#init.clock.now();
    const voters = this.voters();
    return {
      singletons: this.placement.view(),
      actors: { count: hostStats.actors.length, deadLetters: hostStats.deadLetters + this.remote.stats().deadLetters, mailboxes: hostStats.actors },
      remote: this.remote.stats(),
      fencing: this.fence.stats(),
      lease: {
        valid: this.lease.valid(),
        validUntil: Number.isFinite(validUntil) ? validUntil : validUntil > 0 ? 'unbounded' : null,
        voters: voters.length,
        voter: voters.includes(this.#init.node.peer),
        // Replaced voter sets that still count beside the voters (docs/PLACEMENT.md §Voters, changes).
        formerVoters: this.formerVoters().map((set) => set.length),
      },
    };
  }

  /** Members whose lease rounds told this node, within a lease, that they run `name`, with the epoch each named. */
  #announcedHolders(name: string): ReadonlyMap<string, number> {
    const now = this.#init.clock.now();
    const out = new Map<string, number>();
    for (const [peer, heard] of this.#heardHolds) {
      if (now - heard.atMs >= this.lease.config.leaseMs) continue;
      for (const h of heard.holds) if (h.name === name) out.set(peer, h.epoch);
    }
    return out;
  }

  #reachable(peer: string): boolean {
    const state = this.#init.node.swim.state(peer);
    return state !== undefined && state !== 'dead' && state !== 'left';
  }

  /**
   * Acknowledges lease rounds: says which of the watched peers this node holds alive, and who
   * told it, within a lease, that they run a singleton. (The asker names itself; only admitted
   * members reach this actor, and a member that lies here can only delay a takeover.)
   */
  #leaseBehavior(): Behavior<null, LeasePing | { readonly type: 'promised'; readonly answer: Omit<LeaseAnswer, 'promises'>; readonly outcome: PortOutcome }> {
    return {
      initial: () => null,
      step: (state, ping) => {
        if (ping.type === 'promised') {
          // The promises waited for a durable write; one that failed grants nothing.
          const promises = ping.outcome.ok ? (ping.outcome.value as readonly PromiseAnswer[]) : [];
          return { state, effects: [{ type: 'reply', value: { ...ping.answer, promises } satisfies LeaseAnswer }] };
        }
        const now = this.#init.clock.now();
        if (this.#heardHolds.size > 10_000) this.#heardHolds.clear();
        this.#heardHolds.set(ping.from, { holds: ping.holds, atMs: now });
        const leaseMs = this.lease.config.leaseMs;
        const holders: LeaseAnswer['holders'] = [...this.#heardHolds]
          .filter(([peer, heard]) => peer !== ping.from && now - heard.atMs < leaseMs)
          .flatMap(([peer, heard]) => heard.holds.map((h) => ({ peer, name: h.name, epoch: h.epoch, agoMs: Math.round(now - heard.atMs) })));
        const alive = ping.watch.filter((peer) => peer === this.#init.node.peer || this.#reachable(peer));
        for (const h of ping.holds) this.fence.observe(h.name, { epoch: h.epoch, owner: ping.from });
        const epochs = Object.fromEntries(Object.entries(this.fence.stats().newest).map(([name, stamp]) => [name, stamp.epoch]));
        const answer = { alive, holders, epochs };
        const promises = this.promises.answer(ping.from, ping.claims, ping.releases, new Set(ping.holds.map((h) => h.name)));
        if (promises instanceof Promise) {
          return { state, effects: [{ type: 'perform', port: AWAIT_PORT, request: promises, carryReply: true, then: (outcome) => ({ type: 'promised', answer, outcome }) }] };
        }
        return { state, effects: [{ type: 'reply', value: { ...answer, promises } satisfies LeaseAnswer }] };
      },
    };
  }

  /** A peer's answer to a lease round if it has the right shape; otherwise no answer (logged), as if it never came. */
  #checkedAnswer(peer: string, answer: unknown): LeaseAnswer | undefined {
    try {
      return leaseAnswerShape.check(answer) as LeaseAnswer;
    } catch (error) {
      this.#init.log.warn('a lease answer had the wrong shape; ignoring it', { peer, error: String(error) });
      return undefined;
    }
  }

  /**
   * The executor side of fencing: an order from an activation older than the newest this node
   * has seen (in records or orders) is refused with the newer stamp.
   */
  /**
   * Why an order from another node is not to be believed, or undefined: it must come from the
   * owner it names (the actor protocol sets `from` to the authenticated peer), and that owner's
   * own sealed activation records must show it activated that singleton at that epoch or later.
   * Without this, any member could send orders under any stamp — and, by claiming a huge epoch,
   * make every node's fence refuse the real owner's orders. An order that arrives before the
   * owner's record has replicated here is refused for now; singletons send again.
   */
  #unbackedOrder(order: Order): string | undefined {
    if (order.from === undefined) return undefined;
    if (order.from !== order.owner) return `the order names ${order.owner} as its sender but came from ${order.from}`;
    const record = this.#records().get(order.owner)?.[order.singleton];
    if (record === undefined || record.epoch < order.epoch) return `${order.owner} has no activation of ${order.singleton} at epoch ${order.epoch} on record here (yet)`;
    return undefined;
  }

  #ordersBehavior(): Behavior<null, Order | { readonly type: 'settled'; readonly outcome: PortOutcome }> {
    return {
      initial: () => null,
      step: (state, order) => {
        if (order.type === 'settled') {
          const answer: OrderAnswer = order.outcome.ok ? { accepted: true, result: order.outcome.value ?? null } : { accepted: false, reason: 'failed', detail: order.outcome.error };
          return { state, effects: [{ type: 'reply', value: answer }] };
        }
        const stamp = { epoch: order.epoch, owner: order.owner };
        const executor = this.#executors.get(order.kind);
        const foreign = !this.#knownSingletons.has(order.singleton)
          ? `${order.singleton} is not a singleton of this fleet`
          : executor?.singleton !== undefined && executor.singleton !== order.singleton
            ? `${order.kind} orders come from ${executor.singleton} only, not ${order.singleton}`
            : undefined;
        if (foreign !== undefined) {
          this.#init.log.warn('refused an order from the wrong singleton', { kind: order.kind, singleton: order.singleton, from: order.from, why: foreign });
          return { state, effects: [{ type: 'reply', value: { accepted: false, reason: 'failed', detail: foreign } satisfies OrderAnswer }] };
        }
        const unbacked = this.#unbackedOrder(order);
        if (unbacked !== undefined) {
          this.#init.log.warn('refused an order its sender cannot stand behind', { singleton: order.singleton, epoch: order.epoch, owner: order.owner, from: order.from, why: unbacked });
          return { state, effects: [{ type: 'reply', value: { accepted: false, reason: 'failed', detail: unbacked } satisfies OrderAnswer }] };
        }
        const refusal = this.fence.admit(order.singleton, stamp);
        let answer: OrderAnswer;
        if (refusal !== undefined) {
          this.#init.log.warn('refused an order from a superseded activation', { singleton: order.singleton, epoch: order.epoch, owner: order.owner, current: refusal.current });
          answer = { accepted: false, ...refusal };
        } else {
          const ran = executor === undefined ? { accepted: false as const, reason: 'unknown-kind' as const, detail: `no executor for ${order.kind} on this node` } : run(executor.run, order.body, stamp);
          if (ran.accepted && ran.result instanceof Promise) {
            return { state, effects: [{ type: 'perform', port: AWAIT_PORT, request: ran.result, carryReply: true, then: (outcome) => ({ type: 'settled', outcome }) }] };
          }
          answer = ran;
        }
        return { state, effects: [{ type: 'reply', value: answer }] };
      },
    };
  }
}

/** Whether two views hold the same records (the same peers in the same order, the same singletons and fields). */
function sameRecords(a: RecordsView, b: RecordsView): boolean {
  if (a.size !== b.size) return false;
  const others = a.entries();
  for (const [peer, byName] of b) {
    const [otherPeer, other] = others.next().value!;
    if (otherPeer !== peer || !sameActivationRecords(other, byName)) return false;
  }
  return true;
}

function run(executor: OrderExecutor, body: string, stamp: EpochStamp): OrderAnswer {
  try {
    return { accepted: true, result: executor(body, stamp) ?? null };
  } catch (error) {
    return { accepted: false, reason: 'failed', detail: error instanceof Error ? error.message : String(error) };
  }
}

