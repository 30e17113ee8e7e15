import { type HeldClaim, type PoolClaimRecord, type PoolMemberInput, poolMembers } from '../crdt-schema/index.ts';
import { type Clock, type FleetNode, type PeerId, type TimerId, eventIdOf } from '../mesh/index.ts';
import type { ControlPlane } from './control-plane.ts';
import type { EffectPort } from './host.ts';
import { singletonActorName } from './placement.ts';
import { DEFAULT_POOLS_CONFIG, type ClaimOutcome, POOLS_PORTS, POOLS_SINGLETON, type PoolAnswer, type PoolRequest, type PoolsView } from './pools.ts';

/**
 * What a node's pools ports know as owner beyond its documents (claims members took, its own
 * records not yet written), so that every view of that node reads them, the API's as its ports'.
 */
const ownerKnowledge = new WeakMap<FleetNode, { readonly taken: ReadonlyMap<string, TakenClaim>; unwritten(): ReadonlyMap<string, PoolClaimRecord> | undefined }>();

/** A claim a member took in place of an earlier one (the one its order named as `replaces`). */
export interface TakenClaim {
  readonly replaced: string;
  readonly held: HeldClaim;
}

/**
 * The pools and their members as this node sees them (its records, its failure detection).
 * `taken`: claims members answered they took, each replacing an earlier one; a copy of such a
 * member's document that still names the earlier one as held is older than its answer, and is read
 * as holding the one it took (the owner's record, which names that one, then decides).
 */
export function poolsView(
  node: FleetNode,
  controlPlane: ControlPlane,
  clock: Clock,
  readyAfterMs = DEFAULT_POOLS_CONFIG.readyAfterMs,
  taken: ReadonlyMap<string, TakenClaim> | undefined = ownerKnowledge.get(node)?.taken,
  unwritten: ReadonlyMap<string, PoolClaimRecord> | undefined = ownerKnowledge.get(node)?.unwritten(),
): PoolsView {
  const now = clock.now();
  const version = node.store.version;
  const pools = node.desired.catalog().catalog.pools;
  const started = new Map(node.members().map((m) => [m.peerId, m.startedAt]));
  const members: PoolMemberInput[] = controlPlane.members().map((m) => {
    const startedAt = started.get(m.peerId);
    return {
      peerId: m.peerId,
      name: m.name,
      alive: m.peerId === node.peer || m.state === 'alive' || m.state === 'suspect',
      // Up since (a refuted suspicion does not send a ready member back to warming).
      aliveSince: m.peerId === node.peer ? 0 : m.upSince,
      ...(startedAt === undefined ? {} : { startedAt }),
      labels: m.labels,
    };
  });
  let docs = node.pools.all();
  if (taken !== undefined && taken.size > 0) {
    const stale = [...taken].filter(([member, claim]) => docs.get(member)?.held?.claimId === claim.replaced);
    if (stale.length > 0) {
      const current = new Map(docs);
      for (const [member, claim] of stale) current.set(member, { ...current.get(member)!, held: claim.held });
      docs = current;
    }
  }
  // Records this node made as owner and has yet to write: read as if written (its own document).
  if (unwritten !== undefined && unwritten.size > 0) {
    const own = docs.get(node.peer);
    docs = new Map(docs).set(node.peer, { ...own, claims: new Map([...(own?.claims ?? []), ...unwritten]) });
  }
  return { now, version, pools, members: poolMembers({ pools, members, docs, now, readyAfterMs }) };
}

/** A member's answer to a `pool.claim` order. */
export type MemberClaimAnswer = { readonly held: true } | { readonly held: false; readonly current: HeldClaim } | { readonly held: false; readonly reason: string };

/**
 * A node's side of pool claims (the `pool.claim` and `pool.release` executors, behind the epoch
 * fence): this node, as a pool member, records the claim it takes durably before it answers, and
 * takes no other while it holds one that is not released (or named by the order as replaced: the
 * owner's records say it was released — owners no longer send `pool.release`, so after a release
 * the member's own record still names the claim it held, until the next claim replaces it).
 * Orders are handled one at a time.
 */
export class PoolMemberAgent {
  readonly #node: FleetNode;
  readonly #clock: Clock;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(init: { readonly node: FleetNode; readonly clock: Clock }) {
    this.#node = init.node;
    this.#clock = init.clock;
  }

  /** Adds the executors to `controlPlane` (before it starts). */
  register(controlPlane: ControlPlane): void {
    controlPlane.registerExecutor('pool.claim', (body, stamp) => this.#serial(() => this.#claim(JSON.parse(body) as { pool: string; claimId: string; replaces?: string }, stamp.epoch)), { singleton: POOLS_SINGLETON });
    controlPlane.registerExecutor('pool.release', (body, stamp) => this.#serial(() => this.#release(JSON.parse(body) as { pool: string; claimId: string }, stamp.epoch)), { singleton: POOLS_SINGLETON });
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #claim(order: { pool: string; claimId: string; replaces?: string }, epoch: number): Promise<MemberClaimAnswer> {
    const self = this.#node.peer;
    if (this.#node.fleet()?.labels[self]?.['pool'] !== order.pool) return { held: false, reason: `${self} is not labelled pool=${order.pool}` };
    const held = this.#node.pools.of(self).held;
    if (held?.state === 'claimed' && held.claimId === order.claimId) return { held: true };
    if (held?.state === 'claimed' && held.claimId !== order.replaces) return { held: false, current: held };
    await this.#node.pools.recordHeld({ pool: order.pool, claimId: order.claimId, state: 'claimed', epoch, at: this.#clock.now() });
    return { held: true };
  }

  async #release(order: { pool: string; claimId: string }, epoch: number): Promise<{ released: boolean }> {
    const held = this.#node.pools.of(this.#node.peer).held;
    if (held?.claimId !== order.claimId || held.state !== 'claimed') return { released: false };
    // Not fsynced: the owner's record of the release is the one that counts (the fold ignores a
    // held claim the owner's record names), and a member that lost this one after a crash is told
    // again by the next claim's `replaces`. An fsync here would only queue before claims' ones.
    await this.#node.pools.recordHeld({ ...held, state: 'released', epoch, at: this.#clock.now() }, { durable: false });
    return { released: true };
  }
}

/**
 * The pools singleton's ports on one node: read the view; carry out a claim (order the member,
 * which records it durably, then record it here and log `pool.claimed`); a release (record it
 * durably, log `pool.released`); the reaper's records and events.
 */
export function poolPorts(node: FleetNode, clock: Clock, controlPlane: () => ControlPlane): Record<string, EffectPort> {
  const emit = (input: Parameters<FleetNode['events']['emit']>[0]): void => {
    // The claim is on record; the event is its trace and follows the answer: gathered with the
    // pool's other events of the next moments into one change of this node's event bucket (which
    // every node takes in), not a change of its own written between the record and the answer.
    void node.events.emit(input, { gather: true }).catch(() => undefined);
  };
  // Claims members took in place of an earlier one, by member (the latest; one a member at most).
  // Members no longer record a release (see the release port), so until a member's record of its
  // new claim reaches this node, this node's copy names the one it replaced, which the owner's
  // records no longer name: without this, a give-back right after the claim (its record of the
  // release names the new claim) left the member shown claimed by its earlier claim.
  const takenBy = new Map<string, TakenClaim>();
  // Claim records waiting to be written, by member (see the claim port).
  const unwritten = new Map<string, { readonly record: PoolClaimRecord; readonly timer: TimerId }>();
  const unwrittenRecords = (): ReadonlyMap<string, PoolClaimRecord> => new Map([...unwritten].map(([member, { record }]) => [member, record]));
  ownerKnowledge.set(node, { taken: takenBy, unwritten: () => (unwritten.size === 0 ? undefined : unwrittenRecords()) });
  const view = (): PoolsView => poolsView(node, controlPlane(), clock);
  /** Takes a member's claim record out of waiting (superseded by a record about the member written now). */
  const drop = (member: string): void => {
    const waiting = unwritten.get(member);
    if (waiting === undefined) return;
    clock.clearTimeout(waiting.timer);
    unwritten.delete(member);
  };
  const writeLater = (record: PoolClaimRecord): void => {
    drop(record.member);
    const timer = clock.setTimeout(() => {
      if (unwritten.get(record.member)?.record !== record) return;
      unwritten.delete(record.member);
      // A write that fails is the store's to repair (it stores the document again); the member's record holds the claim meanwhile.
      void node.pools.recordClaims([record]).catch(() => undefined);
    }, CLAIM_RECORD_DELAY_MS);
    unwritten.set(record.member, { record, timer });
  };
  return {
    [POOLS_PORTS.view]: async (): Promise<PoolsView> => view(),
    [POOLS_PORTS.claim]: async (request): Promise<ClaimOutcome> => {
      const claim = request as { pool: string; member: string; name: string; claimId: string; claimedAt: number; via: string; memberStartedAt: number; for?: string; replaces?: string; epoch: number; owner: string };
      const body = JSON.stringify({ pool: claim.pool, claimId: claim.claimId, ...(claim.replaces === undefined ? {} : { replaces: claim.replaces }) });
      let answer: Awaited<ReturnType<ControlPlane['order']>>;
      try {
        answer = await controlPlane().order(claim.member as PeerId, POOLS_SINGLETON, { epoch: claim.epoch, owner: claim.owner }, 'pool.claim', body, 2_000);
      } catch (error) {
        // Lost or unanswered: the member may have taken it.
        return { result: 'unsettled', reason: `${claim.name} did not answer: ${String(error)}` };
      }
      if (!answer.accepted) throw new Error(`${claim.member} refused the claim order: ${'detail' in answer ? answer.detail : answer.reason}`);
      const taken = answer.result as MemberClaimAnswer;
      const base = { pool: claim.pool, member: claim.member, epoch: claim.epoch, at: Math.max(clock.now(), claim.claimedAt), memberStartedAt: claim.memberStartedAt };
      if (!taken.held) {
        if (!('current' in taken)) throw new Error(taken.reason);
        // It holds a claim this owner has no record of (an owner answered and was lost before its record spread): on record now.
        drop(claim.member);
        await node.pools.recordClaims([{ ...base, claimId: taken.current.claimId, state: 'claimed', claimedAt: taken.current.at, via: 'member' }]);
        return { result: 'held-elsewhere', version: node.store.version };
      }
      if (claim.replaces === undefined) takenBy.delete(claim.member);
      else takenBy.set(claim.member, { replaced: claim.replaces, held: { pool: claim.pool, claimId: claim.claimId, state: 'claimed', epoch: claim.epoch, at: claim.claimedAt } });
      const record: PoolClaimRecord = { ...base, claimId: claim.claimId, state: 'claimed', claimedAt: claim.claimedAt, via: claim.via, ...(claim.for === undefined ? {} : { for: claim.for }) };
      // The member's record, durable before it answered, is what holds the claim: a next owner
      // reads it, and the member refuses any other claim while it holds this one. This owner's
      // record is in its view at once (its next plans and a release see the claim) and is written
      // CLAIM_RECORD_DELAY_MS after the answer, unless a record about the member made meanwhile
      // (a give-back, which names this claim) takes its place: a claim and a quick give-back are
      // then one change of this node's pools document, which every node takes in, not two.
      // Waiting for its fsync would put a second durable write on every claim's path. An owner
      // that dies before it is stored leaves the member's record, as one that dies before writing
      // it does (docs/CATALOG.md).
      writeLater(record);
      emit({
        id: eventIdOf('pool.claimed', claim.claimId),
        kind: 'pool.claimed',
        severity: 'low',
        subject: claim.member,
        detail: `${claim.name} claimed from pool ${claim.pool}${claim.for === undefined ? '' : ` for ${claim.for}`}`,
        payload: { pool: claim.pool, member: claim.member, claimId: claim.claimId },
        singleton: POOLS_SINGLETON,
        epoch: claim.epoch,
      });
      return { result: 'claimed', record, version: node.store.version };
    },
    [POOLS_PORTS.release]: async (request): Promise<PoolAnswer> => {
      const release = request as PoolRequest & { epoch: number; owner: string };
      const seen = view();
      const member = seen.members.find((m) => m.member === release.member);
      if (member === undefined || member.pool !== release.pool) throw new Error(`${release.member ?? '?'} is not a member of pool ${release.pool}`);
      // The same request again (its answer was lost, or came after the asker's timeout, and it
      // asked again): answered as done, not refused as "not claimed" — the release it asked for is made.
      const done = member.record;
      if (done !== undefined && done.releaseId === release.requestId && (done.state === 'released' || done.state === 'reused')) {
        return { type: 'released', pool: release.pool, member: member.member, claimId: done.claimId, reuse: done.state === 'reused' };
      }
      if (member.state !== 'claimed') throw new Error(`${member.name} in pool ${release.pool} is ${member.state}, not claimed`);
      const claimId = member.record?.state === 'claimed' ? member.record.claimId : member.held!.claimId;
      const record: PoolClaimRecord = {
        pool: release.pool,
        member: member.member,
        claimId,
        state: release.reuse === true ? 'reused' : 'released',
        epoch: release.epoch,
        at: Math.max(seen.now, (member.record?.at ?? 0) + 1),
        claimedAt: member.record?.claimedAt ?? member.held!.at,
        via: release.via,
        memberStartedAt: member.startedAt ?? 0,
        ...(member.record?.for === undefined ? {} : { for: member.record.for }),
        releaseId: release.requestId,
      };
      drop(record.member);
      await node.pools.recordClaims([record]);
      emit({
        id: eventIdOf('pool.released', claimId),
        kind: 'pool.released',
        severity: 'low',
        subject: member.member,
        detail: release.reuse === true ? `${member.name} given back to pool ${release.pool} for reuse: ready again as it is` : `${member.name} released to pool ${release.pool}: draining until it restarts`,
        payload: { pool: release.pool, member: member.member, claimId },
        singleton: POOLS_SINGLETON,
        epoch: release.epoch,
      });
      // The member is not told: this record (durable, naming the claim) is what ends the claim for
      // every reader (the fold ignores a held claim an owner's record names), and the next claim
      // of the member names this one as `replaces`, which the member then takes. Telling it cost
      // an order, an answer and a change of the member's document that every node took in (~15
      // ms of the five-node fleet's CPU and ~9 sync messages a claim and give-back) for a record
      // nothing reads. Members still carry out a `pool.release` order (an owner of an earlier release sends it).
      return { type: 'released', pool: release.pool, member: member.member, claimId, reuse: release.reuse === true };
    },
    [POOLS_PORTS.reap]: async (request) => {
      const { records, events } = request as { records: PoolClaimRecord[]; events: Array<Parameters<FleetNode['events']['emit']>[0]> };
      for (const record of records) drop(record.member);
      await node.pools.recordClaims(records);
      for (const event of events) await node.events.emit(event);
      return null;
    },
  };
}

/** How long an owner's record of a claim waits to be written, for a give-back's record to take its place. */
export const CLAIM_RECORD_DELAY_MS = 100;

/** Thrown when no owner of `control.pools` answered in time: this node may be cut off from the majority. */
export class PoolUnavailableError extends Error {
  override name = 'PoolUnavailableError';
}

const RETRY_MS = 100;

/** How long an acquire or release waits for an owner: a failover takes up to 5 s (docs/PLACEMENT.md), with room for one. */
export const POOL_ASK_TIMEOUT_MS = 10_000;

/**
 * Sends an acquire or release to the owner of `control.pools`, wherever it runs, and waits for
 * its answer. Retries (same request id, so a retried acquire is one claim) while there is no
 * owner, the owner is changing, or an answer was lost, until `timeoutMs`.
 */
export async function askPools(controlPlane: ControlPlane, clock: Clock, self: string, request: PoolRequest, timeoutMs = POOL_ASK_TIMEOUT_MS): Promise<Exclude<PoolAnswer, { type: 'busy' }>> {
  const deadline = clock.now() + timeoutMs;
  let last = 'no owner of control.pools is known';
  for (;;) {
    const left = deadline - clock.now();
    if (left <= 0) throw new PoolUnavailableError(`no owner of ${POOLS_SINGLETON} answered within ${timeoutMs} ms (${last}): this node may be cut off from the majority of the fleet; try again`);
    const placed = controlPlane.placement.view().find((v) => v.name === POOLS_SINGLETON);
    if (placed?.owner !== undefined && placed.owner !== null && placed.active) {
      const path = singletonActorName(POOLS_SINGLETON);
      const askMs = Math.min(left, 3_000);
      try {
        const answer =
          placed.owner === self
            ? await controlPlane.host.ask<PoolAnswer>(path, request, { timeoutMs: askMs })
            : await controlPlane.remote.ask<PoolAnswer>({ node: placed.owner as PeerId, path }, request, { timeoutMs: askMs });
        if (answer.type !== 'busy') return answer;
        last = 'the request was still being handled';
      } catch (error) {
        last = `${placed.owner}: ${(error as Error).message}`;
      }
    } else {
      last = placed?.owner == null ? 'it is not placed yet' : `its last owner ${placed.owner} has stopped it`;
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.min(RETRY_MS, Math.max(deadline - clock.now(), 0))));
  }
}
