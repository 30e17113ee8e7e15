import { checkUnique, fail, integerOf, nameOf, nodeOf, objectOf, oneOf, patternOf } from './input.ts';
import { INSTANCE_STATES, type InstanceState } from './instance.ts';
import { CATALOG_LIMITS } from './limits.ts';
import type { TrustPolicy } from './trust.ts';
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

/** The thresholds a module's versions are promoted by: its trust policy's, else the original's defaults. */
export function promotionThresholdsOf(policy: TrustPolicy | undefined): PromotionThresholds {
  const override = policy?.promotion;
  return override === undefined ? PROMOTION_DEFAULTS : { ...PROMOTION_DEFAULTS, requiredCount: override.instances, dwellMs: override.dwellMs };
}

/** Module name → the artifact digest a machine runs for it. */
export type ModuleDigests = Readonly<Record<string, string>>;

/** Checks a module inventory from outside (`{"modules": {NAME: DIGEST}}`, the node's modules.json). */
export function moduleDigestsOf(value: unknown): ModuleDigests {
  const raw = objectOf(value, 'inventory', ['modules']);
  const modules = raw['modules'] === undefined ? {} : objectOf(raw['modules'], 'inventory.modules');
  const names = Object.keys(modules);
  if (names.length > CATALOG_LIMITS.inventoryModulesMax) fail('inventory.modules', `at most ${CATALOG_LIMITS.inventoryModulesMax} modules (got ${names.length})`);
  const out: Record<string, string> = {};
  for (const name of names.sort()) {
    nameOf(name, `inventory.modules[${JSON.stringify(name)}]`);
    out[name] = patternOf(modules[name], `inventory.modules.${name}`, DIGEST_PATTERN, '"sha256:" and 64 lowercase hex digits');
  }
  return out;
}

/** What one member's document says it runs for a module, and since when (its first report of that digest). */
export interface ReportedModule {
  readonly digest: string;
  readonly since: number;
}

/** What the evidence for a version is gathered from: members as failure detection and the instance reconciler see them, and what each reports. */
export interface PromotionEvidence {
  readonly members: ReadonlyArray<{
    readonly peerId: string;
    /** Failure detection heard from it and holds it alive or suspect (a node holds itself alive); one it does not is silent. */
    readonly alive: boolean;
    /** The module it reports running, as its document says; undefined when it reports none. */
    readonly reported: ReportedModule | undefined;
    /** Its instance state as the reconciler last recorded it, and since when; undefined when never recorded. */
    readonly instance: { readonly state: InstanceState; readonly since: number } | undefined;
  }>;
}

/**
 * One observation per member reporting one of `version`'s digests: its recorded instance state
 * (`pending` if none), running since the later of its report of the digest and its entry into
 * running, heard from now while alive, else never (silent: dead, left or never heard from here).
 */
export function promotionObservations(version: ModuleVersion, evidence: PromotionEvidence, nowMs: number): InstanceObservation[] {
  const digests = new Set(Object.values(version.artifacts).map((artifact) => artifact.digest));
  const out: InstanceObservation[] = [];
  for (const member of evidence.members) {
    const reported = member.reported;
    if (reported === undefined || !digests.has(reported.digest)) continue;
    const state = member.instance?.state ?? 'pending';
    const observation = { instance: member.peerId, state, digest: reported.digest, heartbeatAtMs: member.alive ? nowMs : 0 };
    out.push(state === 'running' ? { ...observation, runningSinceMs: Math.max(reported.since, member.instance!.since) } : observation);
  }
  return out;
}
