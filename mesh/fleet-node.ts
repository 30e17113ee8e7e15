import {
  FLEET_DOC_ID,
  TASK_RETENTION_DAYS,
  type FleetDocument,
  type FleetFounding,
  type FleetView,
  type NodeObservation,
  type NodeStateDocument,
  type NodeStateView,
  foundFleet,
  nodeDocId,
  parseDocId,
  type DocId,
  readFleet,
  readNodeState,
  type Decision,
  recordDecision,
  writeObservation,
  type AdmissionRecord,
  type LostAdmission,
  type MembershipMember,
  type StoredGrant,
  UnknownMemberError,
  deriveMembership,
  recordAdmission,
  recordSecurityEvent,
  recordActivation,
  type ActivationRecord,
  sameActivationRecords,
  SECURITY_EVENTS_MAX,
  type SecurityEventView,
  type FleetEvent,
  dayOf,
  type InstanceObservation,
  type ModuleVersion,
  type PromotionThresholds,
  type PromotionVerdict,
  evaluatePromotion,
  promotionObservations,
} from '../crdt-schema/index.ts';
import { sameList } from './same-list.ts';
import { DesiredState } from './catalog/desired-state.ts';
import { TaskRecords } from './catalog/task-records.ts';
import { ModuleReport } from './catalog/module-report.ts';
import { RevocationCutWatch } from './catalog/revocation-watch.ts';
import { TaskRetention } from './catalog/task-retention.ts';
import { PoolRecords } from './catalog/pool-records.ts';
import { OperationRefusedError } from './errors.ts';
import { EventLog, eventIdOf } from './events/event-log.ts';
import { grantProblem, grantSignatureCheck } from './trust/grants.ts';
import { DecisionVerifier, decisionProblem, fleetChangeProblem } from './trust/decisions.ts';
import { isCertifiedOperator } from './trust/operator-auth.ts';
import { type JoinInfo, type JoinMessage, JoinRefusedError, joinProtocol, peerIdOfAddress } from './join/index.ts';
import { ConnectionKeeper } from './keeper.ts';
import { type MemberState, Swim } from './membership/swim.ts';
import type { Logger } from './logger.ts';
import { type Clock, type TimerId, TimeoutError, withTimeout } from './ports/clock.ts';
import type { ModuleInventory } from './ports/module-inventory.ts';
import type { Random } from './ports/random.ts';
import type { Storage } from './ports/storage.ts';
import { type AccessPolicy, type FrameStream, Listeners, type PeerId, type Transport } from './ports/transport.ts';
import type { SignatureCheck, SignatureVerifier } from './ports/signature-verifier.ts';
import { DocStore, type DocumentInterner, Replicator, type SealSigner, type SessionStats, actorPrefixFor } from './replication/index.ts';
import { Admission, storeCredentialChain } from './trust/admission.ts';
import type { Credential } from './trust/credentials.ts';
import { InProcessVerifier } from './trust/in-process-verifier.ts';
import { SealVerifier } from './trust/seal-verifier.ts';
import { sha256Hex } from './trust/keys.ts';
import { PeerPenalties, WireError, decodeCbor, decodeMessage, encodeCbor, encodeMessage, firstFrame, s } from './wire/index.ts';
import { rememberedIn, setBounded } from './bounded-map.ts';

/** Facts about the machine that the node publishes in its observed-state document. */
export interface HostFacts {
  readonly hostname: string;
  readonly arch: string;
  readonly platform: string;
  readonly versions: Readonly<Record<string, string>>;
}

export interface FleetNodePorts {
  /** This node's libp2p Ed25519 key: it seals the node's own document. */
  readonly identity: SealSigner;
  /** Checks seals; in-process when absent (tests, simulator). */
  readonly signatureVerifier?: SignatureVerifier;
  readonly transport: Transport;
  readonly storage: Storage;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly host: HostFacts;
  /** Shares identical document versions with other nodes in this process (the simulator). */
  readonly documentInterner?: DocumentInterner;
  /** Which module artifacts this machine runs (docs/CATALOG.md §Promotion evidence); the node reports none when absent. */
  readonly modules?: ModuleInventory;
}

/** What a node remembers about its membership, under `['node', 'config']`. */
interface NodeConfig {
  readonly fleetId: string;
  readonly bootstrapPeer?: string;
  readonly bootstrapAddrs?: readonly string[];
}

const configShape = s.object({
  fleetId: s.string({ min: 32, max: 32 }),
  bootstrapPeer: s.optional(s.string({ max: 128 })),
  bootstrapAddrs: s.optional(s.array(s.string({ max: 512 }), { max: 16 })),
});

const CONFIG_KEY = ['node', 'config'];
const JOIN_TIMEOUT_MS = 10_000;
/** Membership is derived again at most this often while documents stream in. */
const MEMBERSHIP_COALESCE_MS = 20;
const GRANT_RETRY_MS = 1_000;
const SECURITY_EVENT_FLUSH_MS = 1_000;
/** How far in the future (operator clock ahead of this node's) a decision may be dated. */
const MAX_DECISION_SKEW_MS = 5 * 60_000;

/** Thrown when a data directory has no fleet yet and no join string was given. */
export class NotInFleetError extends Error {
  override name = 'NotInFleetError';
}

export { OperationRefusedError } from './errors.ts';

/** How a member looks from this node. Liveness comes from the mesh, never from documents. */
export interface MemberStatus {
  readonly peerId: string;
  readonly name: string;
  /** As failure detection (SWIM) sees it; this node itself is always alive. */
  readonly state: MemberState;
  /** Whether this node holds a connection to it now. */
  readonly connected: boolean;
  readonly self: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly joinedAt: number;
  readonly hostname?: string;
  readonly arch?: string;
  readonly addrs: readonly string[];
  readonly api?: string;
  readonly startedAt?: number;
}

export type FleetNodeEvent =
  | { readonly type: 'doc:changed'; readonly docId: string; readonly origin: string }
  | { readonly type: 'peer:connect'; readonly peerId: string }
  | { readonly type: 'peer:disconnect'; readonly peerId: string }
  | { readonly type: 'member:state'; readonly peerId: string; readonly state: MemberState; readonly previous: MemberState | undefined }
  | { readonly type: 'event:new'; readonly event: FleetEvent };

/** Reads the node's fleet id from storage, if it belongs to a fleet. */
export async function readFleetIdFromStorage(storage: Storage): Promise<string | undefined> {
  return (await readConfig(storage))?.fleetId;
}

async function readConfig(storage: Storage): Promise<NodeConfig | undefined> {
  const bytes = await storage.get(CONFIG_KEY);
  return bytes === undefined ? undefined : configShape.check(decodeCbor(bytes));
}

async function writeConfig(storage: Storage, config: NodeConfig): Promise<void> {
  await storage.batch([{ type: 'put', key: CONFIG_KEY, value: encodeCbor(config) }], { sync: true });
}

/**
 * Makes `storage` a member's: its credential chain and the member it joined through. What a
 * successful join leaves behind (the simulator also builds fleets this way, offline).
 */
export async function adoptMembershipInStorage(storage: Storage, membership: { fleetId: string; bootstrapPeer: string; bootstrapAddrs: readonly string[]; chain: readonly Credential[] }): Promise<void> {
  await storeCredentialChain(storage, membership.chain);
  await writeConfig(storage, { fleetId: membership.fleetId, bootstrapPeer: membership.bootstrapPeer, bootstrapAddrs: membership.bootstrapAddrs });
}

/**
 * Plain views of document versions, by the Automerge document they were read from (which never
 * changes: a store replaces it with a new one). Where documents are shared between nodes in one
 * process (the simulator's interner), so are their views: a thousand nodes read a member's
 * document once, not a thousand times.
 */
const NO_MEMBERS: readonly MembershipMember[] = Object.freeze([]);

const nodeViews = new WeakMap<object, NodeStateView | undefined>();
const fleetViews = new WeakMap<object, FleetView | undefined>();

/**
 * Memberships derived, by their inputs (the digests of the fleet document and of every document
 * holding admissions), with the grant verdicts they rest on: membership is a function of those,
 * so the nodes of one process that hold the same versions (a simulated fleet: a thousand nodes
 * each deriving the same thousand members) derive it once. A real node holds one or two.
 */
const derivedMemberships = new Map<string, { readonly key: string; readonly fleetId: string; readonly verdicts: ReadonlyArray<readonly [string, boolean]>; readonly membership: { members: MembershipMember[]; lost: LostAdmission[] }; readonly members: ReadonlySet<string> }>();
const DERIVED_MEMBERSHIPS_KEPT = 4;

/**
 * A member's id and its document's id, one copy of each for the process however many places
 * name the member (a simulated fleet's thousand nodes each keep a view of every member's state).
 */
const memberIds = new Map<string, { readonly peer: string; readonly docId: DocId }>();
const MEMBER_IDS_KEPT = 65_536;

/**
 * The peer whose document `id` (`node/…`) is, the same string each time: a peer id sliced off
 * anew had its hash computed again at every map lookup it keyed (a large fleet's start reads
 * every node document per node, several times: a million lookups at 1,000 nodes).
 */
function peerOfNodeDoc(id: string): string {
  return rememberedIn(nodeDocPeers, id, MEMBER_IDS_KEPT, () => id.slice('node/'.length));
}
const nodeDocPeers = new Map<string, string>();

/** Each grant's signature check, built once per grant object (views of one version share them). */
const grantChecks = new WeakMap<StoredGrant, SignatureCheck | null>();
function grantCheckOf(grant: StoredGrant): SignatureCheck | undefined {
  let check = grantChecks.get(grant);
  if (check === undefined) grantChecks.set(grant, (check = grantSignatureCheck(grant) ?? null));
  return check ?? undefined;
}

/**
 * A value read from each member's node document, gathered in one map (in member order) that is
 * built again only when the members change or a changed document's value did: a large fleet's
 * nodes take in document changes many times a second, and reading a thousand node documents
 * for each (the keeper's addresses, placement's activation records) was a tenth of a 1,000-node
 * simulated fleet's first seconds. Told of changed documents by {@link FromMembers.changed}.
 */
class FromMembers<V> {
  readonly #keep: (value: V) => boolean;
  readonly #same: (a: V, b: V) => boolean;
  #built: { readonly members: ReadonlySet<string>; readonly map: Map<string, V> } | undefined;
  readonly #changed = new Set<string>();

  /** `keep`: whether a member with this value is in the map; `same`: values that need no new map. */
  constructor(keep: (value: V) => boolean, same: (a: V, b: V) => boolean = (a, b) => a === b) {
    this.#keep = keep;
    this.#same = same;
  }

  /** `peer`'s document changed. */
  changed(peer: string): void {
    if (this.#built !== undefined) this.#changed.add(peer);
  }

  /**
   * The map of `members` (then `also`) whose value `read` gives and `keep` keeps, finished by
   * `finish` when built. `also` (this node) is read again every time: its own durable writes are
   * heard of only once on disk, while readers see them at once, and a map kept from between the
   * two went on without its write (its records then said it ran none of what it had activated).
   */
  of(members: ReadonlySet<string>, also: string | undefined, read: (peer: string) => V | undefined, finish?: (map: Map<string, V>) => void): ReadonlyMap<string, V> {
    const built = this.#built;
    if (also !== undefined && built !== undefined) this.#changed.add(also);
    if (built !== undefined && built.members === members && (this.#changed.size === 0 || this.#unchanged(built.map, read))) {
      this.#changed.clear();
      return built.map;
    }
    this.#changed.clear();
    const map = new Map<string, V>();
    for (const peer of also === undefined ? members : [...members, also]) {
      const value = read(peer);
      if (value !== undefined && this.#keep(value)) map.set(peer, value);
    }
    finish?.(map);
    this.#built = { members, map };
    return map;
  }

  /** Whether every changed member's value is as the map has it. */
  #unchanged(map: ReadonlyMap<string, V>, read: (peer: string) => V | undefined): boolean {
    for (const peer of this.#changed) {
      const value = read(peer);
      const kept = value !== undefined && this.#keep(value) ? value : undefined;
      const held = map.get(peer);
      if (kept === undefined ? held !== undefined : held === undefined || !this.#same(held, kept)) return false;
    }
    return true;
  }
}

function viewOf<D, V>(views: WeakMap<object, V | undefined>, doc: D | undefined, read: (doc: D | undefined) => V | undefined): V | undefined {
  if (doc === undefined || doc === null || typeof doc !== 'object') return read(doc);
  const known = views.get(doc);
  if (known !== undefined || views.has(doc)) return known;
  const view = read(doc);
  views.set(doc, view);
  return view;
}

function actorIdFor(peer: PeerId, random: Random): string {
  return actorPrefixFor(peer) + Buffer.from(random.bytes(4)).toString('hex');
}

/**
 * Creates a fleet in `storage`: the fleet document (root key, first operator, this node as
 * founder) and the node's membership record. Needs no network.
 */
export async function foundFleetInStorage(
  ports: Pick<FleetNodePorts, 'storage' | 'clock' | 'random' | 'log'>,
  peer: PeerId,
  founding: FleetFounding,
): Promise<void> {
  if ((await readConfig(ports.storage)) !== undefined) throw new OperationRefusedError('this data directory already belongs to a fleet');
  const store = await DocStore.open({
    storage: ports.storage,
    clock: ports.clock,
    actorId: actorIdFor(peer, ports.random),
    log: ports.log,
    fleetId: founding.fleetId,
  });
  await store.change<FleetDocument>(FLEET_DOC_ID, (draft) => foundFleet(draft, founding), { durable: true });
  await writeConfig(ports.storage, { fleetId: founding.fleetId });
}

/**
 * One node's core: replicated documents, the replication and join protocols, the connection
 * keeper and the node's own observed state. Everything reaches the outside world through ports,
 * so the simulator runs exactly this.
 */
export class FleetNode {
  readonly peer: PeerId;
  readonly fleetId: string;
  readonly store: DocStore;
  readonly replicator: Replicator;
  readonly penalties: PeerPenalties;
  readonly #ports: FleetNodePorts;
  readonly #config: NodeConfig;
  readonly #keeper: ConnectionKeeper;
  readonly #events = new Listeners<FleetNodeEvent>();
  /** Member peer ids as last derived from admission records (recomputed once per tick after changes). */
  #members: ReadonlySet<string> = new Set<string>();
  #memberIds: { of: ReadonlySet<string>; ids: readonly string[] } | undefined;
  /** What membership was last derived from (fleet and admitting documents' digests). */
  #membershipInputs: string | undefined;
  readonly #membershipDirty = new Set<string>();
  readonly #decisions = new DecisionVerifier();
  #fleetView: { digest: string; view: FleetView | undefined } | undefined;
  readonly #pendingEvents = new Map<string, { kind: string; peer: string; docId: string; reason: string; at: number; count: number }>();
  #eventsTimer: TimerId | undefined;
  /** Revoked peers as last applied to admission and the transport. */
  #revoked = new Set<string>();
  /** Peers cut off by fault injection (tests and drills): refused like revoked ones, until healed. */
  #isolated = new Set<string>();
  /** Credentials presented on each connection (docs/SECURITY.md §Admission). */
  readonly admission: Admission;
  /** Failure detection over the admitted members (docs/PLACEMENT.md). */
  readonly swim: Swim;
  /** The fleet event log: replicated, time-bucketed, retired by age (docs/PLACEMENT.md). */
  readonly events: EventLog;
  /** The operator-declared catalog (modules, templates, assignments, pools) and task requests. */
  readonly desired: DesiredState;
  /** Task runs and dispatcher leases (`tasks/<peer>` documents). */
  readonly tasks: TaskRecords;
  /** Deletes task buckets past their retention (docs/CATALOG.md §Tasks: retention). */
  readonly #taskRetention: TaskRetention;
  readonly #moduleReport: ModuleReport | undefined;
  readonly #revocationWatch: RevocationCutWatch;
  /** Pool claims and members' held claims (`pools/<peer>` documents). */
  readonly pools: PoolRecords;
  #membership: { members: MembershipMember[]; lost: LostAdmission[] } = { members: [], lost: [] };
  #membershipTimer: TimerId | undefined;
  #lostLogged = false;
  /** Grant signatures checked so far (by signature): true when it verifies; each is checked once. */
  readonly #grantSignatures = new Map<string, boolean>();
  /** Bumped whenever a grant verdict is set or dropped. */
  #verdictsVersion = 0;
  /** The store version and verdicts version membership was last found up to date at. */
  #membershipAt: { readonly store: number; readonly verdicts: number } | undefined;
  /** A batch of grant signatures being checked; membership is derived again when it is done. */
  #verifyingGrants: Promise<void> | undefined;
  readonly #verifier: SignatureVerifier;
  #apiUrl: string | undefined;
  #startedAt = 0;
  #unsubscribe: Array<() => void> = [];
  /** Members whose documents hold admissions, as of the store's id list `ids` ({@link FleetNode.#admitters}). */
  #admitterIndex: { readonly ids: readonly string[]; readonly admitters: Set<string>; sorted: string[] | undefined } | undefined;
  /** Node documents changed since the admitters were last brought up to date. */
  readonly #admittersDirty = new Set<string>();
  /** Members' activation records (`activationRecords()`), followed from their documents' changes. */
  readonly #records = new FromMembers<Readonly<Record<string, ActivationRecord>>>((singletons) => Object.keys(singletons).length > 0, sameActivationRecords);
  /** Members' addresses (`dialCandidates()`), followed from their documents' changes. */
  readonly #candidates = new FromMembers<readonly string[]>(() => true, sameList);

  private constructor(ports: FleetNodePorts, config: NodeConfig, store: DocStore) {
    this.#ports = ports;
    this.#config = config;
    this.peer = ports.transport.localPeer;
    this.fleetId = config.fleetId;
    this.store = store;
    this.#verifier = ports.signatureVerifier ?? new InProcessVerifier();
    this.penalties = new PeerPenalties({
      clock: ports.clock,
      onExceeded: (peer) => {
        ports.log.warn('disconnecting a peer that sent too much bad input', { peer });
        void ports.transport.hangUp(peer);
      },
    });
    this.replicator = new Replicator({
      transport: ports.transport,
      store,
      clock: ports.clock,
      log: ports.log,
      penalties: this.penalties,
      fleetId: config.fleetId,
      isPeerAllowed: (peer) => this.isPeerAllowed(peer),
      acceptsDocument: (docId) => this.#acceptsDocument(docId),
      sealVerifier: new SealVerifier(this.#verifier, config.fleetId),
      onRefused: ({ peer, docId, error }) => this.#noteSecurityEvent('security.change_refused', peer, docId, error.message),
      // Checked against the fleet as held (cached), or as received for a first copy.
      authorize: (docId, before, after) =>
        docId === FLEET_DOC_ID ? fleetChangeProblem(before, after, () => this.fleet() ?? readFleet(after), () => readFleet(after), this.#decisions) : this.desired.authorize(docId, before, after),
    });
    this.#keeper = new ConnectionKeeper({
      transport: ports.transport,
      clock: ports.clock,
      random: ports.random,
      log: ports.log,
      candidates: () => this.dialCandidates(),
      isCandidate: (peer) => peer !== this.peer && (this.#members.has(peer) || peer === this.#config.bootstrapPeer),
      // SWIM probes only connected members in turn: one this node never heard from and cannot
      // connect to is probed now.
      onDialFailed: (peer) => this.swim.dialFailed(peer),
    });
    this.admission = new Admission({
      transport: ports.transport,
      clock: ports.clock,
      log: ports.log,
      storage: ports.storage,
      penalties: this.penalties,
      identity: ports.identity,
      fleetId: config.fleetId,
      verifier: this.#verifier,
      policy: {
        isMember: (peer) => this.#members.has(peer),
        isFounder: (peer) => this.fleet()?.founder.peerId === peer,
        barredReason: (peer) => this.#barredReason(peer),
        trustedUntilRecords: (peer) => this.#trustedUntilRecords(peer),
        onAdmitted: () => this.replicator.refreshPeers(),
        hasRecords: () => this.#hasOwnRecords(),
      },
    });
    this.swim = new Swim({
      transport: ports.transport,
      clock: ports.clock,
      random: ports.random,
      log: ports.log,
      penalties: this.penalties,
      members: () => this.memberIds(),
      isAdmitted: (peer) => this.admission.isAdmitted(peer),
      // Probed in turn: the members this node holds admitted connections to (about the keeper's
      // target), so probing does not connect every node to every other.
      view: () => ports.transport.connectedPeers().filter((peer) => this.admission.isAdmitted(peer)),
      inView: (peer) => (ports.transport.isConnected === undefined ? ports.transport.connectedPeers().includes(peer as PeerId) : ports.transport.isConnected(peer as PeerId)) && this.admission.isAdmitted(peer as PeerId),
      whenAdmitted: (peer) => this.admission.whenAdmitted(peer, 1_000),
      onChange: (peerId, state, previous) => this.#events.emit({ type: 'member:state', peerId, state, previous }),
    });
    this.desired = new DesiredState({
      store,
      clock: ports.clock,
      fleet: () => this.fleet(),
      verifier: this.#decisions,
      promotionProblem: (version, thresholds) => this.promotionEvidence(version, thresholds).verdict.reason,
    });
    this.#moduleReport = ports.modules === undefined ? undefined : new ModuleReport({ inventory: ports.modules, store, self: this.peer, signer: ports.identity, clock: ports.clock, log: ports.log });
    this.tasks = new TaskRecords({ store, self: this.peer, signer: ports.identity, requestedAt: (taskId) => this.desired.tasks().tasks.get(taskId)?.requestedAt });
    this.#taskRetention = new TaskRetention({
      store,
      clock: ports.clock,
      log: ports.log,
      // An action's outcome and mark go a day after its request's bucket could have retired, and
      // only once this node holds the request no more (a node whose clock lags keeps both).
      afterBuckets: (now) => {
        const held = new Set(this.desired.tasks().actions.map((action) => action.id));
        return this.tasks.pruneInstanceActions(now - (TASK_RETENTION_DAYS + 2) * 86_400_000, (id) => held.has(id));
      },
    });
    this.#revocationWatch = new RevocationCutWatch({ clock: ports.clock, log: ports.log, self: this.peer, events: { has: (id) => this.events.has(id), emit: (input) => this.events.emit(input) }, cuts: () => this.desired.revocationCuts() });
    this.pools = new PoolRecords({ store, self: this.peer, signer: ports.identity });
    this.events = new EventLog({
      store,
      clock: ports.clock,
      random: ports.random,
      log: ports.log,
      self: this.peer,
      identity: ports.identity,
      isWriter: (peer) => this.#members.has(peer) && !this.#revoked.has(peer),
    });
    // Heard before any other listener, so membership derived on any change sees it as changed.
    this.#unsubscribe.push(
      store.onChanged(({ docId }) => {
        if (!docId.startsWith('node/')) return;
        this.#admittersDirty.add(docId);
        const peer = peerOfNodeDoc(docId);
        this.#records.changed(peer);
        this.#candidates.changed(peer);
      }),
    );
    this.#refreshMembership();
  }

  /** Opens the node on a data store that already belongs to a fleet. */
  static async open(ports: FleetNodePorts): Promise<FleetNode> {
    const config = await readConfig(ports.storage);
    if (config === undefined) throw new NotInFleetError('this data directory belongs to no fleet: run "powernode fleet init" or start with --join');
    const store = await DocStore.open({
      storage: ports.storage,
      clock: ports.clock,
      actorId: actorIdFor(ports.transport.localPeer, ports.random),
      log: ports.log,
      fleetId: config.fleetId,
      ...(ports.documentInterner === undefined ? {} : { interner: ports.documentInterner }),
    });
    return new FleetNode(ports, config, store);
  }

  /**
   * Joins the fleet of `join` through one of its bootstrap addresses, then opens the node. The
   * membership record is written only after a member accepted the token.
   */
  static async join(ports: FleetNodePorts, join: JoinInfo, name: string): Promise<FleetNode> {
    const existing = await readConfig(ports.storage);
    if (existing !== undefined) {
      if (existing.fleetId !== join.fleetId) {
        throw new OperationRefusedError(`this data directory belongs to fleet ${existing.fleetId}, not ${join.fleetId}: use another --data directory`);
      }
      ports.log.info('already a member of this fleet; ignoring the join string');
      return FleetNode.open(ports);
    }
    const { peer: bootstrapPeer, chain } = await redeem(ports, join, name);
    await adoptMembershipInStorage(ports.storage, { fleetId: join.fleetId, bootstrapPeer, bootstrapAddrs: join.addrs, chain });
    return FleetNode.open(ports);
  }

  /** Starts replication, the join service and the keeper, and publishes the observed state. */
  async start(options: { apiUrl?: string } = {}): Promise<void> {
    const { transport, clock } = this.#ports;
    this.#apiUrl = options.apiUrl;
    this.#startedAt = clock.now();
    // Membership as the stored admissions say, before any peer is let in.
    await this.#verifyingGrants;
    this.#refreshMembership();
    await this.admission.load();
    this.#revoked = new Set(Object.keys(this.fleet()?.revoked ?? {}));
    transport.setAccessPolicy(this.#accessPolicy());
    this.admission.start();
    this.replicator.start();
    transport.handle(joinProtocol.id, (stream) => void this.#serveJoin(stream), { maxFrameBytes: joinProtocol.maxFrameBytes });
    this.#unsubscribe.push(
      this.store.onChanged(({ docId, origin }) => {
        if (docId === FLEET_DOC_ID || docId.startsWith('node/')) this.#scheduleMembership(docId);
        this.#events.emit({ type: 'doc:changed', docId, origin });
      }),
      transport.on('peer:connect', (peerId) => this.#events.emit({ type: 'peer:connect', peerId })),
      transport.on('peer:disconnect', (peerId) => this.#events.emit({ type: 'peer:disconnect', peerId })),
      this.events.onEvent((event) => this.#events.emit({ type: 'event:new', event })),
    );
    this.events.start();
    this.#taskRetention.start();
    this.#revocationWatch.start();
    await this.publishObservation();
    await this.#moduleReport?.start();
    this.#keeper.start();
    this.swim.start();
  }

  async stop(): Promise<void> {
    // Tell the members this node leaves (bounded: one round of pings), then stop probing.
    await this.swim.leave().catch(() => {});
    this.swim.stop();
    this.#keeper.stop();
    this.admission.stop();
    this.events.stop();
    this.#taskRetention.stop();
    this.#revocationWatch.stop();
    this.#moduleReport?.stop();
    if (this.#eventsTimer !== undefined) this.#ports.clock.clearTimeout(this.#eventsTimer);
    if (this.#membershipTimer !== undefined) this.#ports.clock.clearTimeout(this.#membershipTimer);
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#ports.transport.unhandle(joinProtocol.id);
    await this.replicator.stop();
    this.store.close();
    await this.store.flush();
    await this.#ports.signatureVerifier?.close();
  }

  /** Resolves once the fleet document is held (a joining node waits for it), or times out. */
  async waitForFleet(timeoutMs = JOIN_TIMEOUT_MS): Promise<FleetView> {
    const present = this.fleet();
    if (present !== undefined) return present;
    let unsubscribe = (): void => {};
    const arrived = new Promise<FleetView>((resolve) => {
      unsubscribe = this.store.onChanged(({ docId }) => {
        const fleet = docId === FLEET_DOC_ID ? this.fleet() : undefined;
        if (fleet !== undefined) resolve(fleet);
      });
    });
    try {
      return await withTimeout(this.#ports.clock, arrived, timeoutMs, 'receiving the fleet document');
    } finally {
      unsubscribe();
    }
  }

  onEvent(listener: (event: FleetNodeEvent) => void): () => void {
    return this.#events.add(listener);
  }

  /**
   * Records what this node refused from a peer in its own document, so every node (and the
   * operator) sees it. Writes are batched to one per second, so a peer flooding forgeries costs
   * a counter, not a write per message.
   */
  #noteSecurityEvent(kind: string, peer: string, docId: string, reason: string): void {
    const key = `${kind}|${peer}|${docId}`;
    const pending = this.#pendingEvents.get(key);
    if (pending !== undefined) pending.count++;
    else if (this.#pendingEvents.size < SECURITY_EVENTS_MAX) this.#pendingEvents.set(key, { kind, peer, docId, reason, at: this.#ports.clock.now(), count: 1 });
    this.#ports.log.warn('recorded a security event', { kind, peer, docId, reason });
    // One fleet event per sender, document and day (the per-node record above keeps the counts).
    const id = eventIdOf(kind, peer, docId, dayOf(this.#ports.clock.now()));
    if (!this.events.has(id)) {
      void this.events
        .emit({ id, kind, severity: 'high', subject: peer, detail: `${peer}: ${reason}`.slice(0, 1_000), payload: { docId } })
        .catch((error: unknown) => this.#ports.log.error('recording a security event in the event log failed', { error: String(error) }));
    }
    if (this.#eventsTimer !== undefined) return;
    this.#eventsTimer = this.#ports.clock.setTimeout(() => {
      this.#eventsTimer = undefined;
      const events = [...this.#pendingEvents.values()];
      this.#pendingEvents.clear();
      void this.store
        .change<NodeStateDocument>(nodeDocId(this.peer), (draft) => {
          for (const event of events) recordSecurityEvent(draft, event);
        }, { signer: this.#ports.identity })
        .catch((error: unknown) => this.#ports.log.error('recording security events failed', { error: String(error) }));
    }, SECURITY_EVENT_FLUSH_MS);
  }

  /** Security events every node recorded, newest first, each with the node that saw it. */
  securityEvents(): Array<SecurityEventView & { observedBy: string }> {
    const events: Array<SecurityEventView & { observedBy: string }> = [];
    for (const id of this.store.ids()) {
      if (!id.startsWith('node/')) continue;
      const observer = peerOfNodeDoc(id);
      for (const event of this.nodeState(observer)?.securityEvents ?? []) events.push({ ...event, observedBy: observer });
    }
    return events.sort((a, b) => b.lastAt - a.lastAt);
  }

  /** The fleet document as plain data, read once per version (it folds every decision). */
  fleet(): FleetView | undefined {
    const digest = this.store.digest(FLEET_DOC_ID);
    if (digest === undefined) return undefined;
    if (this.#fleetView?.digest !== digest) this.#fleetView = { digest, view: viewOf(fleetViews, this.store.get(FLEET_DOC_ID), readFleet) };
    return this.#fleetView.view;
  }

  /**
   * A member's observed state, read once per version of its document (the view is kept by
   * document instance, which every node holding that version shares in a simulated fleet). No
   * map of its own by peer: at 1,000 nodes those were a million entries the collector marked.
   */
  nodeState(peer: string): NodeStateView | undefined {
    // The document id is checked once per peer (a regular expression), not on every read.
    const ids = rememberedIn(memberIds, peer, MEMBER_IDS_KEPT, () => ({ peer, docId: nodeDocId(peer) }));
    const doc = this.store.get(ids.docId);
    return doc === undefined ? undefined : viewOf(nodeViews, doc, readNodeState);
  }

  /**
   * Members, and the node this one joined through (it admitted us; until this node holds the
   * records that prove its membership, it is who can send them).
   */
  isPeerAllowed(peer: PeerId): boolean {
    return this.admission.isAdmitted(peer) || this.#trustedUntilRecords(peer);
  }

  #accessPolicy(): AccessPolicy {
    return { isDenied: (peer) => this.#revoked.has(peer) || this.#isolated.has(peer), whenAdmitted: (peer) => this.admission.whenAdmitted(peer) };
  }

  /**
   * Fault injection: cuts this node off from `peers` at the mesh level (connections refused both
   * ways, current ones closed), as a network partition would, until {@link FleetNode.heal}.
   */
  async isolate(peers: readonly string[]): Promise<void> {
    for (const peer of peers) if (peer !== this.peer) this.#isolated.add(peer);
    await Promise.all(peers.map((peer) => this.#ports.transport.hangUp(peer as PeerId).catch(() => {})));
    this.#ports.log.warn('fault injection: isolated this node from peers', { peers });
  }

  /** Ends fault-injected isolation from `peers` (all when omitted); the keeper reconnects. */
  heal(peers?: readonly string[]): void {
    if (peers === undefined) this.#isolated.clear();
    else for (const peer of peers) this.#isolated.delete(peer);
    this.#keeper.poke();
    this.#ports.log.warn('fault injection: healed', { peers: peers ?? 'all' });
  }

  /** Peers isolated by fault injection. */
  isolated(): string[] {
    return [...this.#isolated].sort();
  }

  /** Records this node's activation (or stop) of a control-plane singleton, durably and sealed. */
  async recordActivation(name: string, record: ActivationRecord): Promise<void> {
    await this.store.change<NodeStateDocument>(nodeDocId(this.peer), (draft) => recordActivation(draft, name, record), { durable: true, signer: this.#ports.identity });
  }

  /** Every member's singleton activation records, by peer id (this node's included). */
  activationRecords(): Map<string, Readonly<Record<string, ActivationRecord>>> {
    // A copy (callers may change it) of the few members that have records.
    return new Map(this.#records.of(this.#members, this.peer, (peer) => this.nodeState(peer)?.singletons));
  }

  /** Member peer ids as trust derives them (revoked ones excluded), sorted; the same array until membership changes. */
  memberIds(): readonly string[] {
    if (this.#memberIds?.of !== this.#members) this.#memberIds = { of: this.#members, ids: [...this.#members].sort() };
    return this.#memberIds.ids;
  }

  /**
   * Applies new revocations: the revoked are barred from admission (and so hung up on), refused
   * by the transport from now on, and their documents take no more changes.
   */
  #applyRevocations(): void {
    const revoked = new Set(Object.keys(this.fleet()?.revoked ?? {}));
    if ([...revoked].every((peer) => this.#revoked.has(peer))) return;
    const added = [...revoked].filter((peer) => !this.#revoked.has(peer));
    this.#revoked = revoked;
    this.#ports.log.warn('operators revoked nodes; disconnecting them', { peers: added });
    // Admitted ones are told why and hung up on; connected ones that were never admitted just go.
    const told = new Set<string>(this.admission.recheck());
    for (const peer of this.#ports.transport.connectedPeers()) {
      if (revoked.has(peer) && !told.has(peer)) void this.#ports.transport.hangUp(peer);
    }
    this.replicator.refreshPeers();
  }

  /**
   * The member this node joined through, until this node holds the records that make itself a
   * member (the fleet document and the admissions up to its own): until then it cannot check
   * anyone's credential, and that peer is the one it chose from its join string.
   */
  #trustedUntilRecords(peer: string): boolean {
    return peer === this.#config.bootstrapPeer && !this.#hasOwnRecords() && this.fleet()?.revoked[this.peer] === undefined;
  }

  #hasOwnRecords(): boolean {
    return this.store.has(FLEET_DOC_ID) && this.#members.has(this.peer);
  }

  /** Why `peer` may not be admitted whatever vouches for it, or undefined. */
  #barredReason(peer: string): string | undefined {
    const revoked = this.fleet()?.revoked[peer];
    if (revoked !== undefined) return `${peer} was revoked by an operator at ${new Date(revoked.at).toISOString()}${revoked.reason === '' ? '' : `: ${revoked.reason}`}`;
    const lost = this.#membership.lost.find((l) => l.peerId === peer);
    if (lost !== undefined && !this.#members.has(peer)) {
      return `the join token of ${peer} was used by ${lost.winner} on the other side of a partition: ${peer} must ask an operator for a new token`;
    }
    return undefined;
  }

  /**
   * A node's observed state is taken in only for members of the fleet, so a peer cannot fill the
   * fleet with documents for made-up nodes. Before the fleet document arrives (joining, or after
   * it was damaged), the node takes what its bootstrap or known members send. A document refused
   * here comes again once its node's admission is known (membership growth re-sends summaries).
   */
  #acceptsDocument(docId: string): boolean {
    if (docId.startsWith('events/')) return this.events.accepts(docId);
    if (docId.startsWith('desired/')) return this.desired.accepts(docId);
    if (!docId.startsWith('node/') && !docId.startsWith('tasks/') && !docId.startsWith('pools/')) return true;
    const parsed = parseDocId(docId);
    if (parsed === undefined || parsed.kind === 'fleet' || parsed.kind === 'desired') return false;
    if (!this.#taskRetention.accepts(docId)) return false;
    const peer = parsed.peerId;
    if (this.#revoked.has(peer)) return false;
    if (peer === this.peer || peer === this.#config.bootstrapPeer) return true;
    // Without the fleet document, the members known are the nodes whose documents are held.
    return this.#members.has(peer);
  }

  /** Writes what this node observes about itself into its own document. */
  async publishObservation(): Promise<void> {
    const observation: NodeObservation = {
      peerId: this.peer,
      ...this.#ports.host,
      addrs: this.#ports.transport.listenAddresses(),
      ...(this.#apiUrl === undefined ? {} : { api: this.#apiUrl }),
      startedAt: this.#startedAt,
    };
    await this.store.change<NodeStateDocument>(nodeDocId(this.peer), (draft) => writeObservation(draft, observation), { signer: this.#ports.identity });
  }

  /**
   * Records an operator decision (signed where the operator key is) in the fleet document;
   * resolves once it is stored durably. Refused with a message when it is not valid here.
   */
  async decide(decision: Decision): Promise<void> {
    const fleet = this.#requireFleet();
    const now = this.#ports.clock.now();
    const problem = decisionProblem(fleet, decision, (d) => this.#decisions.signatureValid(fleet.fleetId, d), { activeAt: now });
    if (problem !== undefined) throw new OperationRefusedError(problem);
    if (decision.at > this.#ports.clock.now() + MAX_DECISION_SKEW_MS) {
      throw new OperationRefusedError(`the decision is dated ${new Date(decision.at).toISOString()}, in the future: check the operator machine's clock`);
    }
    const { node, publicKey } = JSON.parse(decision.body) as { node?: string; publicKey?: string };
    if (node !== undefined && fleet.revoked[node] !== undefined) throw new OperationRefusedError(`${node} is revoked`);
    if (decision.kind === 'labels' && !this.#members.has(node!)) throw new UnknownMemberError(`${node} is not a member of this fleet`);
    const operator = fleet.operators.find((o) => o.publicKey === publicKey);
    if (decision.kind === 'operator-add' && operator !== undefined) throw new OperationRefusedError('that key is already an operator of this fleet');
    if (decision.kind === 'operator-revoke' && operator === undefined) throw new OperationRefusedError('that key is not an operator of this fleet');
    if (decision.kind === 'operator-revoke' && operator?.revokedAt !== undefined) throw new OperationRefusedError('that operator is already revoked');
    await this.store.change<FleetDocument>(FLEET_DOC_ID, (draft) => recordDecision(draft, decision), { durable: true });
  }

  /**
   * The members as trust derives them (revoked ones excluded), in {@link FleetNode.members}'
   * order; the same array until membership changes. Empty without the fleet document, as
   * `members()` is.
   */
  membershipList(): readonly MembershipMember[] {
    return this.fleet() === undefined ? NO_MEMBERS : this.#membership.members;
  }

  /** Members as this node sees them, sorted by peer id. */
  members(): MemberStatus[] {
    const fleet = this.fleet();
    if (fleet === undefined) return [];
    const connected = new Set<string>(this.#ports.transport.connectedPeers());
    return this.#membership.members.map((member) => {
      const state = this.nodeState(member.peerId);
      const self = member.peerId === this.peer;
      return {
        peerId: member.peerId,
        name: member.name,
        state: self ? 'alive' : (this.swim.state(member.peerId) ?? 'alive'),
        connected: connected.has(member.peerId),
        self,
        labels: fleet.labels[member.peerId] ?? {},
        joinedAt: member.joinedAt,
        admittedBy: member.admittedBy,
        addrs: state?.addrs ?? [],
        ...(state === undefined
          ? {}
          : { hostname: state.hostname, arch: state.arch, startedAt: state.startedAt, ...(state.api === undefined ? {} : { api: state.api }) }),
      };
    });
  }

  /** Everything `status --json` shows. */
  status(): Record<string, unknown> {
    const fleet = this.fleet();
    return {
      fleetId: this.fleetId,
      fleetName: fleet?.name ?? null,
      self: {
        peerId: this.peer,
        addrs: this.#ports.transport.listenAddresses(),
        api: this.#apiUrl ?? null,
        startedAt: this.#startedAt,
        versions: this.#ports.host.versions,
        ...this.#lostAdmission(),
        credential: this.#credentialStatus(),
        ...(fleet?.revoked[this.peer] === undefined ? {} : { revoked: fleet.revoked[this.peer] }),
      },
      members: this.members(),
      docs: this.store.ids().map((id) => ({ id, heads: this.store.heads(id), digest: this.store.digest(id) })),
      docProblems: this.store.problems(),
      peers: this.replicator.stats().map((session: SessionStats) => ({ ...session, connected: true })),
      connectedPeers: this.#ports.transport.connectedPeers(),
      wireErrors: this.penalties.snapshot(),
      securityEvents: this.securityEvents().slice(0, 100),
      // Revoked operators and whether their catalog cut applies here yet (docs/SECURITY.md §Revocation).
      revocations: this.desired.revocationCuts(),
      dialBackoff: this.#keeper.backoffs(),
      modules: this.#moduleReport?.status() ?? null,
    };
  }

  /**
   * The fleet's evidence for blessing `version` (docs/CATALOG.md §Promotion evidence): each member
   * reporting one of its digests, with its instance state and liveness, and the verdict by `thresholds`.
   */
  promotionEvidence(version: ModuleVersion, thresholds: PromotionThresholds): { observations: InstanceObservation[]; verdict: PromotionVerdict } {
    const now = this.#ports.clock.now();
    const states = this.swim.states();
    const instances = this.tasks.instances();
    const members = this.#membership.members.map((member) => {
      const self = member.peerId === this.peer;
      const swim = states.get(member.peerId);
      const instance = instances.get(member.peerId);
      const state = this.nodeState(member.peerId);
      // Alive: a member that announced itself here (one never heard from is no evidence of
      // anything) and is alive or suspect (heard within the suspicion timeout). Dead, left or
      // never heard from, it is silent.
      return {
        peerId: member.peerId,
        alive: self || (this.swim.heardFrom(member.peerId) && (swim?.state === 'alive' || swim?.state === 'suspect')),
        // A report its node says it could not renew (a broken inventory) is no evidence.
        reported: state === undefined || state.modulesProblem !== undefined || !Object.hasOwn(state.modules, version.module) ? undefined : state.modules[version.module],
        instance: instance === undefined ? undefined : { state: instance.state, since: instance.since },
      };
    });
    const observations = promotionObservations(version, { members }, now);
    return { observations, verdict: evaluatePromotion(version, observations, now, thresholds) };
  }

  #requireFleet(): FleetView {
    const fleet = this.fleet();
    if (fleet === undefined) throw new OperationRefusedError('this node has not received the fleet document yet: try again shortly');
    return fleet;
  }

  /**
   * Recomputes membership once for a burst of document changes (a joining node takes in a
   * thousand documents in a second). Peers are re-checked and the keeper poked only when
   * membership changed, or when a member this node is not connected to published addresses.
   */
  #scheduleMembership(docId: string): void {
    this.#membershipDirty.add(docId);
    if (this.#membershipTimer !== undefined) return;
    this.#membershipTimer = this.#ports.clock.setTimeout(() => {
      this.#membershipTimer = undefined;
      const dirty = [...this.#membershipDirty];
      this.#membershipDirty.clear();
      try {
        if (dirty.includes(FLEET_DOC_ID)) this.#applyRevocations();
        const before = this.#members;
        this.#refreshMembership();
        // The same set when nothing was derived again (nearly every time): nothing to compare.
        const changed = this.#members !== before;
        const grew = changed && [...this.#members].some((peer) => !before.has(peer));
        const shrank = changed && [...before].some((peer) => !this.#members.has(peer));
        // New members: documents ignored while their admission was unknown can come now.
        if (grew) this.replicator.resendSummaries();
        if (grew || shrank || this.#membership.lost.length > 0) this.admission.recheck();
        if (grew || shrank) {
          this.replicator.refreshPeers();
          this.swim.refreshMembers();
        }
        const connected = new Set<string>(this.#ports.transport.connectedPeers());
        const unreached = dirty.some((id) => {
          const peer = id.startsWith('node/') ? peerOfNodeDoc(id) : undefined;
          return peer !== undefined && this.#members.has(peer) && !connected.has(peer) && (this.nodeState(peer)?.addrs.length ?? 0) > 0;
        });
        if (grew || unreached) this.#keeper.poke();
      } catch (error) {
        this.#ports.log.error('recomputing membership failed', { error: String(error) });
      }
    }, MEMBERSHIP_COALESCE_MS);
  }

  #refreshMembership(): void {
    const fleet = this.fleet();
    if (fleet === undefined) {
      // Without the fleet document (not received yet, or damaged and quarantined), the nodes whose
      // observed state this node holds were members: they are who can give the document back.
      const known = this.store.ids().flatMap((id) => (id.startsWith('node/') ? [peerOfNodeDoc(id)] : []));
      this.#members = new Set(known);
      this.#membershipInputs = undefined;
      this.#membershipAt = undefined;
      return;
    }
    // Nothing held and no verdict changed since membership was last up to date: it still is (the
    // pass below reads every node document, and a large fleet changes documents many times a second).
    const at = this.#membershipAt;
    if (at !== undefined && at.store === this.store.version && at.verdicts === this.#verdictsVersion && this.#admittersDirty.size === 0) return;
    const upToDate = { store: this.store.version, verdicts: this.#verdictsVersion };
    // Derived again only when the fleet document or a document holding admissions changed: most
    // changes (observations, a bulk transfer of node documents) leave membership as it was.
    const admitters = this.#admitters();
    const inputs: string[] = [this.store.digest(FLEET_DOC_ID) ?? ''];
    for (const admitter of admitters) inputs.push(`${admitter}:${this.store.digest(nodeDocId(admitter))}`);
    const inputKey = inputs.join(',');
    if (inputKey === this.#membershipInputs) {
      this.#membershipAt = upToDate;
      return;
    }
    const derived = derivedMemberships.get(inputKey);
    if (derived !== undefined && derived.fleetId === fleet.fleetId && derived.verdicts.every(([signature, holds]) => this.#grantSignatures.get(signature) === holds)) {
      // The kept key, not this one: a thousand nodes then hold one copy of the long string.
      this.#membershipInputs = derived.key;
      this.#membershipAt = upToDate;
      this.#adoptMembership(derived.membership, derived.members);
      return;
    }
    const grants = new Map<string, StoredGrant>();
    const admissions: AdmissionRecord[] = [];
    for (const admitter of admitters) {
      for (const admission of this.nodeState(admitter)?.admissions ?? []) {
        admissions.push({ tokenHash: admission.tokenHash, peerId: admission.peerId, name: admission.name, admittedAt: admission.admittedAt, admittedBy: admitter });
        grants.set(`${admitter}/${admission.tokenHash}`, admission.grant);
      }
    }
    // Grant signatures not checked yet go to the verifier as one batch (a thousand admissions
    // arrive at once when a node joins a large fleet); until then membership stays as it was.
    const unchecked = [...grants.values()].filter((grant) => !this.#grantSignatures.has(grant.signature));
    if (unchecked.length > 0) {
      this.#verifyGrants(unchecked);
      return;
    }
    this.#membershipInputs = inputKey;
    // Operators certified by the fleet root key (checked once here rather than once per
    // admission), with the time each was revoked from, if it was.
    const operators = new Map(fleet.operators.filter((operator) => isCertifiedOperator(fleet, operator)).map((operator) => [operator.publicKey, operator.revokedAt ?? Number.MAX_SAFE_INTEGER]));
    const all = deriveMembership(fleet.founder, admissions, (a) => {
      const grant = grants.get(`${a.admittedBy}/${a.tokenHash}`);
      return grant !== undefined && this.#grantHolds(fleet.fleetId, operators, grant, a);
    });
    const membership = { ...all, members: all.members.filter((m) => fleet.revoked[m.peerId] === undefined) };
    const members: ReadonlySet<string> = new Set(membership.members.map((m) => m.peerId));
    // Kept for the other nodes of this process that hold the same versions (a simulated fleet),
    // with the verdicts it rests on: another node takes it only with the same verdicts.
    const verdicts = [...grants.values()].map((grant) => [grant.signature, this.#grantSignatures.get(grant.signature) === true] as const);
    setBounded(derivedMemberships, inputKey, { key: inputKey, fleetId: fleet.fleetId, verdicts, membership, members }, DERIVED_MEMBERSHIPS_KEPT);
    this.#membershipAt = upToDate;
    this.#adoptMembership(membership, members);
  }

  /**
   * The members whose documents hold admissions, in peer order. Found by reading every node
   * document once, then kept up to date from the documents that changed since (and read in full
   * again whenever a document comes or goes): a large fleet's nodes take in document changes many
   * times a second, and reading a thousand node documents for each was a tenth of a 1,000-node
   * simulated fleet's first seconds.
   */
  #admitters(): string[] {
    const ids = this.store.heldIds();
    let index = this.#admitterIndex;
    if (index === undefined || index.ids !== ids) {
      const admitters = new Set<string>();
      for (const id of ids) {
        if (!id.startsWith('node/')) continue;
        const peer = peerOfNodeDoc(id);
        if ((this.nodeState(peer)?.admissions.length ?? 0) > 0) admitters.add(peer);
      }
      index = { ids, admitters, sorted: undefined };
      this.#admitterIndex = index;
    } else {
      for (const id of this.#admittersDirty) {
        const peer = peerOfNodeDoc(id);
        const has = (this.nodeState(peer)?.admissions.length ?? 0) > 0;
        if (has === index.admitters.has(peer)) continue;
        if (has) index.admitters.add(peer);
        else index.admitters.delete(peer);
        index.sorted = undefined;
      }
    }
    this.#admittersDirty.clear();
    index.sorted ??= [...index.admitters].sort();
    return index.sorted;
  }

  #adoptMembership(membership: { members: MembershipMember[]; lost: LostAdmission[] }, members: ReadonlySet<string>): void {
    this.#membership = membership;
    this.#members = members;
    const lost = this.#membership.lost.find((l) => l.peerId === this.peer);
    if (lost !== undefined && !this.#lostLogged) {
      this.#lostLogged = true;
      this.#ports.log.error('this node is not a member: its join token was used by another node on the other side of a partition', { ...lost });
    }
  }

  /** A stored grant admits `admission`: signed by a certified operator, for its token, name and time. */
  #grantHolds(fleetId: string, operators: ReadonlyMap<string, number>, grant: StoredGrant, admission: AdmissionRecord): boolean {
    if (grant.fleetId !== fleetId || !(admission.admittedAt < (operators.get(grant.operator) ?? 0))) return false;
    if (grant.tokenHash !== admission.tokenHash || admission.admittedAt > grant.expiresAt) return false;
    if (grant.name !== undefined && grant.name !== admission.name) return false;
    return this.#grantSignatures.get(grant.signature) === true;
  }

  /** Checks grant signatures in one batch, then derives membership again. */
  #verifyGrants(grants: readonly StoredGrant[]): void {
    if (this.#verifyingGrants !== undefined) return;
    const checks = grants.map((grant) => grantCheckOf(grant));
    const wellFormed = checks.flatMap((check, i) => (check === undefined ? [] : [{ check, signature: grants[i]!.signature }]));
    for (let i = 0; i < grants.length; i++) if (checks[i] === undefined) this.#grantSignatures.set(grants[i]!.signature, false);
    this.#verdictsVersion++;
    this.#verifyingGrants = this.#verifier
      .verifyBatch(wellFormed.map((w) => w.check))
      .then(
        (results) => {
          if (this.#grantSignatures.size > 100_000) this.#grantSignatures.clear();
          wellFormed.forEach((w, i) => this.#grantSignatures.set(w.signature, results[i] === true));
          this.#verdictsVersion++;
          this.#verifyingGrants = undefined;
          this.#scheduleMembership(FLEET_DOC_ID);
        },
        (error: unknown) => {
          this.#ports.log.error('checking join grants failed; trying again in a second', { error: String(error) });
          this.#ports.clock.setTimeout(() => {
            this.#verifyingGrants = undefined;
            this.#scheduleMembership(FLEET_DOC_ID);
          }, GRANT_RETRY_MS);
        },
      );
  }

  #credentialStatus(): { issuer: string; expiresAt: number; refusedBy?: Record<string, string> } | null {
    const own = this.admission.chain()[0];
    const refusals = this.admission.refusals();
    if (own === undefined) return null;
    return { issuer: own.issuer, expiresAt: own.expiresAt, ...(Object.keys(refusals).length > 0 ? { refusedBy: refusals } : {}) };
  }

  #lostAdmission(): { lostAdmission?: { reason: string; winner: string } } {
    const lost = this.#membership.lost.find((l) => l.peerId === this.peer);
    if (lost === undefined) return {};
    return { lostAdmission: { reason: `this node's join token was used by ${lost.winner} on the other side of a partition: ask an operator for a new token`, winner: lost.winner } };
  }

  /**
   * The members to dial, with their addresses (what the keeper dials); the same map (read only)
   * until membership or a member's addresses change: the keeper asks every tick while it is short
   * of peers, and a large fleet has a thousand members.
   */
  dialCandidates(): ReadonlyMap<PeerId, readonly string[]> {
    const bootstrap = this.#config.bootstrapPeer as PeerId | undefined;
    return this.#candidates.of(this.#members, undefined, (member) => (member === this.peer ? undefined : (this.nodeState(member)?.addrs ?? [])), (candidates) => {
      if (bootstrap !== undefined && bootstrap !== this.peer) candidates.set(bootstrap, [...(candidates.get(bootstrap) ?? []), ...(this.#config.bootstrapAddrs ?? [])]);
    }) as ReadonlyMap<PeerId, readonly string[]>;
  }

  /** Why `peer` may not join with `grant` now, or undefined when it may. */
  #redeemRefusal(fleet: FleetView, grant: StoredGrant, peer: PeerId, name: string, now: number): JoinRefusal | undefined {
    if (fleet.revoked[peer] !== undefined) return { reason: 'revoked', message: `this node (${peer}) was revoked by an operator and cannot join again; a machine rejoins with a new data directory and a new token` };
    const problem = grantProblem(fleet, grant, now);
    if (problem !== undefined) return { reason: 'bad-grant', message: `${problem}: ask an operator for a new one` };
    if (grant.expiresAt <= now) return { reason: 'expired', message: `that join token expired at ${new Date(grant.expiresAt).toISOString()}: ask an operator for a new one` };
    if (grant.name !== undefined && grant.name !== name) return { reason: 'name-mismatch', message: `that join token is for a node named ${grant.name}` };
    for (const id of this.store.ids()) {
      if (!id.startsWith('node/')) continue;
      const used = this.nodeState(peerOfNodeDoc(id))?.admissions.find((a) => a.tokenHash === grant.tokenHash);
      if (used !== undefined && used.peerId !== peer) {
        return { reason: 'used', message: `that join token was already used by ${used.peerId}: ask an operator for a new one` };
      }
    }
    return undefined;
  }

  async #serveJoin(stream: FrameStream): Promise<void> {
    const { clock, log } = this.#ports;
    const peer = stream.remotePeer;
    const reply = async (message: JoinMessage): Promise<void> => {
      await stream.send(encodeMessage(joinProtocol, message));
      await stream.close();
    };
    try {
      const frame = await withTimeout(clock, firstFrame(stream), JOIN_TIMEOUT_MS, 'waiting for a join request');
      const request = decodeMessage(joinProtocol, frame);
      if (request.type !== 'redeem') throw new WireError('protocol', `expected redeem, got ${request.type}`);
      const fleet = this.fleet();
      if (fleet === undefined) {
        await reply({ type: 'refused', body: { reason: 'not-ready', message: 'this node has not received the fleet document yet' } });
        return;
      }
      if (request.body.fleetId !== fleet.fleetId) {
        this.penalties.record(peer, 'join:wrong-fleet');
        await reply({ type: 'refused', body: { reason: 'wrong-fleet', message: `this node belongs to fleet ${fleet.fleetId}, not ${request.body.fleetId}` } });
        return;
      }
      const { token, name, grant: presented } = request.body;
      const grant: StoredGrant = {
        fleetId: request.body.fleetId,
        tokenHash: sha256Hex(token),
        expiresAt: presented.expiresAt,
        operator: presented.operator,
        signature: presented.signature,
        ...(presented.name === undefined ? {} : { name: presented.name }),
      };
      const now = clock.now();
      this.admission.extendDeadline(peer);
      const refusal = this.#redeemRefusal(fleet, grant, peer, name, now);
      if (refusal !== undefined) {
        this.penalties.record(peer, `join:${refusal.reason}`);
        log.warn('refused a join request', { peer, reason: refusal.reason });
        await reply({ type: 'refused', body: refusal });
        return;
      }
      // No await between the check above and this change: two redemptions of one token on this
      // node cannot both pass. Across a partition, deriveMembership picks one winner.
      await this.store.change<NodeStateDocument>(
        nodeDocId(this.peer),
        (draft) => recordAdmission(draft, { tokenHash: grant.tokenHash, peerId: peer, name, admittedAt: now, grant }),
        { durable: true, signer: this.#ports.identity },
      );
      log.info('a node joined the fleet', { peer, name });
      await reply({ type: 'welcome', body: { fleetId: fleet.fleetId, fleetName: fleet.name, chain: this.admission.issueFor(peer) } });
    } catch (error) {
      const name = (error as Error).name;
      const code = error instanceof WireError ? error.code : error instanceof TimeoutError ? 'timeout' : name === 'FrameTooLargeError' ? 'oversized' : 'stream';
      this.penalties.record(peer, `join:${code}`);
      log.debug('join request failed', { peer, error: String(error) });
      stream.abort(error as Error);
    }
  }
}

type JoinRefusal = { reason: 'bad-grant' | 'expired' | 'used' | 'name-mismatch' | 'revoked'; message: string };

/** Dials the bootstrap addresses in turn and redeems the token with the first that answers. */
async function redeem(ports: FleetNodePorts, join: JoinInfo, name: string): Promise<{ peer: string; chain: readonly Credential[] }> {
  const { transport, clock, log } = ports;
  let lastError: Error = new OperationRefusedError('the join string names no reachable bootstrap address');
  for (const address of join.addrs) {
    const peer = peerIdOfAddress(address) as PeerId | undefined;
    if (peer === undefined || peer === transport.localPeer) continue;
    let stream: FrameStream | undefined;
    try {
      await transport.dial(peer, [address]);
      stream = await transport.openStream(peer, joinProtocol.id, { maxFrameBytes: joinProtocol.maxFrameBytes });
      const grant = {
        expiresAt: join.grant.expiresAt,
        operator: join.grant.operator,
        signature: join.grant.signature,
        ...(join.grant.name === undefined ? {} : { name: join.grant.name }),
      };
      await stream.send(encodeMessage(joinProtocol, { type: 'redeem', body: { fleetId: join.fleetId, token: join.token, name, grant } }));
      const answer = decodeMessage(joinProtocol, await withTimeout(clock, firstFrame(stream), JOIN_TIMEOUT_MS, 'waiting for the join answer'));
      await stream.close();
      if (answer.type === 'welcome') {
        log.info('joined the fleet', { fleetId: answer.body.fleetId, fleetName: answer.body.fleetName, via: peer });
        return { peer, chain: answer.body.chain };
      }
      if (answer.type === 'refused') {
        if (answer.body.reason === 'not-ready') {
          lastError = new JoinRefusedError(answer.body.reason, answer.body.message);
          continue;
        }
        throw new JoinRefusedError(answer.body.reason, `the fleet refused this node: ${answer.body.message}`);
      }
    } catch (error) {
      stream?.abort(error as Error);
      if (error instanceof JoinRefusedError && error.reason !== 'not-ready') throw error;
      lastError = error as Error;
      log.warn('bootstrap address did not work; trying the next', { address, error: String(error) });
    }
  }
  throw lastError;
}
