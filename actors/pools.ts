import { type Pool, type PoolClaimRecord, type PoolMember, type PoolMemberView, REAPER_DEFAULTS, chooseClaim, reap } from '../crdt-schema/index.ts';
import { type EventInput, s } from '../mesh/index.ts';
import type { Behavior, Effect, PortOutcome } from './host.ts';
import type { MembersMessage, SingletonContext, SingletonSpec } from './placement.ts';

export const POOLS_SINGLETON = 'control.pools';

/** How the pools singleton runs (docs/CATALOG.md §Pool claims). */
export interface PoolsConfig {
  /** A labelled member alive this long is ready (before that: warming). */
  readonly readyAfterMs: number;
  /** How often the reaper looks at the pools. */
  readonly reapEveryMs: number;
  readonly warmingTimeoutMs: number;
  readonly readyTtlMs: number;
  /** Members tried for one acquire before it is refused (a member that refuses or does not answer is skipped). */
  readonly attemptsMax: number;
}

export const DEFAULT_POOLS_CONFIG: PoolsConfig = { readyAfterMs: 3_000, reapEveryMs: 60_000, ...REAPER_DEFAULTS, attemptsMax: 3 };

/** What the singleton's view port answers: the pools and their members as the owner sees them. */
export interface PoolsView {
  readonly now: number;
  /** The owner's document store version when the view was read (orders reservations against records). */
  readonly version: number;
  readonly pools: readonly Pool[];
  readonly members: readonly PoolMemberView[];
}

/** A claim as the acquirer is told it. */
export interface PoolClaim {
  readonly pool: string;
  readonly member: string;
  readonly name: string;
  readonly claimId: string;
  readonly for?: string;
  readonly claimedAt: number;
  readonly epoch: number;
}

/** What the singleton answers an acquire or a release. */
export type PoolAnswer =
  | ({ readonly type: 'claimed' } & PoolClaim)
  | { readonly type: 'released'; readonly pool: string; readonly member: string; readonly claimId: string; readonly reuse: boolean }
  | { readonly type: 'refused'; readonly reason: 'no-such-pool' | 'not-active' | 'no-ready-member' | 'not-claimed' | 'unavailable'; readonly message: string }
  /** The same request is still being handled (a retry of it): ask again shortly. */
  | { readonly type: 'busy' };

/** A member set aside by a claim in flight, until a view shows its record (`doneVersion`) or `untilMs` passes. */
export interface Reservation {
  readonly member: string;
  readonly claimId: string;
  readonly doneVersion?: number;
  readonly untilMs?: number;
}

/** What one acquire decides. */
export type ClaimPlan =
  | { readonly type: 'answer'; readonly answer: PoolAnswer }
  | { readonly type: 'claim'; readonly member: PoolMemberView; readonly replaces?: string };

/**
 * One acquire's decision, a pure function of the owner's view and the claims it has in flight:
 * the same request id again gets the claim already made (a retry is not a second claim); the
 * member is `chooseClaim`'s (the oldest ready one) among those not reserved by a claim in flight.
 * `replaces` names the member's previous claim when the records say it was released, so the
 * member, which holds its last claim until told otherwise, takes the new one.
 */
export function planClaim(view: PoolsView, request: { readonly pool: string; readonly requestId: string }, reserved: readonly Reservation[]): ClaimPlan {
  const existing = view.members.find((m) => (m.record?.claimId === request.requestId && m.record.state === 'claimed') || m.held?.claimId === request.requestId);
  if (existing !== undefined) return { type: 'answer', answer: claimAnswer(existing) };
  if (reserved.some((r) => r.claimId === request.requestId)) return { type: 'answer', answer: { type: 'busy' } };
  const pool = view.pools.find((p) => p.name === request.pool);
  if (pool === undefined) return { type: 'answer', answer: { type: 'refused', reason: 'no-such-pool', message: `no pool named ${JSON.stringify(request.pool)} in the catalog (powernode pool list)` } };
  const taken = new Set(reserved.map((r) => r.member));
  const members = view.members.filter((m) => m.pool === pool.name);
  const candidates: PoolMember[] = members
    .filter((m) => m.state !== 'down')
    .map((m) => ({ instance: m.member, state: taken.has(m.member) ? 'claimed' : (m.state as PoolMember['state']), warmingStartedAtMs: m.warmingStartedAt }));
  const decision = chooseClaim(pool, candidates);
  if (decision.type === 'refuse') {
    const message = decision.reason === 'not-active' ? decision.message : noReadyMessage(pool.name, members, taken);
    return { type: 'answer', answer: { type: 'refused', reason: decision.reason, message } };
  }
  const member = members.find((m) => m.member === decision.instance)!;
  const previous = member.record?.claimId ?? member.held?.claimId;
  return previous === undefined ? { type: 'claim', member } : { type: 'claim', member, replaces: previous };
}

function noReadyMessage(pool: string, members: readonly PoolMemberView[], taken: ReadonlySet<string>): string {
  const counts = new Map<string, number>();
  for (const m of members) {
    const state = taken.has(m.member) ? 'claimed' : m.state;
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  const summary = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([state, n]) => `${n} ${state}`).join(', ');
  return `pool ${pool} has no ready member (${members.length === 0 ? 'no members' : summary}): release one, or label another node ${`pool=${pool}`}`;
}

function claimAnswer(member: PoolMemberView): PoolAnswer {
  const record = member.record?.state === 'claimed' ? member.record : undefined;
  const claimId = record?.claimId ?? member.held!.claimId;
  return {
    type: 'claimed',
    pool: member.pool,
    member: member.member,
    name: member.name,
    claimId,
    ...(record?.for === undefined ? {} : { for: record.for }),
    claimedAt: record?.claimedAt ?? member.held!.at,
    epoch: record?.epoch ?? member.held!.epoch,
  };
}

/** What one reaper pass decides: records to write, events to emit, and the deficits it reported. */
export interface ReapPlan {
  readonly records: readonly PoolClaimRecord[];
  readonly events: readonly EventInput[];
  readonly belowTarget: Readonly<Record<string, number>>;
}

/**
 * One reaper pass (the catalog's `reap` over each pool's members, claims in flight counted as
 * claimed): a member warming too long is recorded `errored`, a ready member past its TTL (or in a
 * draining pool) `recycled` — both hold until the member restarts. A pool below its target gets a
 * `pool.below_target` event when its deficit changes: there is no provider to provision from, so
 * an operator labels (or starts) more nodes. `terminate` of an errored member has nothing to do.
 */
export function planReap(view: PoolsView, reserved: readonly Reservation[], reported: Readonly<Record<string, number>>, context: { readonly epoch: number; readonly config: PoolsConfig }): ReapPlan {
  const taken = new Set(reserved.map((r) => r.member));
  const records: PoolClaimRecord[] = [];
  const events: EventInput[] = [];
  const belowTarget: Record<string, number> = {};
  for (const pool of view.pools) {
    const members = view.members.filter((m) => m.pool === pool.name && m.state !== 'down');
    const input: PoolMember[] = members.map((m) => ({ instance: m.member, state: taken.has(m.member) ? 'claimed' : (m.state as PoolMember['state']), warmingStartedAtMs: m.warmingStartedAt }));
    for (const decision of reap(pool, input, view.now, { warmingTimeoutMs: context.config.warmingTimeoutMs, readyTtlMs: context.config.readyTtlMs })) {
      if (decision.type === 'provision') {
        belowTarget[pool.name] = decision.count;
        continue;
      }
      if (decision.type !== 'transition') continue;
      const member = members.find((m) => m.member === decision.instance)!;
      records.push({
        pool: pool.name,
        member: member.member,
        claimId: member.record?.claimId ?? `reaper:${context.epoch}:${view.now}`,
        state: decision.event === 'fail' ? 'errored' : 'recycled',
        epoch: context.epoch,
        at: view.now,
        claimedAt: member.record?.claimedAt ?? view.now,
        reason: decision.reason,
        memberStartedAt: member.startedAt ?? 0,
      });
    }
    const deficit = belowTarget[pool.name] ?? 0;
    if (deficit > 0 && reported[pool.name] !== deficit) {
      events.push({
        kind: 'pool.below_target',
        severity: 'medium',
        subject: pool.name,
        detail: `pool ${pool.name} is ${deficit} below its target of ${pool.target}; there is no provider to start machines from: label more nodes pool=${pool.name}`,
        payload: { pool: pool.name, target: pool.target, missing: deficit },
      });
    }
  }
  return { records, events, belowTarget };
}

interface PoolsState {
  readonly ticking: boolean;
  readonly reserved: readonly Reservation[];
  readonly belowTarget: Readonly<Record<string, number>>;
}

/** A request from any node (over the actor protocol): `acquire` or `release`. */
export interface PoolRequest {
  readonly type: 'acquire' | 'release';
  readonly pool: string;
  /** The request's id: a claim id for an acquire (a retry of it is answered with the same claim). */
  readonly requestId: string;
  /** release: the member's peer id. */
  readonly member?: string;
  readonly for?: string;
  /** release: give the member back as it is (ready at once) instead of draining it. */
  readonly reuse?: boolean;
  /** The node the request came through. */
  readonly via: string;
}

/** The shape a request from another node is checked against before it reaches the mailbox. */
export const poolRequestShape: s.Shape<PoolRequest> = s.object({
  type: s.oneOf(['acquire', 'release'] as const),
  pool: s.string({ min: 1, max: 64 }),
  requestId: s.string({ min: 1, max: 100 }),
  member: s.optional(s.string({ min: 1, max: 100 })),
  for: s.optional(s.string({ max: 200 })),
  reuse: s.optional(s.boolean()),
  via: s.string({ min: 1, max: 100 }),
}) as s.Shape<PoolRequest>;

/**
 * What the claim port answers: the member took the claim, or holds another one (recorded as
 * claimed), or the claim is unsettled — the member may hold it (its answer was lost, or this owner
 * could not record it), so the same member is asked again, never another one.
 */
export type ClaimOutcome =
  | { readonly result: 'claimed'; readonly record: PoolClaimRecord; readonly version: number }
  | { readonly result: 'held-elsewhere'; readonly version: number }
  | { readonly result: 'unsettled'; readonly reason: string };

type PoolsMessage =
  | MembersMessage
  | PoolRequest
  | { readonly type: 'viewed'; readonly request: PoolRequest; readonly attempt: number; readonly outcome: PortOutcome }
  | { readonly type: 'claimed'; readonly claim: object; readonly request: PoolRequest; readonly attempt: number; readonly member: string; readonly name: string; readonly now: number; readonly outcome: PortOutcome }
  | { readonly type: 'released'; readonly outcome: PortOutcome }
  | { readonly type: 'reap' }
  | { readonly type: 'reap-viewed'; readonly outcome: PortOutcome }
  | { readonly type: 'reaped'; readonly belowTarget: Readonly<Record<string, number>>; readonly outcome: PortOutcome };

/** Ports the pools singleton performs on (given to the control plane by whoever wires it). */
export const POOLS_PORTS = { view: 'pools.view', claim: 'pools.claim', release: 'pools.release', reap: 'pools.reap' } as const;

/** How long a member that did not answer a claim order stays set aside (its answer may yet land). */
const UNANSWERED_HOLD_MS = 10_000;

/**
 * The pools singleton's behaviour. Acquires are decided one message at a time against the view
 * and the claims in flight (so two acquires never choose one member); a claim is answered only
 * after the member recorded it and then this owner did, both durably. Every `reapEveryMs` the
 * reaper runs.
 */
export function poolsBehavior(context: SingletonContext, config: PoolsConfig): Behavior<PoolsState, PoolsMessage> {
  const stamp = { epoch: context.epoch, owner: context.owner };
  const view = (request: PoolRequest, attempt: number): Effect => ({ type: 'perform', port: POOLS_PORTS.view, request: {}, carryReply: true, then: (outcome) => ({ type: 'viewed', request, attempt, outcome }) });
  const reply = (answer: PoolAnswer): Effect => ({ type: 'reply', value: answer });
  const unavailable = (message: string): Effect => reply({ type: 'refused', reason: 'unavailable', message });
  const order = (claim: object, request: PoolRequest, attempt: number, member: string, name: string, now: number): Effect => ({
    type: 'perform',
    port: POOLS_PORTS.claim,
    request: claim,
    carryReply: true,
    then: (outcome) => ({ type: 'claimed', claim, request, attempt, member, name, now, outcome }),
  });
  const prune = (reserved: readonly Reservation[], version: number, now: number): Reservation[] =>
    reserved.filter((r) => (r.doneVersion === undefined || version < r.doneVersion) && (r.untilMs === undefined || now < r.untilMs));
  return {
    initial: () => ({ ticking: false, reserved: [], belowTarget: {} }),
    step: (state, message) => {
      switch (message.type) {
        case 'members':
          return state.ticking ? { state } : { state: { ...state, ticking: true }, effects: [{ type: 'perform', port: POOLS_PORTS.view, request: {}, then: (outcome) => ({ type: 'reap-viewed', outcome }) }] };
        case 'acquire':
          return { state, effects: [view(message, 1)] };
        case 'release':
          return { state, effects: [{ type: 'perform', port: POOLS_PORTS.release, request: { ...message, ...stamp }, carryReply: true, then: (outcome) => ({ type: 'released', outcome }) }] };
        case 'released':
          if (message.outcome.ok) return { state, effects: [reply(message.outcome.value as PoolAnswer)] };
          return { state, effects: [reply({ type: 'refused', reason: 'not-claimed', message: message.outcome.error })] };
        case 'viewed': {
          if (!message.outcome.ok) return { state, effects: [unavailable(`the pools owner could not read its records: ${message.outcome.error}`)] };
          const seen = message.outcome.value as PoolsView;
          const reserved = prune(state.reserved, seen.version, seen.now);
          const plan = planClaim(seen, message.request, reserved);
          if (plan.type === 'answer') return { state: { ...state, reserved }, effects: [reply(plan.answer)] };
          const { member } = plan;
          const claim = {
            pool: member.pool,
            member: member.member,
            name: member.name,
            claimId: message.request.requestId,
            claimedAt: seen.now,
            via: message.request.via,
            memberStartedAt: member.startedAt ?? 0,
            ...(message.request.for === undefined ? {} : { for: message.request.for }),
            ...(plan.replaces === undefined ? {} : { replaces: plan.replaces }),
            ...stamp,
          };
          return {
            state: { ...state, reserved: [...reserved, { member: member.member, claimId: message.request.requestId }] },
            effects: [order(claim, message.request, message.attempt, member.member, member.name, seen.now)],
          };
        }
        case 'claimed': {
          const others = state.reserved.filter((r) => r.claimId !== message.request.requestId);
          if (message.outcome.ok) {
            const outcome = message.outcome.value as ClaimOutcome;
            if (outcome.result === 'unsettled') {
              // The member may hold this claim: only it is asked again (it answers a claim it holds
              // as held), so one claim id never ends up on two members. Meanwhile the request is
              // answered busy (the asker asks again with the same id) until the view shows the
              // member's record or the hold passes.
              const aside = [...others, { member: message.member, claimId: message.request.requestId, untilMs: message.now + UNANSWERED_HOLD_MS }];
              if (message.attempt < config.attemptsMax) return { state: { ...state, reserved: aside }, effects: [order(message.claim, message.request, message.attempt + 1, message.member, message.name, message.now)] };
              return { state: { ...state, reserved: aside }, effects: [reply({ type: 'busy' })] };
            }
            const reserved = [...others, { member: message.member, claimId: message.request.requestId, doneVersion: outcome.version }];
            if (outcome.result === 'claimed') {
              const r = outcome.record;
              const answer: PoolAnswer = { type: 'claimed', pool: r.pool, member: r.member, name: message.name, claimId: r.claimId, claimedAt: r.claimedAt, epoch: r.epoch, ...(r.for === undefined ? {} : { for: r.for }) };
              return { state: { ...state, reserved }, effects: [reply(answer)] };
            }
            // The member holds a claim this owner had no record of (now recorded): try another.
            if (message.attempt < config.attemptsMax) return { state: { ...state, reserved }, effects: [view(message.request, message.attempt + 1)] };
            return { state: { ...state, reserved }, effects: [unavailable(`pool ${message.request.pool}: the members chosen already held claims; try again`)] };
          }
          // Refused (or failed before the member was asked): set aside for a while all the same, and another member tried.
          const reserved = [...others, { member: message.member, claimId: `unanswered:${message.request.requestId}`, untilMs: message.now + UNANSWERED_HOLD_MS }];
          if (message.attempt < config.attemptsMax) return { state: { ...state, reserved }, effects: [view(message.request, message.attempt + 1)] };
          return { state: { ...state, reserved }, effects: [unavailable(`pool ${message.request.pool}: the member chosen did not take the claim (${message.outcome.error}); try again`)] };
        }
        case 'reap':
          return { state, effects: [{ type: 'perform', port: POOLS_PORTS.view, request: {}, then: (outcome) => ({ type: 'reap-viewed', outcome }) }] };
        case 'reap-viewed': {
          const next: Effect = { type: 'schedule', delayMs: config.reapEveryMs, message: { type: 'reap' } };
          if (!message.outcome.ok) return { state, effects: [next] };
          const seen = message.outcome.value as PoolsView;
          const reserved = prune(state.reserved, seen.version, seen.now);
          const plan = planReap(seen, reserved, state.belowTarget, { epoch: context.epoch, config });
          if (plan.records.length === 0 && plan.events.length === 0) return { state: { ...state, reserved, belowTarget: plan.belowTarget }, effects: [next] };
          const events = plan.events.map((event) => ({ ...event, singleton: context.name, epoch: context.epoch }));
          return {
            state: { ...state, reserved },
            effects: [{ type: 'perform', port: POOLS_PORTS.reap, request: { records: plan.records, events }, then: (outcome) => ({ type: 'reaped', belowTarget: plan.belowTarget, outcome }) }, next],
          };
        }
        case 'reaped':
          // Deficits count as reported only once their events are on record.
          return message.outcome.ok ? { state: { ...state, belowTarget: message.belowTarget } } : { state };
      }
    },
  };
}

/** The pools singleton as every node registers it; reachable from other nodes for acquire and release. */
export function poolsSpec(config: Partial<PoolsConfig> = {}): SingletonSpec {
  const full = { ...DEFAULT_POOLS_CONFIG, ...config };
  return {
    name: POOLS_SINGLETON,
    observesMembers: true,
    options: { remote: poolRequestShape as s.Shape<unknown>, mailbox: 10_000 },
    behavior: (context) => poolsBehavior(context, full) as Behavior<unknown, unknown>,
  };
}
