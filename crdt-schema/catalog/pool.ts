import { checkUnique, fail, integerOf, listOf, nameOf, nodeOf, objectOf, oneOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import { StateMachine } from './state-machine.ts';

/** No `persistent`, as in the original: a machine meant to stay is not pool stock. */
export const POOL_LIFECYCLES = ['ephemeral', 'spot'] as const;
export type PoolLifecycle = (typeof POOL_LIFECYCLES)[number];

/** active: claims and replenishment; paused: neither; draining: recycling until empty; archived: kept for the record. */
export const POOL_STATUSES = ['active', 'paused', 'draining', 'archived'] as const;
export type PoolStatus = (typeof POOL_STATUSES)[number];

/** A pool of pre-warmed instances of one template, claimed in seconds instead of booted in minutes. */
export interface Pool {
  readonly name: string;
  readonly template: string;
  /** How many ready-or-warming members the reaper keeps. */
  readonly target: number;
  readonly min: number;
  /** No more members than this (warming, ready and claimed together). */
  readonly max: number;
  readonly lifecycle: PoolLifecycle;
  readonly status: PoolStatus;
}

/** The original's defaults: target 1, min 0, max 10. */
export const POOL_DEFAULTS = { target: 1, min: 0, max: 10 } as const;

/** Checks a pool from outside: sizes are whole numbers with min ≤ target ≤ max ≤ `poolSizeMax`. */
export function poolOf(value: unknown): Pool {
  const raw = objectOf(value, 'pool', ['name', 'template', 'target', 'min', 'max', 'lifecycle', 'status']);
  const name = nameOf(raw['name'], 'pool.name');
  const path = `pool ${JSON.stringify(name)}`;
  const size = (field: 'target' | 'min' | 'max'): number => integerOf(raw[field] ?? POOL_DEFAULTS[field], `${path}.${field}`, 0, CATALOG_LIMITS.poolSizeMax);
  const [target, min, max] = [size('target'), size('min'), size('max')];
  if (min > target) fail(`${path}.target`, `must be at least min (target ${target}, min ${min})`);
  if (target > max) fail(`${path}.target`, `must be at most max (target ${target}, max ${max})`);
  return {
    name,
    template: nameOf(raw['template'], `${path}.template`),
    target,
    min,
    max,
    lifecycle: oneOf(raw['lifecycle'] ?? 'ephemeral', `${path}.lifecycle`, POOL_LIFECYCLES),
    status: oneOf(raw['status'] ?? 'active', `${path}.status`, POOL_STATUSES),
  };
}

/** A pool member's place: warming (booting), ready (claimable), claimed (in use), draining (leaving), errored. */
export const MEMBER_STATES = ['warming', 'ready', 'claimed', 'draining', 'errored'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

export const MEMBER_EVENTS = ['promote', 'claim', 'release', 'reuse', 'recycle', 'fail'] as const;
export type MemberEvent = (typeof MEMBER_EVENTS)[number];

/**
 * promote: its first heartbeat made it ready; claim: handed out; release: given back and recycled
 * (the default: the next claimer gets a fresh machine); reuse: given back as it is (opt-in, one
 * trust domain); recycle: a ready member leaves (expired, or the pool drains); fail: warming timed
 * out, or a terminate failed while draining. A claimed member is never failed under its claimer.
 */
export const memberMachine = new StateMachine<MemberState, MemberEvent>('pool member', [
  { event: 'promote', from: ['warming'], to: 'ready' },
  { event: 'claim', from: ['ready'], to: 'claimed' },
  { event: 'release', from: ['claimed'], to: 'draining' },
  { event: 'reuse', from: ['claimed'], to: 'ready' },
  { event: 'recycle', from: ['ready'], to: 'draining' },
  { event: 'fail', from: ['warming', 'ready', 'draining'], to: 'errored' },
]);

/** A member as the reaper reads it. */
export interface PoolMember {
  readonly instance: string;
  readonly state: MemberState;
  /** When it began warming (reset on reuse); the original measures both timeouts from it. */
  readonly warmingStartedAtMs: number;
}

/** Checks a pool's members from outside: at most `poolMembersMax`, each instance once. */
export function poolMembersOf(value: unknown, path: string): PoolMember[] {
  const members = listOf(value, path, CATALOG_LIMITS.poolMembersMax, (entry, entryPath) => {
    const raw = objectOf(entry, entryPath, ['instance', 'state', 'warmingStartedAtMs']);
    return {
      instance: nodeOf(raw['instance'], `${entryPath}.instance`),
      state: oneOf(raw['state'], `${entryPath}.state`, MEMBER_STATES),
      warmingStartedAtMs: integerOf(raw['warmingStartedAtMs'], `${entryPath}.warmingStartedAtMs`, 0, Number.MAX_SAFE_INTEGER),
    };
  });
  checkUnique(members, path, (member) => member.instance);
  return members;
}
