import { ImmutableString } from '@automerge/automerge';
import type { MemberState, Pool } from './catalog/pool.ts';
import { plainEntry, toPlain } from './plain.ts';
import { markSchema } from './schema.ts';

/**
 * `pools/<peer>`: what one node recorded about pool claims, sealed by it (docs/CATALOG.md §Pool
 * claims). Two sections:
 * - `claims`, keyed by member peer id: while this node owned `control.pools`, the newest thing it
 *   decided about each member (claimed, released, recycled, errored). Readers take per member
 *   the record of the highest (epoch, at) across all nodes' documents: a deposed owner's records lose.
 * - `held`: the claim this node accepted as a pool member, recorded durably before it answers
 *   the owner. A member holding a claim takes no other until that one is released, so two owners
 *   (or one that lost its records) can never hand it out twice.
 */
export const POOL_RECORD_STATES = ['claimed', 'released', 'reused', 'recycled', 'errored'] as const;
export type PoolRecordState = (typeof POOL_RECORD_STATES)[number];

/** An owner's record about one member. */
export interface PoolClaimRecord {
  readonly pool: string;
  readonly member: string;
  /** The claim this record is about (the latest the member was handed out under). */
  readonly claimId: string;
  readonly state: PoolRecordState;
  /** The `control.pools` epoch it was written under. */
  readonly epoch: number;
  /** When it was written (the owner's clock). */
  readonly at: number;
  /** When the claim was made. */
  readonly claimedAt: number;
  /** What the claimer said it is for. */
  readonly for?: string;
  /** The node the request came through (`member` when only the member's own record said so). */
  readonly via?: string;
  /** The member's start time (its node document) when this was written: a later start means it restarted since. */
  readonly memberStartedAt?: number;
  readonly reason?: string;
  /** For a release: the request that made it, so the same request asked again is answered as done. */
  readonly releaseId?: string;
}

/** The claim a member accepted. */
export interface HeldClaim {
  readonly pool: string;
  readonly claimId: string;
  readonly state: 'claimed' | 'released';
  readonly epoch: number;
  readonly at: number;
}

/**
 * A node's pools document. Each record, and the held claim, is one JSON string (schema 2: one
 * Automerge operation a record, where a map of its fields was about ten); schema 1 documents hold
 * maps, read as before.
 */
export interface PoolsDocument {
  schema?: number;
  claims?: Record<string, unknown>;
  held?: unknown;
}

/** A record as JSON is at most this long (its strings are bounded when written). */
const MAX_RECORD_JSON_CHARS = 8 * 1024;


export const POOL_FOR_CHARS_MAX = 200;

const str = (value: string): ImmutableString => new ImmutableString(value);

/** Records (or replaces) the owner's record about `record.member`. */
export function recordPoolClaim(draft: PoolsDocument, record: PoolClaimRecord): void {
  markSchema(draft, 'pools');
  draft.claims ??= {};
  const entry = {
    pool: record.pool.slice(0, 200),
    member: record.member,
    claimId: record.claimId.slice(0, 200),
    state: record.state,
    epoch: record.epoch,
    at: record.at,
    claimedAt: record.claimedAt,
    ...(record.for === undefined ? {} : { for: record.for.slice(0, POOL_FOR_CHARS_MAX) }),
    ...(record.via === undefined ? {} : { via: record.via.slice(0, 200) }),
    ...(record.memberStartedAt === undefined ? {} : { memberStartedAt: record.memberStartedAt }),
    ...(record.reason === undefined ? {} : { reason: record.reason.slice(0, 500) }),
    ...(record.releaseId === undefined ? {} : { releaseId: record.releaseId.slice(0, 100) }),
  };
  draft.claims[record.member] = str(JSON.stringify(entry));
}

/** Records the claim this node holds as a member. */
export function recordHeldClaim(draft: PoolsDocument, held: HeldClaim): void {
  markSchema(draft, 'pools');
  draft.held = str(JSON.stringify({ pool: held.pool.slice(0, 200), claimId: held.claimId.slice(0, 200), state: held.state, epoch: held.epoch, at: held.at }));
}

const num = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const text = (value: unknown): value is string => typeof value === 'string';

/** The records and the held claim of a pools document; malformed entries are left out. */
export function readPoolsDoc(doc: unknown): { claims: Map<string, PoolClaimRecord>; held?: HeldClaim } {
  const root = (doc === undefined ? {} : toPlain(doc)) as { claims?: Record<string, unknown>; held?: unknown };
  const claims = new Map<string, PoolClaimRecord>();
  for (const [member, entry] of Object.entries(root.claims ?? {})) {
    const raw = plainEntry(entry, MAX_RECORD_JSON_CHARS);
    if (raw === undefined || raw['member'] !== member || !text(raw['pool']) || !text(raw['claimId'])) continue;
    if (!num(raw['epoch']) || !num(raw['at']) || !num(raw['claimedAt']) || !(POOL_RECORD_STATES as readonly unknown[]).includes(raw['state'])) continue;
    claims.set(member, {
      pool: raw['pool'],
      member,
      claimId: raw['claimId'],
      state: raw['state'] as PoolRecordState,
      epoch: raw['epoch'],
      at: raw['at'],
      claimedAt: raw['claimedAt'],
      ...(text(raw['for']) ? { for: raw['for'] } : {}),
      ...(text(raw['via']) ? { via: raw['via'] } : {}),
      ...(num(raw['memberStartedAt']) ? { memberStartedAt: raw['memberStartedAt'] } : {}),
      ...(text(raw['reason']) ? { reason: raw['reason'] } : {}),
      ...(text(raw['releaseId']) ? { releaseId: raw['releaseId'] } : {}),
    });
  }
  const h = root.held === undefined ? undefined : plainEntry(root.held, MAX_RECORD_JSON_CHARS);
  const held: HeldClaim | undefined =
    h !== undefined && text(h['pool']) && text(h['claimId']) && (h['state'] === 'claimed' || h['state'] === 'released') && num(h['epoch']) && num(h['at'])
      ? { pool: h['pool'], claimId: h['claimId'], state: h['state'], epoch: h['epoch'], at: h['at'] }
      : undefined;
  return held === undefined ? { claims } : { claims, held };
}

/** A fleet member as the pool fold reads it. */
export interface PoolMemberInput {
  readonly peerId: string;
  readonly name: string;
  /** Alive or suspect by failure detection (dead and left members are not claimable). */
  readonly alive: boolean;
  /** Since when it has been alive (the reader's clock; 0 when alive since this node started). */
  readonly aliveSince: number;
  /** Its start time from its node document, when held. */
  readonly startedAt?: number;
  readonly labels: Readonly<Record<string, string>>;
}

/** A pool member's state: the pool's member states, or `down` (not alive: not claimable). */
export type PoolMemberStatus = MemberState | 'down';

/** A member as every node shows it. */
export interface PoolMemberView {
  readonly pool: string;
  readonly member: string;
  readonly name: string;
  readonly state: PoolMemberStatus;
  /** When it began warming (its start or its return, whichever is later). */
  readonly warmingStartedAt: number;
  /** Its start time from its node document, when held. */
  readonly startedAt?: number;
  /** The newest owner record about it (highest epoch), if any. */
  readonly record?: PoolClaimRecord;
  /** The claim it holds by its own record, when no owner record names that claim. */
  readonly held?: HeldClaim;
  /**
   * Set when failure detection holds it dead or gone while its state says more than `down`
   * (claimed, draining, errored: what its records say stands, but nobody can reach it now).
   */
  readonly unreachable?: true;
}

/** The label that puts a node in a pool: `pool=<name>`. */
export const POOL_LABEL = 'pool';

/** Records about members from every pools document: per member the one of the highest (epoch, at). */
export function newestPoolRecords(docs: ReadonlyMap<string, { readonly claims: ReadonlyMap<string, PoolClaimRecord> }>): Map<string, PoolClaimRecord> {
  const newest = new Map<string, PoolClaimRecord>();
  for (const doc of docs.values()) {
    for (const [member, record] of doc.claims) {
      const held = newest.get(member);
      if (held === undefined || record.epoch > held.epoch || (record.epoch === held.epoch && record.at > held.at)) newest.set(member, record);
    }
  }
  return newest;
}

/**
 * Every pool member's state. A node labelled `pool=<name>` of a defined pool is a member. Its
 * state, in order: `claimed` while the newest owner record says so (or its own record holds a
 * claim no owner record names: an owner answered and was lost before its record spread);
 * `ready` at once after a release for reuse (opt-in: the next claimer gets it as it is);
 * `draining` after a release or a recycle, and `errored` after the reaper failed it, until it
 * restarts (a start time newer than the record's); `down` when failure detection does not hold it
 * alive; `warming` until it has been up `readyAfterMs`; then `ready`. Sorted by pool, then member.
 */
export function poolMembers(input: {
  readonly pools: readonly Pool[];
  readonly members: readonly PoolMemberInput[];
  readonly docs: ReadonlyMap<string, { readonly claims: ReadonlyMap<string, PoolClaimRecord>; readonly held?: HeldClaim }>;
  readonly now: number;
  readonly readyAfterMs: number;
}): PoolMemberView[] {
  const defined = new Set(input.pools.map((p) => p.name));
  const newest = newestPoolRecords(input.docs);
  const out: PoolMemberView[] = [];
  for (const member of input.members) {
    const pool = member.labels[POOL_LABEL];
    if (pool === undefined || !defined.has(pool)) continue;
    const record = newest.get(member.peerId);
    const ownHeld = input.docs.get(member.peerId)?.held;
    const held = ownHeld?.state === 'claimed' && ownHeld.claimId !== record?.claimId ? ownHeld : undefined;
    const restarted = record !== undefined && (member.startedAt ?? 0) > (record.memberStartedAt ?? record.at);
    // Given back for reuse (opt-in): ready again as it is, its age counted from then.
    const reused = record?.state === 'reused' && !restarted;
    const warmingStartedAt = Math.max(member.startedAt ?? 0, member.aliveSince, reused ? record.at : 0);
    let state: PoolMemberStatus;
    if (record?.state === 'claimed' || held !== undefined) state = 'claimed';
    else if (record !== undefined && !restarted && (record.state === 'released' || record.state === 'recycled')) state = 'draining';
    else if (record !== undefined && !restarted && record.state === 'errored') state = 'errored';
    else if (!member.alive) state = 'down';
    else state = reused || input.now - warmingStartedAt >= input.readyAfterMs ? 'ready' : 'warming';
    out.push({
      pool,
      member: member.peerId,
      name: member.name,
      state,
      warmingStartedAt,
      ...(member.startedAt === undefined ? {} : { startedAt: member.startedAt }),
      ...(record === undefined ? {} : { record }),
      ...(held === undefined ? {} : { held }),
      ...(member.alive || state === 'down' ? {} : { unreachable: true as const }),
    });
  }
  return out.sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
}
