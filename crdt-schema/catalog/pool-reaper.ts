import { checkUnique, fail } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import { compareText } from './order.ts';
import type { MemberEvent, Pool, PoolMember } from './pool.ts';

/** The original's reaper timeouts: a member warming for 30 minutes, or 4 hours old and still ready, is recycled. */
export const REAPER_DEFAULTS = { warmingTimeoutMs: 30 * 60_000, readyTtlMs: 4 * 3_600_000 } as const;

/** What an acquire should do: claim this member, or refuse and say why. */
export type ClaimDecision =
  | { readonly type: 'claim'; readonly instance: string }
  | { readonly type: 'refuse'; readonly reason: 'not-active' | 'no-ready-member'; readonly message: string };

/** One thing the reaper wants done; the effect layer does it. */
export type ReapDecision =
  | { readonly type: 'transition'; readonly instance: string; readonly event: Extract<MemberEvent, 'fail' | 'recycle'>; readonly reason: 'warming-timeout' | 'ready-expired' | 'draining' }
  | { readonly type: 'terminate'; readonly instance: string; readonly reason: 'errored' }
  | { readonly type: 'provision'; readonly count: number; readonly cappedByMax: boolean };

/**
 * The member an acquire claims: the oldest ready one (earliest warming start, then instance id),
 * only from an active pool. Deciding it is pure; making two concurrent claims on different nodes
 * never pick the same member is the job of whoever applies the decision (a pool singleton).
 */
export function chooseClaim(pool: Pool, members: readonly PoolMember[]): ClaimDecision {
  checkMembers(members);
  if (pool.status !== 'active') return { type: 'refuse', reason: 'not-active', message: `pool ${pool.name} is ${pool.status}; only an active pool hands out members` };
  const ready = members.filter((member) => member.state === 'ready').sort(oldestFirst);
  const chosen = ready[0];
  if (chosen !== undefined) return { type: 'claim', instance: chosen.instance };
  const warming = members.filter((member) => member.state === 'warming').length;
  return { type: 'refuse', reason: 'no-ready-member', message: `pool ${pool.name} has no ready member (target ${pool.target}, warming ${warming}); the reaper replenishes it` };
}

/**
 * One reaper pass at `nowMs`, as the original's: an active or draining pool has members warming
 * longer than the warming timeout failed and ready members older than the ready TTL recycled
 * (a draining pool recycles every ready member: that is what empties it), errored members
 * terminated; an active pool is then replenished to its target, counting what is warming and
 * ready after the pass, never past max (claimed members count toward max). A paused or archived
 * pool is left alone. Decisions come in instance order, provisioning last.
 */
export function reap(pool: Pool, members: readonly PoolMember[], nowMs: number, timeouts = REAPER_DEFAULTS): ReapDecision[] {
  checkMembers(members);
  if (pool.status !== 'active' && pool.status !== 'draining') return [];
  const decisions: ReapDecision[] = [];
  const leaving = new Set<string>();
  for (const member of [...members].sort((a, b) => compareText(a.instance, b.instance))) {
    const decision = memberDecision(pool, member, nowMs - member.warmingStartedAtMs, timeouts);
    if (decision === undefined) continue;
    decisions.push(decision);
    if (decision.type === 'transition') leaving.add(member.instance);
  }
  if (pool.status === 'active') {
    const staying = members.filter((member) => !leaving.has(member.instance));
    const available = staying.filter((member) => member.state === 'ready' || member.state === 'warming').length;
    const claimed = staying.filter((member) => member.state === 'claimed').length;
    const deficit = Math.max(pool.target - available, 0);
    const count = Math.min(deficit, Math.max(pool.max - available - claimed, 0));
    if (count > 0) decisions.push({ type: 'provision', count, cappedByMax: count < deficit });
  }
  return decisions;
}

function memberDecision(pool: Pool, member: PoolMember, ageMs: number, timeouts: typeof REAPER_DEFAULTS): ReapDecision | undefined {
  const instance = member.instance;
  if (member.state === 'warming' && ageMs > timeouts.warmingTimeoutMs) return { type: 'transition', instance, event: 'fail', reason: 'warming-timeout' };
  if (member.state === 'ready' && pool.status === 'draining') return { type: 'transition', instance, event: 'recycle', reason: 'draining' };
  if (member.state === 'ready' && ageMs > timeouts.readyTtlMs) return { type: 'transition', instance, event: 'recycle', reason: 'ready-expired' };
  if (member.state === 'errored') return { type: 'terminate', instance, reason: 'errored' };
  return undefined;
}

function oldestFirst(a: PoolMember, b: PoolMember): number {
  return a.warmingStartedAtMs - b.warmingStartedAtMs || compareText(a.instance, b.instance);
}

function checkMembers(members: readonly PoolMember[]): void {
  if (members.length > CATALOG_LIMITS.poolMembersMax) fail('pool members', `at most ${CATALOG_LIMITS.poolMembersMax} (got ${members.length})`);
  checkUnique(members, 'pool members', (member) => member.instance);
}
