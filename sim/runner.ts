import { createHash } from 'node:crypto';
import * as A from '@automerge/automerge';
import { DISPATCHER_SINGLETON, POOLS_SINGLETON, type PlacementConfig } from '../actors/index.ts';
import { type DocId, FLEET_DOC_ID, writerOfDoc } from '../crdt-schema/index.ts';
import { type PeerId, SeededRandom, actorPrefixFor, signDecision, toBase64Url } from '../mesh/index.ts';
import { ACTOR_FAULTS, type ActorFault } from './actor-faults.ts';
import { SimFleet, type SimNode, type SimObservation } from './fleet.ts';
import { PoolWatch } from './pool-watch.ts';
import { TaskWatch } from './task-watch.ts';
import { type ScenarioContext, scenarioNamed } from './scenarios/index.ts';

export const SENSOR = 'sensor.instance-silence';
/** Singleton safety is checked this often (virtual time). */
const SAFETY_CHECK_MS = 50;
/** Acknowledged writes (operator decisions) are made this often during a run. */
const WRITE_EVERY_MS = 10_000;

export interface InvariantResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What `powernode sim run` prints. */
export interface SimReport {
  readonly scenario: string;
  readonly nodes: number;
  readonly seed: number;
  readonly simulatedMs: number;
  readonly wallMs: number;
  readonly traceHash: string;
  readonly invariants: readonly InvariantResult[];
  readonly metrics: {
    readonly detectionMsP99: number | null;
    readonly failoverMsP99: number | null;
    readonly convergenceMsP99: number | null;
    readonly detectionMsP50: number | null;
    readonly failoverMsP50: number | null;
    /** From an acknowledged write (an operator decision) until every live node holds it. */
    readonly writeVisibleMsP50: number | null;
    readonly writeVisibleMsP99: number | null;
    /** How many samples each figure rests on. */
    readonly samples: { readonly detection: number; readonly failover: number; readonly convergence: number; readonly writeVisible: number };
    readonly messages: number;
    readonly bytes: number;
  };
}

export interface SimRunOptions {
  readonly scenario: string;
  readonly nodes: number;
  readonly seed: number;
  /** Whether the fleet starts with every node document on every node (default true; {@link SimFleetOptions.replicatedStart}). */
  readonly replicatedStart?: boolean;
  readonly durationMs: number;
  /**
   * Test-only faults: `allow-duplicate-singletons` turns the quorum lease and handover off;
   * `forget-task-runs` and `forget-pool-claims` hide records from the task and pool actors
   * (sim/actor-faults.ts).
   */
  readonly faults?: readonly string[];
  /** How many members vote in the lease and the promises (default: the product's, actors/lease.ts). */
  readonly voters?: number;
  /** Called with each trace line (for debugging a seed). */
  readonly onTrace?: (line: string) => void;
}

/** Thrown for a scenario name no one knows. */
export class UnknownScenarioError extends Error {
  override name = 'UnknownScenarioError';
}

/** The `fraction` quantile (nearest rank) of `values`, rounded to a millisecond; null without samples. */
function quantile(values: readonly number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!);
}

const p99 = (values: readonly number[]): number | null => quantile(values, 0.99);
const p50 = (values: readonly number[]): number | null => quantile(values, 0.5);

/**
 * Runs one scenario on a simulated fleet and checks the invariants (docs/SIMULATION.md): the same
 * options always give the same trace hash.
 */
export async function runSimulation(options: SimRunOptions): Promise<SimReport> {
  const scenario = scenarioNamed(options.scenario);
  if (scenario === undefined) throw new UnknownScenarioError(`no scenario named ${options.scenario}: see powernode sim list`);
  const wallStart = performance.now();
  const trace = createHash('sha256');
  const line = (text: string): void => {
    trace.update(`${text}\n`);
    options.onTrace?.(text);
  };
  const watch = new Watcher();
  const placement: Partial<PlacementConfig> = options.faults?.includes('allow-duplicate-singletons') === true ? { unsafeIgnoreQuorum: true } : {};
  const workloads = scenario.workloads ?? [];
  const actorFaults = (options.faults ?? []).filter((f): f is ActorFault => (ACTOR_FAULTS as readonly string[]).includes(f));
  let fleet: SimFleet | undefined;
  const observe = (node: SimNode, event: SimObservation): void => {
    const t = fleet === undefined ? 0 : fleet.clock.now() - watch.startMs;
    line(`${t} ${node.index} ${JSON.stringify(event)}`);
    watch.observed(t, node, event);
  };
  fleet = await SimFleet.create({ seed: options.seed, nodes: options.nodes, observe, placement, ...(options.voters === undefined ? {} : { lease: { voters: options.voters } }), ...(options.replicatedStart === undefined ? {} : { replicatedStart: options.replicatedStart }), ...(workloads.length === 0 ? {} : { catalogActors: true, actorFaults }) });
  watch.startMs = fleet.clock.now();
  if (workloads.length > 0) watch.singletons = [SENSOR, DISPATCHER_SINGLETON, POOLS_SINGLETON];
  // The operator's workloads draw from their own random source, apart from the faults'.
  if (workloads.includes('tasks')) watch.tasks = new TaskWatch(fleet, new SeededRandom(options.seed * 7 + 5), watch.startMs, line);
  if (workloads.includes('pools')) watch.pools = new PoolWatch(fleet, new SeededRandom(options.seed * 7 + 6), watch.startMs, line);
  const startedAt = fleet.clock.now();
  const context = watch.context(fleet, options.durationMs, line);
  await scenario.play(context);
  const simulatedMs = fleet.clock.now() - startedAt;
  const invariants = [
    watch.safety(),
    watch.oneOwnerPerEpoch(fleet),
    watch.convergence(fleet),
    watch.membership(fleet),
    watch.durability(fleet),
    authority(fleet),
    ...(watch.tasks?.invariants() ?? []),
    ...(watch.pools?.invariants() ?? []),
  ];
  for (const node of fleet.nodes) line(`end ${node.index} ${node.node === undefined ? 'down' : node.node.store.ids().map((id) => `${id}=${node.node!.store.digest(id)}`).join(',')}`);
  return {
    scenario: scenario.name,
    nodes: options.nodes,
    seed: options.seed,
    simulatedMs,
    wallMs: Math.round(performance.now() - wallStart),
    traceHash: trace.digest('hex'),
    invariants,
    metrics: {
      detectionMsP99: p99(watch.detections),
      failoverMsP99: p99(watch.failovers),
      convergenceMsP99: p99(watch.convergences),
      detectionMsP50: p50(watch.detections),
      failoverMsP50: p50(watch.failovers),
      writeVisibleMsP50: p50(watch.writesVisible),
      writeVisibleMsP99: p99(watch.writesVisible),
      samples: { detection: watch.detections.length, failover: watch.failovers.length, convergence: watch.convergences.length, writeVisible: watch.writesVisible.length },
      messages: fleet.network.messages,
      bytes: fleet.network.bytes,
    },
  };
}

/** Watches a run: faults as they happen, what nodes observe, and the invariants along the way. */
class Watcher {
  startMs = 0;
  /** The singletons whose safety is checked: the sensor, and the dispatcher and pools owner where the fleet runs them. */
  singletons: readonly string[] = [SENSOR];
  tasks: TaskWatch | undefined;
  pools: PoolWatch | undefined;
  readonly detections: number[] = [];
  readonly failovers: number[] = [];
  readonly convergences: number[] = [];
  readonly writesVisible: number[] = [];
  /** Acknowledged writes not yet seen on every live node, with when they were acknowledged. */
  readonly #unseenWrites: Array<{ signature: string; atMs: number; missing: Set<number> }> = [];
  /**
   * Each crashed node, until it crashes again: detection counts until it restarts; failover also
   * after (a handover that waited until the restarted node recorded its stop took that long).
   */
  readonly #crashes = new Map<string, { atMs: number; wasOwner: boolean; restarted: boolean; seenDead: Set<number>; seenMoved: Set<number> }>();
  readonly #violations: string[] = [];
  /** Signatures of the operator decisions a node acknowledged (stored durably). */
  readonly #acknowledged: string[] = [];
  #quietAtMs: number | undefined;
  #lastSafetyMs = -Infinity;
  #writes = 0;

  observed(t: number, node: SimNode, event: SimObservation): void {
    if (event.type === 'member' && event.state === 'dead') {
      const crash = this.#crashes.get(event.peer);
      if (crash !== undefined && !crash.restarted && !crash.seenDead.has(node.index)) {
        crash.seenDead.add(node.index);
        this.detections.push(t - crash.atMs);
      }
    }
    if (event.type === 'singletons') {
      const sensor = event.singletons.find((s) => s.name === SENSOR);
      for (const [peer, crash] of this.#crashes) {
        if (!crash.wasOwner || node.peer === peer || crash.seenMoved.has(node.index) || sensor === undefined || !sensor.active || sensor.owner === peer) continue;
        crash.seenMoved.add(node.index);
        this.failovers.push(t - crash.atMs);
      }
    }
  }

  context(fleet: SimFleet, durationMs: number, line: (text: string) => void): ScenarioContext {
    const now = (): number => fleet.clock.now() - this.startMs;
    return {
      fleet,
      durationMs,
      run: async (ms) => {
        const until = fleet.clock.now() + ms;
        while (fleet.clock.now() < until) {
          const slice = Math.min(WRITE_EVERY_MS, until - fleet.clock.now());
          await fleet.run(slice, () => this.#onInstant(fleet));
          // Writes go on while faults do; after the quiet mark, convergence is what is measured.
          if (this.#quietAtMs === undefined) await this.#write(fleet, now());
        }
      },
      crash: async (index, crashOptions) => {
        const sim = fleet.nodes[index]!;
        const wasOwner = sim.plane?.placement.isActive(SENSOR) === true;
        line(`${now()} crash ${index}${crashOptions?.powerLoss === true ? ' power-loss' : ''}`);
        this.#crashes.set(sim.peer, { atMs: now(), wasOwner, restarted: false, seenDead: new Set(), seenMoved: new Set() });
        await fleet.crash(index, crashOptions);
      },
      restart: async (index) => {
        line(`${now()} restart ${index}`);
        const crash = this.#crashes.get(fleet.nodes[index]!.peer);
        if (crash !== undefined) crash.restarted = true;
        await fleet.start(index);
      },
      pause: (index) => {
        line(`${now()} pause ${index}`);
        fleet.clock.pause(index);
      },
      resume: (index) => {
        line(`${now()} resume ${index}`);
        fleet.clock.resume(index);
      },
      ownerOf: (singleton) => fleet.nodes.find((n) => n.plane?.placement.isActive(singleton) === true)?.index,
      quiet: () => {
        this.#quietAtMs = now();
        this.tasks?.stop();
        this.pools?.stop();
        line(`${now()} quiet`);
      },
      ...(this.tasks === undefined ? {} : { tasks: this.tasks }),
      ...(this.pools === undefined ? {} : { pools: this.pools }),
    };
  }

  /** After every virtual instant: the safety check (every 50 ms) and writes not seen everywhere yet. */
  #onInstant(fleet: SimFleet): void {
    const t = fleet.clock.now() - this.startMs;
    this.#checkSafety(fleet, t);
    if (this.#unseenWrites.length > 0) this.#checkWritesVisible(fleet, t);
    this.pools?.onInstant();
  }

  /** Two nodes that can reach each other both running one singleton: the violation safety forbids. */
  #checkSafety(fleet: SimFleet, t: number): void {
    if (t - this.#lastSafetyMs < SAFETY_CHECK_MS) return;
    this.#lastSafetyMs = t;
    this.#checkConvergence(fleet, t);
    this.tasks?.check();
    for (const singleton of this.singletons) {
      const running = fleet.nodes.filter((n) => n.plane?.placement.isActive(singleton) === true && !fleet.clock.isPaused(n.index));
      for (let i = 0; i < running.length; i++) {
        for (let j = i + 1; j < running.length; j++) {
          const a = running[i]!.peer;
          const b = running[j]!.peer;
          if (fleet.network.isBlocked(a, b) && fleet.network.isBlocked(b, a)) continue;
          if (this.#violations.length < 10) this.#violations.push(`at ${t} ms nodes ${running[i]!.index} and ${running[j]!.index} both ran ${singleton}, on the same side`);
        }
      }
    }
  }

  /** An operator decision (a label) through a random up node; acknowledged ones must survive. */
  async #write(fleet: SimFleet, t: number): Promise<void> {
    // Not through a paused node: its answer waits for the resume, which waits for this write.
    const up = fleet.nodes.filter((n) => n.node !== undefined && n.node.fleet() !== undefined && !fleet.clock.isPaused(n.index));
    if (up.length === 0 || fleet.operatorKey === undefined) return;
    const through = up[fleet.random.int(up.length)]!;
    const target = up[fleet.random.int(up.length)]!;
    const key = 'sim.write';
    const value = `w${this.#writes++}`;
    const decision = signDecision({ seed: fleet.operatorKey.seed, publicKey: toBase64Url(fleet.operatorKey.publicKey) }, fleet.fleetId, 'labels', { node: target.peer, set: { [key]: value }, remove: [] }, through.clock.now());
    const writing = through.node!.decide(decision).then(
      () => {
        this.#acknowledged.push(decision.signature);
        const missing = new Set(fleet.nodes.filter((n) => n.node !== undefined).map((n) => n.index));
        this.#unseenWrites.push({ signature: decision.signature, atMs: fleet.clock.now() - this.startMs, missing });
      },
      () => {},
    );
    await fleet.run(200, () => this.#onInstant(fleet));
    await writing;
  }

  /**
   * Acknowledged writes every live node now holds: how long each took to get everywhere. Checked
   * after every virtual instant while a write is unseen somewhere, on the nodes still lacking it.
   */
  #checkWritesVisible(fleet: SimFleet, t: number): void {
    for (let i = this.#unseenWrites.length - 1; i >= 0; i--) {
      const write = this.#unseenWrites[i]!;
      for (const index of write.missing) {
        const node = fleet.nodes[index]!.node;
        const doc = node?.store.get(FLEET_DOC_ID) as { decisions?: Record<string, unknown> } | undefined;
        if (node === undefined || doc?.decisions?.[write.signature] !== undefined) write.missing.delete(index);
      }
      if (write.missing.size > 0) continue;
      this.writesVisible.push(t - write.atMs);
      this.#unseenWrites.splice(i, 1);
    }
  }

  #checkConvergence(fleet: SimFleet, t: number): void {
    if (this.#quietAtMs === undefined || this.convergences.length > 0) return;
    const up = fleet.nodes.filter((n) => n.node !== undefined);
    // Every live node holds the documents the first holds (events aside), at the same digests:
    // compared document by document, stopping at the first difference.
    const held = (n: SimNode): DocId[] => n.node!.store.ids().filter((id) => !id.startsWith('events/'));
    const first = up[0];
    if (first === undefined) {
      this.convergences.push(t - this.#quietAtMs);
      return;
    }
    const ids = held(first);
    const digests = ids.map((id) => first.node!.store.digest(id));
    const same = (n: SimNode): boolean => {
      const theirs = held(n);
      return theirs.length === ids.length && theirs.every((id, i) => id === ids[i] && n.node!.store.digest(id) === digests[i]);
    };
    if (up.every(same)) this.convergences.push(t - this.#quietAtMs);
  }

  safety(): InvariantResult {
    return { name: 'singleton-safety', ok: this.#violations.length === 0, detail: this.#violations.length === 0 ? 'never two owners on one side' : this.#violations.join('; ') };
  }

  oneOwnerPerEpoch(fleet: SimFleet): InvariantResult {
    const owners = new Map<string, Set<string>>();
    for (const n of fleet.nodes) {
      if (n.node === undefined) continue;
      for (const [peer, records] of n.node.activationRecords()) {
        for (const singleton of this.singletons) {
          const record = records[singleton];
          if (record === undefined) continue;
          // The sensor's epochs are named alone, as before the other singletons were watched.
          const key = singleton === SENSOR ? `epoch ${record.epoch}` : `${singleton} epoch ${record.epoch}`;
          const set = owners.get(key) ?? new Set<string>();
          set.add(peer);
          owners.set(key, set);
        }
      }
    }
    const shared = [...owners].filter(([, set]) => set.size > 1).map(([epoch, set]) => `${epoch}: ${[...set].join(', ')}`);
    return { name: 'one-owner-per-epoch', ok: shared.length === 0, detail: shared.length === 0 ? `${owners.size} epochs, one owner each` : shared.join('; ') };
  }

  convergence(fleet: SimFleet): InvariantResult {
    const ok = this.convergences.length > 0;
    const up = fleet.nodes.filter((n) => n.node !== undefined).length;
    return { name: 'convergence', ok, detail: ok ? `${up} live nodes held the same documents ${Math.round(this.convergences[0]!)} ms after the faults stopped` : 'live nodes still hold different documents at the end' };
  }

  membership(fleet: SimFleet): InvariantResult {
    const wrong: string[] = [];
    for (const observer of fleet.nodes) {
      if (observer.node === undefined) continue;
      // What `members()` says of each member's state, without building every member's status.
      const node = observer.node;
      const states = new Map(node.membershipList().map((m) => [m.peerId, m.peerId === node.peer ? 'alive' : (node.swim.state(m.peerId) ?? 'alive')]));
      for (const member of fleet.nodes) {
        const state = states.get(member.peer);
        const expected = member.node === undefined ? ['dead', 'left'] : ['alive'];
        if (state === undefined || !expected.includes(state)) wrong.push(`${observer.index} sees ${member.index} ${state ?? 'missing'}`);
      }
    }
    return { name: 'membership-accurate', ok: wrong.length === 0, detail: wrong.length === 0 ? 'every live node sees the live as alive and the crashed as dead' : wrong.slice(0, 10).join('; ') };
  }

  /**
   * Every acknowledged decision is in every live node's fleet document. (Which label a node
   * shows is the decision with the latest operator time; a skewed operator clock reorders
   * labels, it loses no decision.)
   */
  durability(fleet: SimFleet): InvariantResult {
    const missing: string[] = [];
    for (const n of fleet.nodes) {
      const doc = n.node?.store.get(FLEET_DOC_ID) as { decisions?: Record<string, unknown> } | undefined;
      if (doc === undefined) continue;
      for (const signature of this.#acknowledged) if (doc.decisions?.[signature] === undefined) missing.push(`${n.index} lacks decision ${signature.slice(0, 12)}`);
    }
    return { name: 'no-acknowledged-write-lost', ok: missing.length === 0, detail: missing.length === 0 ? `${this.#acknowledged.length} acknowledged writes present on every live node` : missing.slice(0, 10).join('; ') };
  }
}

/**
 * No document any live node holds has a change made by anyone but its writer: every change in
 * `node/<peer>` and `events/…/<peer>` carries that peer's actor prefix (replicas take in only
 * changes its seals cover, so a forged change would show here). @internal Exported for its test.
 */
export function authority(fleet: SimFleet): InvariantResult {
  const bad: string[] = [];
  // Counted once per document version (its id and digest: the same heads are the same changes),
  // however many nodes hold it, as their own copy or a shared one.
  const counted = new Map<string, number>();
  for (const n of fleet.nodes) {
    const store = n.node?.store;
    if (store === undefined) continue;
    for (const id of store.ids()) {
      const writer = writerOfDoc(id);
      if (writer === undefined) continue;
      const version = `${id} ${store.digest(id as DocId)}`;
      let foreign = counted.get(version);
      if (foreign === undefined) {
        const prefix = actorPrefixFor(writer);
        counted.set(version, (foreign = A.getChangesMetaSince(store.get(id as DocId)!, []).filter((change) => !change.actor.startsWith(prefix)).length));
      }
      if (foreign > 0) bad.push(`${n.index} holds ${id} with ${foreign} changes by another actor`);
    }
  }
  return { name: 'no-change-without-authority', ok: bad.length === 0, detail: bad.length === 0 ? 'every document held has changes by its writer only' : bad.slice(0, 10).join('; ') };
}

export type { PeerId };
