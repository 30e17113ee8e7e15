import { checkUnique, fail, integerOf, nodeOf, objectOf, oneOf, patternOf } from './input.ts';
import { INSTANCE_STATES, type InstanceState } from './instance.ts';
import { CATALOG_LIMITS } from './limits.ts';
import { DIGEST_PATTERN, type ModuleVersion } from './version.ts';

/** What one instance reports about one module: the digest it runs and since when. */
export interface InstanceObservation {
  readonly instance: string;
  readonly state: InstanceState;
  /** The artifact digest it runs for the module. */
  readonly digest: string;
  /** When it was first seen running this digest; absent when never stamped. */
  readonly runningSinceMs?: number;
  readonly heartbeatAtMs: number;
}

/** The bars a version must clear to be blessed. */
export interface PromotionThresholds {
  /** 1-100 instances. */
  readonly requiredCount: number;
  /** 0-30 days. */
  readonly dwellMs: number;
  /** An instance not heard from for longer is silent and blocks promotion. */
  readonly heartbeatStaleAfterMs: number;
}

/** The original's defaults: 3 instances, 30 minutes, heartbeats within 3 minutes. */
export const PROMOTION_DEFAULTS: PromotionThresholds = { requiredCount: 3, dwellMs: 30 * 60_000, heartbeatStaleAfterMs: 3 * 60_000 };

/** The promotion these criteria decide (staging → blessed); others are operator decisions. */
export const PROMOTION_GATED_STATES = ['blessed'] as const;

/** Whether the fleet's evidence says a version may be blessed. */
export interface PromotionVerdict {
  readonly eligible: boolean;
  /** Why not, when not eligible. */
  readonly reason?: string;
  readonly runningCount: number;
  readonly requiredCount: number;
  /** The shortest time any qualifying instance has run the digest. */
  readonly dwellMs: number;
}

const DAY_MS = 86_400_000;

/**
 * The original's promotion criteria as a pure function of observations and `nowMs`: at least
 * `requiredCount` instances running one of the version's digests, none of them silent, and every
 * one of them running it for at least `dwellMs` (so the anchor is the one that started last; an
 * instance with no start stamp has dwelt 0).
 */
export function evaluatePromotion(version: ModuleVersion, observations: readonly InstanceObservation[], nowMs: number, thresholds = PROMOTION_DEFAULTS): PromotionVerdict {
  const requiredCount = integerOf(thresholds.requiredCount, 'thresholds.requiredCount', 1, 100);
  const dwellRequiredMs = integerOf(thresholds.dwellMs, 'thresholds.dwellMs', 0, 30 * DAY_MS);
  if (observations.length > CATALOG_LIMITS.observationsMax) fail('observations', `at most ${CATALOG_LIMITS.observationsMax} (got ${observations.length})`);
  checkUnique(observations, 'observations', (observation) => observation.instance);
  const digests = new Set(Object.values(version.artifacts).map((artifact) => artifact.digest));
  const qualifying = observations.filter((observation) => observation.state === 'running' && digests.has(observation.digest));
  const runningCount = qualifying.length;
  const unstamped = qualifying.filter((observation) => observation.runningSinceMs === undefined).length;
  const newestStartMs = qualifying.reduce((newest, observation) => Math.max(newest, observation.runningSinceMs ?? nowMs), 0);
  const dwellMs = runningCount === 0 || unstamped > 0 ? 0 : Math.max(0, nowMs - newestStartMs);
  const verdict = { runningCount, requiredCount, dwellMs };
  if (runningCount < requiredCount) return { ...verdict, eligible: false, reason: `${runningCount} instances run this version; ${requiredCount} are required` };
  const silent = qualifying.filter((observation) => nowMs - observation.heartbeatAtMs > thresholds.heartbeatStaleAfterMs).length;
  if (silent > 0) return { ...verdict, eligible: false, reason: `${silent} of ${runningCount} qualifying instances are silent (no heartbeat within ${thresholds.heartbeatStaleAfterMs / 1000} s)` };
  if (unstamped > 0) return { ...verdict, eligible: false, reason: `${unstamped} of ${runningCount} qualifying instances have no running-since time` };
  if (dwellMs < dwellRequiredMs) return { ...verdict, eligible: false, reason: `the newest qualifying instance has run it ${Math.floor(dwellMs / 1000)} s; ${dwellRequiredMs / 1000} s are required` };
  return { ...verdict, eligible: true };
}

/** Checks an observation from outside (a heartbeat, a node document). */
export function observationOf(value: unknown, path: string): InstanceObservation {
  const raw = objectOf(value, path, ['instance', 'state', 'digest', 'runningSinceMs', 'heartbeatAtMs']);
  const observation = {
    instance: nodeOf(raw['instance'], `${path}.instance`),
    state: oneOf(raw['state'], `${path}.state`, INSTANCE_STATES),
    digest: patternOf(raw['digest'], `${path}.digest`, DIGEST_PATTERN, '"sha256:" and 64 lowercase hex digits'),
    heartbeatAtMs: integerOf(raw['heartbeatAtMs'], `${path}.heartbeatAtMs`, 0, Number.MAX_SAFE_INTEGER),
  };
  if (raw['runningSinceMs'] === undefined) return observation;
  return { ...observation, runningSinceMs: integerOf(raw['runningSinceMs'], `${path}.runningSinceMs`, 0, Number.MAX_SAFE_INTEGER) };
}
