import * as A from '@automerge/automerge';
import { ControlPlane, type LeaseConfig, type PlacementConfig, PoolMemberAgent, TaskRunner, dispatcherPorts, dispatcherSpec, poolPorts, poolsSpec } from '../actors/index.ts';
import { type DocId, type FleetId, type NodeStateDocument, nodeDocId, recordAdmission, toHex, writeObservation } from '../crdt-schema/index.ts';
import {
  type AnyDoc,
  CREDENTIAL_LIFE_MS,
  DocStore,
  type DocumentInterner,
  FleetNode,
  type Logger,
  type PeerId,
  SeededRandom,
  type Storage,
  type StorageEntry,
  type SignatureCheck,
  type SignatureVerifier,
  type SigningOperator,
  actorPrefixFor,
  adoptMembershipInStorage,
  certifyOperator,
  foundFleetInStorage,
  generateKeyPair,
  headsDigest,
  issueCredential,
  keyPairFromSeed,
  peerIdFromPublicKey,
  sha256Hex,
  signGrant,
  toBase64Url,
  verifyBytes,
} from '../mesh/index.ts';
import { type ActorFault, withActorFault } from './actor-faults.ts';
import { NodeClock, SimClock, type Skew } from './clock.ts';
import { tuneHeapForSimulation } from './heap.ts';
import { DEFAULT_LINK, type LinkConfig, SimNetwork } from './network.ts';
import { SimProcessRunner, SimProcesses } from './processes.ts';
import { SimStorage } from './storage.ts';

/** A simulated node: its identity and ports, and the running core while it is up. */
export interface SimNode {
  readonly index: number;
  readonly peer: PeerId;
  readonly identity: { readonly seed: Uint8Array; readonly publicKey: Uint8Array };
  readonly storage: SimStorage;
  /** The running process's clock (a new one each start); the machine's skew outlives it. */
  clock: NodeClock;
  readonly skew: Skew;
  /** The running process's storage handle. */
  handle: (Storage & { kill(): void }) | undefined;
  readonly log: SimLogger;
  node: FleetNode | undefined;
  plane: ControlPlane | undefined;
  /** The running process's task runner and process runner, with {@link SimFleetOptions.catalogActors}. */
  tasks: TaskRunner | undefined;
  processRunner: SimProcessRunner | undefined;
  /** Starts of this node so far (a restart makes a new FleetNode on the same storage). */
  starts: number;
}

export interface SimFleetOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly link?: LinkConfig;
  /** Passed to every node's control plane (tests shorten windows). */
  readonly silenceCriticalAfterMs?: number;
  /** Passed to every node's placement (the test-only fault `unsafeIgnoreQuorum`). */
  readonly placement?: Partial<PlacementConfig>;
  /** Passed to every node's quorum lease (how many members vote, say). */
  readonly lease?: Partial<LeaseConfig>;
  /**
   * Runs the task dispatcher, the task runner and the pool actors on every node, wired as a real
   * node wires them (agent/node-process.ts); commands run in {@link SimFleet.processes}.
   */
  readonly catalogActors?: boolean;
  /** Test-only faults in those actors, to show the invariants catch them (sim/actor-faults.ts). */
  readonly actorFaults?: readonly ActorFault[];
  /**
   * Founds the fleet with every member's own node document already on every node (as if
   * replicated), not only the founder's: the first seconds then take in no new documents, which
   * at 1,000 nodes are a million transfers. On unless false (false: only the founder's documents,
   * and every node's own arrives by replication once it starts).
   */
  readonly replicatedStart?: boolean;
  /** Called for every member-state change and placement change, for the trace and invariants. */
  readonly observe?: (node: SimNode, event: SimObservation) => void;
}

/** What the harness watches on each node. */
export type SimObservation =
  | { readonly type: 'member'; readonly peer: string; readonly state: string }
  | { readonly type: 'singletons'; readonly singletons: ReadonlyArray<{ name: string; owner: string | null; epoch: number; active: boolean }> }
  | { readonly type: 'event'; readonly id: string; readonly kind: string; readonly subject?: string };

/** Keeps warnings and errors (bounded) and counts the rest: a thousand nodes log a lot. */
export class SimLogger implements Logger {
  readonly problems: Array<{ level: string; message: string; fields: Readonly<Record<string, unknown>> }> = [];
  counts = { debug: 0, info: 0, warn: 0, error: 0 };

  /** The latest debug records (a ring), for looking into a failing seed. */
  readonly recent: Array<{ message: string; fields: Readonly<Record<string, unknown>> }> = [];

  debug(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.counts.debug++;
    this.recent.push({ message, fields });
    if (this.recent.length > 50) this.recent.shift();
  }
  info(): void {
    this.counts.info++;
  }
  warn(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.counts.warn++;
    this.#keep('warn', message, fields);
  }
  error(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.counts.error++;
    this.#keep('error', message, fields);
  }
  #keep(level: string, message: string, fields: Readonly<Record<string, unknown>>): void {
    if (this.problems.length < 200) this.problems.push({ level, message, fields });
  }
}

/**
 * Checks signatures in-process, remembering every verdict for all simulated nodes: a signature
 * is a pure function of its bytes, so a thousand nodes checking one seal pay for it once.
 */
export class SharedVerifier implements SignatureVerifier {
  /** Verdicts by signature, each with the key and message it was checked against (compared byte for byte). */
  readonly #verdicts = new Map<string, Array<{ readonly publicKey: Buffer; readonly message: Buffer; readonly verdict: boolean }>>();
  /** Verdicts by check object: nodes that share a check (a grant's, built once per grant) skip even the key. */
  readonly #byCheck = new WeakMap<SignatureCheck, boolean>();
  #held = 0;
  checks = 0;

  async verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    return checks.map((check) => {
      const shared = this.#byCheck.get(check);
      if (shared !== undefined) return shared;
      const verdict = this.#verify(check);
      this.#byCheck.set(check, verdict);
      return verdict;
    });
  }

  #verify(check: SignatureCheck): boolean {
    const key = bytesOf(check.signature).toString('base64');
    const publicKey = bytesOf(check.publicKey);
    const message = bytesOf(check.message);
    let known = this.#verdicts.get(key);
    const found = known?.find((k) => k.publicKey.equals(publicKey) && k.message.equals(message));
    if (found !== undefined) return found.verdict;
    this.checks++;
    const verdict = verifyBytes(check.publicKey, check.message, check.signature);
    if (this.#held >= 1_000_000) {
      this.#verdicts.clear();
      this.#held = 0;
      known = undefined;
    }
    if (known === undefined) this.#verdicts.set(key, (known = []));
    known.push({ publicKey: Buffer.from(publicKey), message: Buffer.from(message), verdict });
    this.#held++;
    return verdict;
  }

  async close(): Promise<void> {}
}

/** The bytes of `bytes` as a Buffer, without copying them. */
function bytesOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Whether two lists of byte strings are equal, part by part. */
function sameParts(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.length !== b[i]!.length || Buffer.compare(a[i]!, b[i]!) !== 0) return false;
  return true;
}

/**
 * One instance of each document version for the whole simulated fleet (docs/SIMULATION.md
 * §Scale): a thousand replicas of a node's document at the same heads are one Automerge document,
 * not a thousand. Stores never change a held document in place, so sharing it is invisible to
 * them; what it saves is memory (and the garbage collector's and allocator's work on it), and
 * loading the same snapshot bytes once instead of once per node.
 */
export class SharedDocuments implements DocumentInterner {
  /**
   * By document, then digest: no key string is built per call (a thousand nodes opening a
   * thousand documents each built and hashed a million of them).
   */
  readonly #held = new Map<string, Map<string, { doc: AnyDoc; holders: number }>>();
  /**
   * Stored bytes already loaded, by document and total length, with the version (digest) they
   * gave: compared byte for byte (a thousand nodes opening the same records hashed a megabyte
   * each before).
   */
  readonly #loaded = new Map<string, Map<number, Array<{ readonly parts: readonly Uint8Array[]; digest: string }>>>();
  #loadedBytes = 0;
  #size = 0;
  loads = 0;
  reuses = 0;

  hold(docId: DocId, digest: string, doc: AnyDoc): AnyDoc {
    let versions = this.#held.get(docId);
    if (versions === undefined) {
      versions = new Map();
      this.#held.set(docId, versions);
    }
    const held = versions.get(digest);
    if (held !== undefined) {
      held.holders++;
      return held.doc;
    }
    versions.set(digest, { doc, holders: 1 });
    this.#size++;
    return doc;
  }

  release(docId: DocId, digest: string): void {
    const versions = this.#held.get(docId);
    const held = versions?.get(digest);
    if (held === undefined) return;
    if (--held.holders > 0) return;
    versions!.delete(digest);
    this.#size--;
    if (versions!.size === 0) this.#held.delete(docId);
  }

  load(docId: DocId, parts: readonly Uint8Array[], loadFresh: () => AnyDoc): AnyDoc {
    let total = 0;
    for (const part of parts) total += part.length;
    const sameSize = this.#loaded.get(docId)?.get(total);
    const match = sameSize?.find((loaded) => sameParts(loaded.parts, parts));
    const held = match === undefined ? undefined : this.#held.get(docId)?.get(match.digest);
    if (held !== undefined) {
      this.reuses++;
      return held.doc;
    }
    this.loads++;
    const doc = loadFresh();
    const digest = headsDigest(A.getHeads(doc));
    if (match !== undefined) {
      match.digest = digest;
      return doc;
    }
    if (this.#loadedBytes > 256 * 1024 * 1024) {
      this.#loaded.clear();
      this.#loadedBytes = 0;
    }
    let bySize = this.#loaded.get(docId);
    if (bySize === undefined) {
      bySize = new Map();
      this.#loaded.set(docId, bySize);
    }
    const list = bySize.get(total) ?? [];
    list.push({ parts: parts.map((part) => new Uint8Array(part)), digest });
    bySize.set(total, list);
    this.#loadedBytes += total;
    return doc;
  }

  /** Document versions held now (however many nodes hold each). */
  get size(): number {
    return this.#size;
  }
}

/** What a simulated node listens on (`SimTransport.listenAddresses`). */
const simAddrs = (peer: string): string[] => [`/sim/${peer}/p2p/${peer}`];

const HOST = { hostname: 'sim', arch: 'x64', platform: 'linux', versions: { powernode: 'sim' } };
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Instants {@link SimFleet.run} steps in one turn of the event loop. */
const RUN_BATCH = 64;

/**
 * A whole fleet of real `FleetNode` + `ControlPlane` cores on simulated ports, built from one
 * seed (docs/SIMULATION.md). The fleet is founded offline: the founder's documents hold every
 * member's admission, each member holds a credential, so the run starts with a formed fleet.
 */
export class SimFleet {
  readonly clock: SimClock;
  readonly network: SimNetwork;
  /** The scenario's own random source (faults), apart from the nodes' and the network's. */
  readonly random: SeededRandom;
  readonly nodes: SimNode[] = [];
  readonly verifier = new SharedVerifier();
  readonly documents = new SharedDocuments();
  /** The fleet's operator key, so scenarios can record decisions as an operator would. */
  operatorKey: { readonly seed: Uint8Array; readonly publicKey: Uint8Array } | undefined;
  /** The same key with its root certificate, for signing desired-state entries (catalog, tasks). */
  operator: SigningOperator | undefined;
  /** Every machine's commands (the task runners' process runner). */
  readonly processes: SimProcesses;
  fleetId = '';
  readonly #options: SimFleetOptions;

  private constructor(options: SimFleetOptions) {
    this.#options = options;
    this.clock = new SimClock();
    this.network = new SimNetwork(this.clock, new SeededRandom(options.seed * 7 + 1), options.link ?? DEFAULT_LINK);
    this.random = new SeededRandom(options.seed * 7 + 2);
    this.processes = new SimProcesses(this.clock, new SeededRandom(options.seed * 7 + 4));
  }

  /** Founds the fleet offline, then starts every node. */
  static async create(options: SimFleetOptions): Promise<SimFleet> {
    tuneHeapForSimulation();
    const fleet = new SimFleet(options);
    await fleet.#found();
    for (const node of fleet.nodes) await fleet.start(node.index);
    return fleet;
  }

  get options(): SimFleetOptions {
    return this.#options;
  }

  async #found(): Promise<void> {
    const replicated = this.#options.replicatedStart !== false;
    const keys = new SeededRandom(this.#options.seed * 7 + 3);
    const fleetId = toHex(keys.bytes(16)) as FleetId;
    const root = generateKeyPair(keys);
    const operator = generateKeyPair(keys);
    this.operatorKey = operator;
    this.fleetId = fleetId;
    for (let index = 0; index < this.#options.nodes; index++) {
      const identity = keyPairFromSeed(keys.bytes(32));
      const peer = peerIdFromPublicKey(identity.publicKey) as PeerId;
      const skew = { ms: 0 };
      const clock = new NodeClock(this.clock, index, skew);
      this.nodes.push({ index, peer, identity, storage: new SimStorage(() => this.clock.now()), clock, skew, handle: undefined, log: new SimLogger(), node: undefined, plane: undefined, tasks: undefined, processRunner: undefined, starts: 0 });
    }
    const founder = this.nodes[0]!;
    const now = this.clock.now();
    const certified = certifyOperator(root.seed, fleetId, { publicKey: toBase64Url(operator.publicKey), name: 'sim', addedAt: now });
    this.operator = { publicKey: certified.publicKey, name: certified.name, addedAt: certified.addedAt, certificate: certified.certificate, seed: operator.seed };
    const ports = { storage: founder.storage, clock: founder.clock, random: new SeededRandom(keys.int(2 ** 31)), log: founder.log };
    await foundFleetInStorage(ports, founder.peer, { fleetId, name: 'sim', createdAt: now, rootKey: toBase64Url(root.publicKey), operator: certified, founder: { peerId: founder.peer, name: 'n0' } });
    // The founder admitted everyone: its document holds each admission with its operator grant.
    const store = await DocStore.open({ storage: founder.storage, clock: founder.clock, actorId: `${actorPrefixFor(founder.peer)}00000000`, log: founder.log, fleetId });
    await store.change<NodeStateDocument>(nodeDocId(founder.peer), (draft) => {
      writeObservation(draft, { peerId: founder.peer, ...HOST, addrs: replicated ? simAddrs(founder.peer) : [], startedAt: now });
      for (const member of this.nodes.slice(1)) {
        const tokenHash = sha256Hex(keys.bytes(32));
        const grant = signGrant(operator.seed, { fleetId, tokenHash, expiresAt: now + 3_600_000, operator: toBase64Url(operator.publicKey) });
        recordAdmission(draft, { tokenHash, peerId: member.peer, name: `n${member.index}`, admittedAt: now, grant });
      }
    }, { durable: true, signer: founder.identity });
    await store.flush();
    if (!replicated) {
      const founded = [...(await founder.storage.range(['doc'])), ...(await founder.storage.range(['seal']))];
      for (const member of this.nodes.slice(1)) {
        await member.storage.batch(founded.map((e) => ({ type: 'put' as const, key: e.key, value: e.value })));
        const chain = [issueCredential({ ...founder.identity, peerId: founder.peer }, { fleetId, peerId: member.peer, issuedAt: now, expiresAt: now + CREDENTIAL_LIFE_MS })];
        await adoptMembershipInStorage(member.storage, { fleetId, bootstrapPeer: founder.peer, bootstrapAddrs: [`/sim/${founder.peer}/p2p/${founder.peer}`], chain });
      }
      return;
    }
    // Every other member's own document, sealed by it, as it writes it when it starts (its
    // observation: the nodes start at this very instant), so the fleet starts with every node
    // document everywhere, as if replicated, instead of each node taking in every other's new
    // document in its first seconds (a million documents at 1,000 nodes).
    for (const member of this.nodes.slice(1)) {
      const own = await DocStore.open({ storage: member.storage, clock: member.clock, actorId: `${actorPrefixFor(member.peer)}00000000`, log: member.log, fleetId });
      await own.change<NodeStateDocument>(nodeDocId(member.peer), (draft) => writeObservation(draft, { peerId: member.peer, ...HOST, addrs: simAddrs(member.peer), startedAt: now }), { durable: true, signer: member.identity });
      await own.flush();
    }
    const held: StorageEntry[] = [];
    for (const member of this.nodes) held.push(...(await member.storage.range(['doc'])), ...(await member.storage.range(['seal'])));
    for (const member of this.nodes) {
      member.storage.load(held);
      if (member === founder) continue;
      const chain = [issueCredential({ ...founder.identity, peerId: founder.peer }, { fleetId, peerId: member.peer, issuedAt: now, expiresAt: now + CREDENTIAL_LIFE_MS })];
      await adoptMembershipInStorage(member.storage, { fleetId, bootstrapPeer: founder.peer, bootstrapAddrs: simAddrs(founder.peer), chain });
    }
  }

  /** Starts node `index` on its storage (first start, or after a crash). */
  async start(index: number): Promise<void> {
    const sim = this.nodes[index]!;
    if (sim.node !== undefined) throw new Error(`node ${index} is running`);
    sim.storage.reopen();
    sim.clock = new NodeClock(this.clock, index, sim.skew);
    sim.handle = sim.storage.handle();
    const transport = this.network.createTransport(sim.peer, index);
    const random = new SeededRandom(this.#options.seed * 100_003 + index * 1_009 + sim.starts);
    sim.starts++;
    const node = await this.#settled(FleetNode.open({ identity: sim.identity, signatureVerifier: this.verifier, documentInterner: this.documents, transport, storage: sim.handle, clock: sim.clock, random, log: sim.log, host: HOST }));
    await this.#settled(node.start());
    const catalog = this.#options.catalogActors === true;
    const faults = this.#options.actorFaults ?? [];
    // What the actors see of the node: the node itself, unless a test-only fault hides records from them.
    const actorNode = faults.reduce((seen, fault) => withActorFault(seen, fault), node);
    let plane: ControlPlane;
    const catalogWiring = catalog
      ? { singletons: [dispatcherSpec(), poolsSpec()], ports: { ...dispatcherPorts(node, sim.clock, () => plane), ...poolPorts(actorNode, sim.clock, () => plane) } }
      : {};
    plane = new ControlPlane({
      node,
      transport,
      clock: sim.clock,
      log: sim.log,
      storage: sim.handle,
      ...(this.#options.silenceCriticalAfterMs === undefined ? {} : { silenceCriticalAfterMs: this.#options.silenceCriticalAfterMs }),
      ...(this.#options.placement === undefined ? {} : { placement: this.#options.placement }),
      ...(this.#options.lease === undefined ? {} : { lease: this.#options.lease }),
      ...catalogWiring,
    });
    if (catalog) {
      const runner = this.processes.runnerFor(index, sim.starts);
      const tasks = new TaskRunner({ node: actorNode, runner, clock: sim.clock, log: sim.log });
      tasks.register(plane);
      new PoolMemberAgent({ node: actorNode, clock: sim.clock }).register(plane);
      sim.processRunner = runner;
      sim.tasks = tasks;
      // As a real node: runs a previous process left running are closed before orders come in.
      await this.#settled(tasks.start());
    }
    await this.#settled(plane.start());
    sim.node = node;
    sim.plane = plane;
    const observe = this.#options.observe;
    if (observe !== undefined) {
      node.onEvent((event) => {
        if (event.type === 'member:state') observe(sim, { type: 'member', peer: event.peerId, state: event.state });
        else if (event.type === 'event:new') observe(sim, { type: 'event', id: event.event.id, kind: event.event.kind, ...(event.event.subject === undefined ? {} : { subject: event.event.subject }) });
      });
      plane.onSingletonsChanged((event) => observe(sim, { type: 'singletons', singletons: event.singletons }));
    }
  }

  /**
   * Kills node `index` as kill -9 would: its timers never fire, its connections drop, its
   * storage keeps what was written (with `powerLoss`, loses recent unsynced writes).
   */
  async crash(index: number, options: { readonly powerLoss?: boolean } = {}): Promise<void> {
    const sim = this.nodes[index]!;
    if (sim.node === undefined) return;
    sim.clock.kill();
    sim.handle?.kill();
    sim.processRunner?.kill();
    // Commands outlive a kill -9 of their node process, not a power loss.
    if (options.powerLoss === true) this.processes.powerOff(index);
    this.clock.cancelAll(index);
    await this.network.lookup(sim.peer)?.stop();
    sim.storage.crash(options);
    sim.node = undefined;
    sim.plane = undefined;
    sim.tasks = undefined;
    sim.processRunner = undefined;
  }

  /** Whether node `index` runs (started and not crashed). */
  isUp(index: number): boolean {
    return this.nodes[index]!.node !== undefined;
  }

  /**
   * Runs virtual time forward by `ms`, letting every promise settle between instants. Each instant
   * is stepped in an immediate of its own, and Node drains the microtask queue between two
   * immediates, which is all "settled" means here (the core reaches time and I/O only through the
   * simulated ports); queueing {@link RUN_BATCH} immediates at a time runs that many instants in
   * one turn of the event loop, where one immediate per instant spent a fifth of a 1,000-node
   * run's time polling for I/O that never comes.
   */
  async run(ms: number, onInstant?: () => void): Promise<void> {
    const until = this.clock.now() + ms;
    let lastFired = this.clock.step(until);
    let done = false;
    while (!done) {
      await new Promise<void>((resolve) => {
        const next = (last: boolean): void => {
          if (done) return resolve();
          // The previous instant's promises have settled: it is observed, and the next one stepped.
          onInstant?.();
          if (lastFired === 0) {
            done = true;
            return resolve();
          }
          lastFired = this.clock.step(until);
          if (last) resolve();
        };
        for (let i = 0; i < RUN_BATCH; i++) setImmediate(next, i === RUN_BATCH - 1);
      });
    }
  }

  /** Resolves `promise`, running virtual time while it is pending (at most 60 virtual seconds). */
  async #settled<T>(promise: Promise<T>): Promise<T> {
    let result: { value: T } | { error: unknown } | undefined;
    promise.then((value) => (result = { value }), (error: unknown) => (result = { error }));
    for (let i = 0; i < 60_000 && result === undefined; i++) {
      await settle();
      if (result !== undefined) break;
      const next = this.clock.nextDueMs();
      if (next === undefined) continue;
      this.clock.step(next);
    }
    if (result === undefined) throw new Error('a simulated operation did not finish within 60,000 steps');
    if ('error' in result) throw result.error;
    return result.value;
  }
}
