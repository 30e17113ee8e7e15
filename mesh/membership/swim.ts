import type { Logger } from '../logger.ts';
import { sameList } from '../same-list.ts';
import type { Clock, TimerId } from '../ports/clock.ts';
import { type Random, shuffled } from '../ports/random.ts';
import type { PeerId, Transport } from '../ports/transport.ts';
import { ExchangeAbortedError, type MessageOf, type PeerPenalties, WireError, decodeMessage, defineProtocol, encodeMessage, exchange, s, serveRequests } from '../wire/index.ts';

/** A member as failure detection sees it. Liveness lives here, never in documents. */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
const STATES = ['alive', 'suspect', 'dead', 'left'] as const;

const update = s.object({ peer: s.string({ min: 1, max: 100 }), state: s.oneOf(STATES), incarnation: s.uint() });
const updates = s.array(update, { max: 32 });

/** SWIM's messages (docs/PLACEMENT.md §Failure detection). */
export const swimProtocol = defineProtocol({
  id: '/powernode/swim/1',
  version: 1,
  maxFrameBytes: 16 * 1024,
  messages: {
    ping: s.object({ seq: s.uint(), inc: s.uint(), updates }),
    'ping-req': s.object({ seq: s.uint(), inc: s.uint(), target: s.string({ min: 1, max: 100 }), updates }),
    ack: s.object({ seq: s.uint(), inc: s.uint(), updates }),
    nack: s.object({ seq: s.uint(), inc: s.uint(), updates }),
  },
});
type SwimMessage = MessageOf<typeof swimProtocol>;
type Update = { readonly peer: string; readonly state: MemberState; readonly incarnation: number };

export interface SwimConfig {
  /** One probe per period. */
  readonly periodMs: number;
  /** Time for a direct ack before asking others. */
  readonly ackTimeoutMs: number;
  /** How many members are asked to probe indirectly. */
  readonly indirectProbes: number;
  /** Suspicion lasts at least this long (reached once enough members confirm it)… */
  readonly suspicionMinMs: number;
  /** …and at most this long (nobody confirms). */
  readonly suspicionMaxMs: number;
  /** Independent confirmations that bring suspicion down to its minimum. */
  readonly suspicionConfirmations: number;
  /** Updates piggybacked per message. */
  readonly updatesPerMessage: number;
  /** Each update is sent this many times × log10(members + 1), rounded up. */
  readonly retransmitMultiplier: number;
  /** Every this many periods, one dead or left member is probed, so a member that comes back is seen. */
  readonly deadProbeEvery: number;
}

/** Defaults, with their reasons in docs/PLACEMENT.md. */
export const DEFAULT_SWIM_CONFIG: SwimConfig = {
  periodMs: 500,
  ackTimeoutMs: 200,
  indirectProbes: 3,
  suspicionMinMs: 1_500,
  suspicionMaxMs: 3_000,
  suspicionConfirmations: 2,
  updatesPerMessage: 8,
  retransmitMultiplier: 4,
  deadProbeEvery: 4,
};

/** Member changes remembered for {@link Swim.changedSince}. */
const MAX_CHANGES = 8_192;

/** Local health (Lifeguard): a node that runs late stretches its own timeouts instead of accusing others. */
const MAX_HEALTH_MULTIPLIER = 8;

export interface SwimInit {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly penalties: PeerPenalties;
  /**
   * The fleet's members as trust derives them (this node included or not: it is skipped). A list
   * equal to the last one (same members, same order) is not taken in again.
   */
  members(): readonly string[];
  /** Whether `peer` may use fleet protocols on its connection (admitted). */
  isAdmitted(peer: PeerId): boolean;
  /**
   * The members this node probes in turn (its view), e.g. those it holds admitted connections to;
   * every member when absent. A bounded view keeps a large fleet from becoming a full mesh of
   * connections (each probe of an unconnected member dials it). A member outside the view is
   * still probed when a connection to it closes, when another member suspects it, and (if it is
   * dead or left) by the periodic probe of gone members; its state comes by gossip otherwise.
   */
  view?(): readonly string[];
  /**
   * Optional, with {@link SwimInit.view}: whether `peer` is in the view now, without building the
   * list (asked of the next member in the probe order at every period; the list is read only when
   * the order is dealt again).
   */
  inView?(peer: string): boolean;
  /** Resolves whether `peer` is admitted, waiting briefly (its admission may be under way). */
  whenAdmitted?(peer: PeerId): Promise<boolean>;
  readonly config?: Partial<SwimConfig>;
  /** Called when a member's state changes. */
  onChange?(peer: string, state: MemberState, previous: MemberState | undefined): void;
}

/** A member as `states()` shows it. */
export interface MemberView {
  readonly state: MemberState;
  readonly incarnation: number;
  readonly since: number;
  /**
   * When it last came up: first seen, or back from dead or left. A suspicion it refuted does not
   * count — on a loaded machine members are suspected and refute it many times a minute, and what
   * waits for a member to be up a while (placement's stability, a pool member's warming) must not
   * start over each time.
   */
  readonly upSince: number;
}

interface Member {
  readonly peer: string;
  state: MemberState;
  incarnation: number;
  since: number;
  upSince: number;
  /** While suspect: when it becomes dead unless refuted, and who confirmed the suspicion. */
  suspicion?: { startedAt: number; timer: TimerId; confirmations: Set<string> };
  /** Being probed now (a hint does not start a second probe of it). */
  probing: boolean;
  /** No longer a member: the entry is out of {@link Swim.#members} (a handle to it is looked up again). */
  removed: boolean;
}

/**
 * SWIM failure detection with Lifeguard's suspicion and local health (docs/PLACEMENT.md). Each
 * period this node probes one member (round robin over a shuffled list), directly, then through
 * `indirectProbes` others; a member that answers neither is suspected, and declared dead when the
 * suspicion times out unrefuted. Updates travel piggybacked on every message.
 */
export class Swim {
  readonly #init: SwimInit;
  readonly #config: SwimConfig;
  readonly #self: PeerId;
  readonly #members = new Map<string, Member>();
  /** Members held dead or left (probed now and then, in case they are back). */
  readonly #gone = new Set<string>();
  /** Updates to disseminate, with how often each has been sent. */
  readonly #broadcasts = new Map<string, { update: Update; sent: number }>();
  #incarnation: number;
  #seq = 0;
  #ticks = 0;
  /** The members left to probe in this round of the order (handles: each is not looked up again). */
  #probeOrder: Member[] = [];
  #timer: TimerId | undefined;
  #expectedTickAt = 0;
  #health = 1;
  #stopped = true;
  /** Bumped whenever a member's state, incarnation or presence changes (keys `states()`). */
  #version = 0;
  /** The members changed at each recent version (null: the member list itself changed), for {@link Swim.changedSince}. */
  #changes: Array<{ readonly version: number; readonly peer: string | null }> = [];
  #statesCache: { version: number; states: ReadonlyMap<string, MemberView> } | undefined;
  /** The member list last taken in; the same array again means nothing to take in. */
  #syncedMembers: readonly string[] | undefined;
  #unsubscribe: Array<() => void> = [];

  constructor(init: SwimInit) {
    this.#init = init;
    this.#config = { ...DEFAULT_SWIM_CONFIG, ...init.config };
    this.#self = init.transport.localPeer;
    // Starting above any earlier run's incarnation: a restarted node is never taken for its old, dead self.
    this.#incarnation = init.clock.now();
  }

  start(): void {
    this.#stopped = false;
    const { transport } = this.#init;
    serveRequests(transport, swimProtocol.id, (peer, frame) => this.#serve(peer, frame), { maxFrameBytes: swimProtocol.maxFrameBytes, onError: (peer, error) => this.#serveFailed(peer, error) });
    this.#unsubscribe.push(
      // A closed connection (a kill -9 closes it at once) is a hint, never a verdict: probe now.
      transport.on('peer:disconnect', (peer) => this.#hint(peer)),
    );
    this.#sync(0);
    this.#enqueue({ peer: this.#self, state: 'alive', incarnation: this.#incarnation });
    this.#schedule(this.#config.periodMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    for (const member of this.#members.values()) if (member.suspicion !== undefined) this.#init.clock.clearTimeout(member.suspicion.timer);
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
    this.#init.transport.unhandle(swimProtocol.id);
  }

  /** Tells the members this node leaves (graceful shutdown), as far as one round of pings reaches. */
  async leave(): Promise<void> {
    this.#incarnation++;
    this.#enqueue({ peer: this.#self, state: 'left', incarnation: this.#incarnation });
    const targets = [...this.#members].filter(([, m]) => m.state === 'alive' || m.state === 'suspect').map(([peer]) => peer as PeerId);
    await Promise.all(targets.slice(0, 8).map((peer) => this.#request(peer, this.#message('ping', this.#piggyback(true)), this.#config.ackTimeoutMs * 2)));
  }

  /**
   * The state of every member this node knows. Built once per change (placement reads it ten
   * times a second on every node), so the same map comes back until something changes.
   */
  states(): ReadonlyMap<string, MemberView> {
    if (this.#statesCache?.version === this.#version) return this.#statesCache.states;
    const out = new Map<string, MemberView>();
    for (const [peer, member] of this.#members) out.set(peer, { state: member.state, incarnation: member.incarnation, since: member.since, upSince: member.upSince });
    this.#statesCache = { version: this.#version, states: out };
    return out;
  }

  /** Changes whenever `states()` would tell something new. */
  get version(): number {
    return this.#version;
  }

  /**
   * The members whose entry changed since `version` (in order, possibly repeated), or undefined
   * when that is not known any more (too long ago) or the member list itself changed since: then
   * read them all. Lets a reader of a large fleet follow changes without reading every member.
   */
  changedSince(version: number): readonly string[] | undefined {
    if (version === this.#version) return [];
    const changes = this.#changes;
    if (version > this.#version || changes.length === 0 || changes[0]!.version > version + 1) return undefined;
    const peers: string[] = [];
    for (let i = changes.length - 1; i >= 0 && changes[i]!.version > version; i--) {
      const peer = changes[i]!.peer;
      if (peer === null) return undefined;
      peers.push(peer);
    }
    return peers.reverse();
  }

  #bump(peer: string | null): void {
    this.#version++;
    if (this.#changes.length >= MAX_CHANGES) this.#changes = this.#changes.slice(MAX_CHANGES / 2);
    this.#changes.push({ version: this.#version, peer });
  }

  /** One member as `states()` shows it, without building the map (read it at once: it is live). */
  member(peer: string): MemberView | undefined {
    return this.#members.get(peer);
  }

  state(peer: string): MemberState | undefined {
    return peer === this.#self ? 'alive' : this.#members.get(peer)?.state;
  }

  /** Whether this node has ever heard from `peer` directly or by gossip (it announced an incarnation). */
  heardFrom(peer: string): boolean {
    return (this.#members.get(peer)?.incarnation ?? 0) > 0;
  }

  /** The local health multiplier (1 = healthy; up to 8 when this node's own timers run late). */
  get health(): number {
    return this.#health;
  }

  /**
   * A dial to `peer` failed (the keeper's). If this node has never heard from it, it is probed
   * now: with a bounded view, this is how a member that no probe reaches in turn (behind a
   * partition from the start, say) is found dead. A member heard from before is left to the other
   * hints (its connection closing) and to gossip: a failed dial while a partition heals one node
   * at a time must not make this node suspect a member that others hear from.
   */
  dialFailed(peer: string): void {
    if (!this.heardFrom(peer)) this.#hint(peer);
  }

  /** Something suggests `peer` may be unreachable: if it is held alive, it is probed now. A hint is never a verdict. */
  #hint(peer: string): void {
    const member = this.#members.get(peer);
    if (this.#stopped || member?.state !== 'alive' || member.probing) return;
    void this.#probe(member);
  }

  /** Takes in the current member list (call when membership changes). */
  refreshMembers(): void {
    this.#sync();
  }

  /**
   * Takes in the member list. Members known when probing starts are alive "since ever" (0);
   * members that join later are alive since they were first seen.
   */
  #sync(sinceMs = this.#init.clock.now()): void {
    const list = this.#init.members();
    // The member list changes rarely: the same members in the same order have nothing new.
    if (sameList(list, this.#syncedMembers)) return;
    this.#syncedMembers = list;
    this.#bump(null);
    const members = new Set(list);
    members.delete(this.#self);
    for (const peer of members) {
      if (!this.#members.has(peer)) this.#members.set(peer, { peer, state: 'alive', incarnation: 0, since: sinceMs, upSince: sinceMs, probing: false, removed: false });
    }
    for (const [peer, member] of this.#members) {
      if (members.has(peer)) continue;
      // No longer a member (revoked): no longer probed or reported, nor gossiped about.
      if (member.suspicion !== undefined) this.#init.clock.clearTimeout(member.suspicion.timer);
      member.removed = true;
      this.#members.delete(peer);
      this.#gone.delete(peer);
      this.#broadcasts.delete(peer);
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#expectedTickAt = this.#init.clock.now() + delayMs;
    this.#timer = this.#init.clock.setTimeout(() => this.#tick(), delayMs);
  }

  #tick(): void {
    const { clock } = this.#init;
    // Lifeguard's local health: a timer that fires late means this node is starved, not its peers.
    const lateMs = clock.now() - this.#expectedTickAt;
    if (lateMs > this.#config.periodMs / 2) this.#health = Math.min(MAX_HEALTH_MULTIPLIER, this.#health + 1);
    else if (this.#health > 1) this.#health--;
    this.#sync();
    const target = this.#nextTarget();
    if (target !== undefined) void this.#probe(target);
    if (++this.#ticks % this.#config.deadProbeEvery === 0) this.#probeOneGone();
    this.#schedule(this.#config.periodMs);
  }

  /** Pings one dead or left member: if it is back (restarted, or a partition healed), it answers. */
  #probeOneGone(): void {
    if (this.#gone.size === 0) return;
    // In member order (insertion), so the pick depends on the seed alone.
    const gone = [...this.#gone] as PeerId[];
    const peer = gone[this.#init.random.int(gone.length)]!;
    void this.#request(peer, this.#message('ping', this.#piggyback(false, peer)), this.#config.ackTimeoutMs);
  }

  #message<T extends 'ping' | 'ack' | 'nack'>(type: T, piggyback: Update[], seq = ++this.#seq): SwimMessage {
    return { type, body: { seq, inc: this.#incarnation, updates: piggyback } } as SwimMessage;
  }

  /**
   * Every message names its sender's incarnation: a higher one than this node holds means the
   * sender is alive (it restarted, or refuted); the same one for a member held dead means it does
   * not know, so it is told (and will refute).
   */
  #heard(peer: string, incarnation: number, member: Member | undefined): void {
    if (member === undefined) return;
    if (incarnation > member.incarnation) {
      this.#set(peer, member, 'alive', incarnation);
      return;
    }
    if (member.state === 'suspect' && member.suspicion !== undefined) {
      // It just spoke to this node: whatever others say, it is not dead yet. The suspicion starts
      // over (it ends only after a whole timeout of silence) until the member's refutation
      // arrives; a starved member that answers late is not declared dead for being slow.
      this.#init.clock.clearTimeout(member.suspicion.timer);
      const startedAt = this.#init.clock.now();
      member.suspicion = { startedAt, timer: this.#suspicionTimer(peer, startedAt, 0), confirmations: new Set() };
    }
    if (member.state === 'dead' || member.state === 'suspect') this.#enqueue({ peer, state: member.state, incarnation: member.incarnation });
  }

  /**
   * The next member of the shuffled round-robin order that is still worth probing (alive or
   * suspect, and in the view); the order is dealt again, from the view, once it runs out. Members
   * are checked as they come up rather than the whole order at every period (that pass, and
   * building the view at every period, were a tenth of a simulated fleet's time).
   */
  #nextTarget(): Member | undefined {
    const { view, inView } = this.#init;
    let viewSet: ReadonlySet<string> | undefined;
    // The init's own test where it has one (no closure is made at every period then).
    const inViewNow = view === undefined ? undefined : (inView ?? ((peer: string) => (viewSet ??= new Set(view())).has(peer)));
    while (this.#probeOrder.length > 0) {
      const member = this.#current(this.#probeOrder.shift()!);
      if (member !== undefined && this.#probeable(member, inViewNow)) return member;
    }
    // Dealt from the view itself: each is in it, so only its state is checked (asking the view
    // again of each was a connection and an admission look-up a probe, in cold per-node tables).
    const dealt: Member[] = [];
    for (const peer of view === undefined ? this.#members.keys() : [...view()].sort()) {
      const member = this.#members.get(peer);
      if (member !== undefined && this.#probeable(member, undefined)) dealt.push(member);
    }
    this.#probeOrder = shuffled(this.#init.random, dealt);
    return this.#probeOrder.shift();
  }

  /**
   * The entry `member` was taken from, as it is now: itself, unless it has since left the
   * members (then the peer's entry now, if it is a member again).
   */
  #current(member: Member): Member | undefined {
    return member.removed ? this.#members.get(member.peer) : member;
  }

  /** Whether `member` is worth probing in turn: alive or suspect, and in the view (`inView`, when bounded). */
  #probeable(member: Member, inView: ((peer: string) => boolean) | undefined): boolean {
    const state = member.state;
    return (state === 'alive' || state === 'suspect') && (inView === undefined || inView(member.peer));
  }

  /** Probes `member`: directly, then through others; suspects it if neither answers. */
  async #probe(member: Member): Promise<void> {
    member.probing = true;
    try {
      await this.#probeOnce(member);
    } finally {
      member.probing = false;
    }
  }

  async #probeOnce(target: Member): Promise<void> {
    const peer = target.peer as PeerId;
    const timeoutMs = this.#config.ackTimeoutMs * this.#health;
    const direct = await this.#request(peer, this.#message('ping', this.#piggyback(false, peer, target)), timeoutMs, target);
    if (direct?.type === 'ack') return;
    const candidates = this.#init.view === undefined ? [...this.#members.keys()] : [...this.#init.view()].sort();
    const helpers = shuffled(
      this.#init.random,
      candidates.filter((p) => p !== peer && this.#members.get(p)?.state === 'alive' && this.#init.isAdmitted(p as PeerId)) as PeerId[],
    ).slice(0, this.#config.indirectProbes);
    const remainingMs = Math.max(timeoutMs, this.#config.periodMs * this.#health - timeoutMs);
    const answers = await Promise.all(
      helpers.map((helper) => this.#request(helper, { type: 'ping-req', body: { seq: ++this.#seq, inc: this.#incarnation, target: peer, updates: this.#piggyback() } }, remainingMs)),
    );
    if (answers.some((answer) => answer?.type === 'ack')) return;
    if (this.#stopped) return;
    const member = this.#members.get(peer);
    if (member === undefined || member.state !== 'alive') return;
    this.#suspect(peer, member.incarnation, this.#self);
  }

  /** One request, one answer; undefined when none came in time (or the exchange failed). `member`: `peer`'s entry, when the caller has it. */
  async #request(peer: PeerId, message: SwimMessage, timeoutMs: number, member?: Member): Promise<SwimMessage | undefined> {
    let answer: SwimMessage | undefined;
    try {
      answer = await exchange(this.#init.transport, this.#init.clock, peer, swimProtocol, message, timeoutMs);
    } catch {
      return undefined;
    }
    if (answer === undefined) return undefined;
    if (answer.type !== 'ack' && answer.type !== 'nack') {
      this.#init.penalties.record(peer, 'swim:protocol');
      return undefined;
    }
    this.#apply(answer.body.updates, peer);
    // A nack comes from a helper that could not reach the target: the helper itself is alive.
    this.#heard(peer, answer.body.inc, member === undefined ? this.#members.get(peer) : this.#current(member));
    return answer;
  }

  /** Answers one request from `peer` (a ping, or a ping-req it asks this node to make for it). */
  async #serve(peer: PeerId, frame: Uint8Array): Promise<Uint8Array> {
    const admitted = this.#init.isAdmitted(peer) || (await this.#init.whenAdmitted?.(peer)) === true;
    // Not a wire fault: a new connection's admission may lose the race. Nothing is served.
    if (!admitted) throw new ExchangeAbortedError('not admitted to this fleet');
    const request = decodeMessage(swimProtocol, frame);
    if (request.type === 'ack' || request.type === 'nack') throw new WireError('protocol', `unexpected ${request.type}`);
    this.#apply(request.body.updates, peer);
    // Looked up once for both (applying updates never adds or removes a member).
    const member = this.#members.get(peer);
    this.#heard(peer, request.body.inc, member);
    if (request.type === 'ping') return encodeMessage(swimProtocol, this.#message('ack', this.#piggyback(false, peer, member), request.body.seq));
    // Probe the target for the asker, within what is left of its period.
    const answer = await this.#request(request.body.target as PeerId, this.#message('ping', this.#piggyback(false, request.body.target)), this.#config.ackTimeoutMs * this.#health);
    return encodeMessage(swimProtocol, this.#message(answer?.type === 'ack' ? 'ack' : 'nack', this.#piggyback(), request.body.seq));
  }

  /** Counts what was wrong with a request against the peer that sent it. */
  #serveFailed(peer: PeerId, error: Error): void {
    const code = error instanceof WireError ? error.code : error.name === 'FrameTooLargeError' ? 'oversized' : undefined;
    if (code !== undefined) this.#init.penalties.record(peer, `swim:${code}`);
  }

  /** Applies updates heard from `from` (SWIM's precedence: higher incarnation, then the worse state). */
  #apply(received: readonly Update[], from: string): void {
    for (const u of received) {
      if (u.peer === this.#self) {
        // Suspected or declared dead while alive: refute with a higher incarnation.
        if ((u.state === 'suspect' || u.state === 'dead') && u.incarnation >= this.#incarnation) {
          this.#incarnation = u.incarnation + 1;
          this.#enqueue({ peer: this.#self, state: 'alive', incarnation: this.#incarnation });
        }
        continue;
      }
      const member = this.#members.get(u.peer);
      if (member === undefined) continue; // Not a member by this node's records: ignored.
      if (u.state === 'alive') {
        if (u.incarnation > member.incarnation) this.#set(u.peer, member, 'alive', u.incarnation);
      } else if (u.state === 'suspect') {
        if (member.state === 'suspect' && u.incarnation === member.incarnation) this.#confirm(u.peer, member, from);
        else if ((member.state === 'alive' && u.incarnation >= member.incarnation) || u.incarnation > member.incarnation) this.#suspect(u.peer, u.incarnation, from);
        else if (member.state === 'alive') this.#vouch(u.peer, member.incarnation);
      } else if (u.state === 'dead') {
        // Another member's verdict is a suspicion here, with a confirmation: only this node's own
        // suspicion timeout declares a member dead. A node back from a partition holds everyone
        // dead and says so; this way the members it names refute before anyone holds them dead.
        if (member.state === 'dead' || member.state === 'left') continue;
        if (u.incarnation < member.incarnation) {
          if (member.state === 'alive') this.#vouch(u.peer, member.incarnation);
          continue;
        }
        if (member.state === 'suspect' && u.incarnation === member.incarnation) this.#confirm(u.peer, member, from);
        else this.#suspect(u.peer, u.incarnation, from);
      } else if (u.incarnation < member.incarnation) {
        // A leave older than the incarnation held alive: the member came back (restarted) and
        // the sender missed it; told the newer alive, it stops holding the member gone.
        if (member.state === 'alive') this.#vouch(u.peer, member.incarnation);
      } else if (member.state !== 'dead' && member.state !== 'left') {
        this.#set(u.peer, member, u.state, u.incarnation);
      }
    }
  }

  /**
   * A suspicion, death or leave of an incarnation older than the one this node holds alive: its
   * sender never heard the newer one. A member's first incarnation heard is not gossiped on
   * (see {@link Swim.#set}), so in a large fleet with bounded views many nodes hold members they
   * never heard from at incarnation 0, and the member refutes only a suspicion of its own
   * incarnation or newer. Told the newer alive, the sender drops its suspicion (a higher
   * incarnation wins) instead of holding the member dead until it probes it again. An update
   * already queued unchanged is left as it is (repeats of the stale verdict do not keep it
   * queued for ever).
   */
  #vouch(peer: string, incarnation: number): void {
    const queued = this.#broadcasts.get(peer)?.update;
    if (queued?.state === 'alive' && queued.incarnation === incarnation) return;
    this.#enqueue({ peer, state: 'alive', incarnation });
  }

  #suspect(peer: string, incarnation: number, by: string): void {
    const member = this.#members.get(peer);
    if (member === undefined) return;
    if (member.suspicion !== undefined) this.#init.clock.clearTimeout(member.suspicion.timer);
    const startedAt = this.#init.clock.now();
    member.suspicion = { startedAt, timer: this.#suspicionTimer(peer, startedAt, 0), confirmations: new Set(by === this.#self ? [] : [by]) };
    this.#set(peer, member, 'suspect', incarnation);
    // Suspected on another member's word: ask it directly, telling it so; a live member refutes.
    if (by !== this.#self && !this.#stopped) void this.#request(peer as PeerId, this.#message('ping', this.#piggyback(false, peer)), this.#config.ackTimeoutMs * this.#health);
  }

  /** Lifeguard: each independent confirmation brings the deadline closer to its minimum. */
  #confirm(peer: string, member: Member, by: string): void {
    const suspicion = member.suspicion;
    if (suspicion === undefined || suspicion.confirmations.has(by) || by === this.#self) return;
    suspicion.confirmations.add(by);
    this.#init.clock.clearTimeout(suspicion.timer);
    suspicion.timer = this.#suspicionTimer(peer, suspicion.startedAt, suspicion.confirmations.size);
  }

  #suspicionTimer(peer: string, startedAt: number, confirmations: number): TimerId {
    const { suspicionMinMs, suspicionMaxMs, suspicionConfirmations } = this.#config;
    const fraction = Math.log(confirmations + 1) / Math.log(suspicionConfirmations + 1);
    const timeoutMs = Math.max(suspicionMinMs, suspicionMaxMs - (suspicionMaxMs - suspicionMinMs) * Math.min(1, fraction)) * this.#health;
    const remaining = Math.max(0, startedAt + timeoutMs - this.#init.clock.now());
    return this.#init.clock.setTimeout(() => {
      const member = this.#members.get(peer);
      if (member === undefined || member.state !== 'suspect') return;
      this.#set(peer, member, 'dead', member.incarnation);
    }, remaining);
  }

  #set(peer: string, member: Member, state: MemberState, incarnation: number): void {
    const previous = member.state;
    if (state !== 'suspect' && member.suspicion !== undefined) {
      this.#init.clock.clearTimeout(member.suspicion.timer);
      member.suspicion = undefined;
    }
    if (member.incarnation !== incarnation || previous !== state) this.#bump(peer);
    // The first incarnation heard of a member held alive changes nothing anyone else holds of it:
    // it is not gossiped on (each member announces its own). At a fleet's start every node learns
    // every other's incarnation once, and relaying each of those N² first hearings kept hundreds
    // of updates queued on every node for a minute: a fresh death waited behind them, and picking
    // each message's updates scanned them all (docs/PLACEMENT.md §Failure detection).
    const news = !(state === 'alive' && previous === 'alive' && member.incarnation === 0);
    member.incarnation = incarnation;
    if (previous !== state) {
      member.state = state;
      member.since = this.#init.clock.now();
      if ((state === 'alive' || state === 'suspect') && (previous === 'dead' || previous === 'left')) member.upSince = member.since;
      if (state === 'dead' || state === 'left') this.#gone.add(peer);
      else this.#gone.delete(peer);
      this.#init.log.info('member state changed', { peer, state, previous, incarnation });
      this.#init.onChange?.(peer, state, previous);
    }
    if (news) this.#enqueue({ peer, state, incarnation });
  }

  #enqueue(u: Update): void {
    // Deleted first, so the map's order is the order updates were last enqueued in (newest last).
    this.#broadcasts.delete(u.peer);
    this.#broadcasts.set(u.peer, { update: u, sent: 0 });
  }

  /**
   * The updates to piggyback: least sent first, the newest first among those sent as often; each
   * retired after enough sends. A message to a
   * member this node suspects (or holds dead) leads with that verdict, so the member learns of it
   * at once and refutes (Lifeguard's buddy system).
   */
  #piggyback(all = false, to?: string, member: Member | undefined = to === undefined ? undefined : this.#members.get(to)): Update[] {
    const told: Update | undefined = member !== undefined && (member.state === 'suspect' || member.state === 'dead') ? { peer: to!, state: member.state, incarnation: member.incarnation } : undefined;
    const rest = this.#gossip(all);
    return told === undefined ? rest : [told, ...rest.filter((u) => u.peer !== to)].slice(0, all ? 32 : this.#config.updatesPerMessage);
  }

  #gossip(all: boolean): Update[] {
    const limit = Math.ceil(this.#config.retransmitMultiplier * Math.log10(this.#members.size + 2));
    const chosen = leastSent(this.#broadcasts.values(), all ? 32 : this.#config.updatesPerMessage);
    for (const entry of chosen) {
      entry.sent++;
      if (entry.sent >= limit) this.#broadcasts.delete(entry.update.peer);
    }
    return chosen.map((entry) => entry.update);
  }
}

/**
 * The `count` entries sent least often, least first, and among entries sent equally often the
 * later ones (the newest) first: what a stable sort by `sent` of the entries in reverse order,
 * then taking the first `count`, gives — in one pass without copying or sorting every entry (a
 * large fleet's start leaves a thousand updates to spread). Newest first: while a fleet's start
 * keeps every member learning of hundreds of others, each newly learned "alive" is as unsent as a
 * fresh "dead", and oldest-first let the death wait behind them (at 300 nodes the next owner of
 * a singleton heard of its owner's death from one message in 3 s; docs/PLACEMENT.md).
 * @internal Exported for its test.
 */
export function leastSent<E extends { readonly sent: number }>(entries: Iterable<E>, count: number): E[] {
  const out: E[] = [];
  if (count <= 0) return out;
  for (const entry of entries) {
    if (out.length === count && entry.sent > out[count - 1]!.sent) continue;
    // Before every entry sent as often (it is newer) and after every one sent less.
    let at = out.length;
    while (at > 0 && out[at - 1]!.sent >= entry.sent) at--;
    out.splice(at, 0, entry);
    if (out.length > count) out.pop();
  }
  return out;
}
