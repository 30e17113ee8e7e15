import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type InstanceObservation,
  type ModuleVersion,
  PROMOTION_DEFAULTS,
  checkVersionTrust,
  evaluatePromotion,
  moduleDigestsOf,
  moduleVersionOf,
  observationOf,
  promotionObservations,
  promotionThresholdsOf,
  readNodeState,
  trustPolicyOf,
  versionStatement,
} from '../../crdt-schema/index.ts';

function publisher() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  return { key: Buffer.from(raw).toString('base64url'), sign: (data: Uint8Array) => sign(null, data, privateKey).toString('base64url') };
}

const amd64 = `sha256:${'a'.repeat(64)}`;
const arm64 = `sha256:${'b'.repeat(64)}`;
const unsigned = moduleVersionOf({ module: 'nginx', number: 7, state: 'staging', artifacts: { arm64: { digest: arm64 }, amd64: { digest: amd64 } } });

function signed(version: ModuleVersion, by: ReturnType<typeof publisher>): ModuleVersion {
  return moduleVersionOf({ ...version, signature: { publicKey: by.key, signature: by.sign(versionStatement(version)) } });
}

describe('publisher trust', () => {
  const alice = publisher();
  const mallory = publisher();
  const policy = trustPolicyOf({ module: 'nginx', publishers: [alice.key] });

  it('trusts a version signed by a key its policy names', () => {
    expect(checkVersionTrust(signed(unsigned, alice), policy)).toEqual({ trusted: true });
  });

  it('refuses an unsigned version, another key, another module and a tampered digest', () => {
    expect(checkVersionTrust(unsigned, policy)).toMatchObject({ trusted: false, reason: 'nginx version 7 is not signed' });
    expect(checkVersionTrust(signed(unsigned, mallory), policy)).toMatchObject({ trusted: false, reason: expect.stringContaining('which its trust policy does not name') });
    expect(checkVersionTrust(signed(unsigned, alice), trustPolicyOf({ module: 'apache', publishers: [alice.key] }))).toMatchObject({ trusted: false });
    const tampered = { ...signed(unsigned, alice), artifacts: { ...unsigned.artifacts, amd64: { digest: `sha256:${'c'.repeat(64)}` } } };
    expect(checkVersionTrust(tampered, policy)).toMatchObject({ trusted: false, reason: 'nginx version 7 has a signature that does not verify' });
  });

  it('signs the same statement whatever order the architectures come in', () => {
    const reordered = moduleVersionOf({ module: 'nginx', number: 7, artifacts: { amd64: { digest: amd64 }, arm64: { digest: arm64 } } });
    expect(Buffer.from(versionStatement(reordered)).toString()).toBe(Buffer.from(versionStatement(unsigned)).toString());
  });

  it('refuses a policy with no publishers or a malformed key', () => {
    expect(() => trustPolicyOf({ module: 'nginx', publishers: [] })).toThrow('name at least one publisher key');
    expect(() => trustPolicyOf({ module: 'nginx', publishers: ['not-a-key'] })).toThrow('must be a base64url Ed25519 public key');
  });
});

describe('promotion criteria', () => {
  const nowMs = 10_000_000_000;
  const minute = 60_000;
  const running = (instance: string, sinceMinutesAgo: number | undefined, digest = amd64): InstanceObservation => ({
    instance,
    state: 'running',
    digest,
    heartbeatAtMs: nowMs - 10_000,
    ...(sinceMinutesAgo === undefined ? {} : { runningSinceMs: nowMs - sinceMinutesAgo * minute }),
  });

  it('is eligible with 3 instances running a digest of the version for 30 minutes, any architecture', () => {
    const verdict = evaluatePromotion(unsigned, [running('i1', 45), running('i2', 31), running('i3', 30, arm64)], nowMs);
    expect(verdict).toEqual({ eligible: true, runningCount: 3, requiredCount: 3, dwellMs: 30 * minute });
  });

  it('needs the newest of them to have dwelt 30 minutes', () => {
    const verdict = evaluatePromotion(unsigned, [running('i1', 45), running('i2', 40), running('i3', 29)], nowMs);
    expect(verdict).toMatchObject({ eligible: false, dwellMs: 29 * minute, reason: 'the newest qualifying instance has run it 1740 s; 1800 s are required' });
  });

  it('does not count stopped instances or other digests', () => {
    const verdict = evaluatePromotion(unsigned, [running('i1', 60), running('i2', 60), { ...running('i3', 60), state: 'stopped' }, running('i4', 60, `sha256:${'f'.repeat(64)}`)], nowMs);
    expect(verdict).toMatchObject({ eligible: false, runningCount: 2, reason: '2 instances run this version; 3 are required' });
  });

  it('refuses while a qualifying instance is silent or has no running-since stamp', () => {
    const silent = { ...running('i3', 60), heartbeatAtMs: nowMs - PROMOTION_DEFAULTS.heartbeatStaleAfterMs - 1 };
    expect(evaluatePromotion(unsigned, [running('i1', 60), running('i2', 60), silent], nowMs)).toMatchObject({ eligible: false, reason: expect.stringContaining('1 of 3 qualifying instances are silent') });
    expect(evaluatePromotion(unsigned, [running('i1', 60), running('i2', 60), running('i3', undefined)], nowMs)).toMatchObject({ eligible: false, dwellMs: 0 });
  });

  it('takes lower thresholds for a small fleet, within bounds', () => {
    expect(evaluatePromotion(unsigned, [running('i1', 5)], nowMs, { ...PROMOTION_DEFAULTS, requiredCount: 1, dwellMs: 0 }).eligible).toBe(true);
    expect(() => evaluatePromotion(unsigned, [], nowMs, { ...PROMOTION_DEFAULTS, requiredCount: 0 })).toThrow('thresholds.requiredCount');
  });

  it('refuses an instance observed twice and malformed observations', () => {
    expect(() => evaluatePromotion(unsigned, [running('i1', 60), running('i1', 60)], nowMs)).toThrow('"i1" appears more than once');
    expect(() => observationOf({ instance: 'i1', state: 'up', digest: amd64, heartbeatAtMs: 0 }, 'observation')).toThrow('observation.state: must be one of pending');
  });
});

describe('promotion evidence', () => {
  const nowMs = 10_000_000_000;
  const minute = 60_000;
  const member = (peerId: string, digest: string | undefined, instance: { state: 'running' | 'stopped'; since: number } | undefined, alive = true) => ({
    peerId,
    alive,
    reported: digest === undefined ? undefined : { digest, since: nowMs - 40 * minute },
    instance,
  });

  it('observes members reporting a digest of the version: instance state, the later start, liveness', () => {
    const observations = promotionObservations(unsigned, {
      members: [
        member('a', amd64, { state: 'running', since: nowMs - 90 * minute }),
        member('b', arm64, { state: 'running', since: nowMs - 10 * minute }),
        member('c', amd64, undefined),
        member('d', `sha256:${'f'.repeat(64)}`, { state: 'running', since: 0 }),
        member('e', undefined, { state: 'running', since: 0 }),
        member('f', amd64, { state: 'stopped', since: nowMs - minute }),
        member('g', amd64, { state: 'running', since: nowMs - 90 * minute }, false),
      ],
    }, nowMs);
    expect(observations).toEqual([
      { instance: 'a', state: 'running', digest: amd64, heartbeatAtMs: nowMs, runningSinceMs: nowMs - 40 * minute },
      { instance: 'b', state: 'running', digest: arm64, heartbeatAtMs: nowMs, runningSinceMs: nowMs - 10 * minute },
      { instance: 'c', state: 'pending', digest: amd64, heartbeatAtMs: nowMs },
      { instance: 'f', state: 'stopped', digest: amd64, heartbeatAtMs: nowMs },
      { instance: 'g', state: 'running', digest: amd64, heartbeatAtMs: 0, runningSinceMs: nowMs - 40 * minute },
    ]);
    // g is not heard from: silent, so the version waits.
    expect(evaluatePromotion(unsigned, observations, nowMs)).toMatchObject({ eligible: false, runningCount: 3, reason: expect.stringContaining('1 of 3 qualifying instances are silent') });
  });

  it('takes thresholds from a trust policy, within bounds, and the defaults without one', () => {
    const key = publisher().key;
    expect(promotionThresholdsOf(undefined)).toEqual(PROMOTION_DEFAULTS);
    const policy = trustPolicyOf({ module: 'nginx', publishers: [key], promotion: { instances: 1, dwellMs: 0 } });
    expect(promotionThresholdsOf(policy)).toEqual({ ...PROMOTION_DEFAULTS, requiredCount: 1, dwellMs: 0 });
    expect(() => trustPolicyOf({ module: 'nginx', publishers: [key], promotion: { instances: 0, dwellMs: 0 } })).toThrow('promotion.instances');
    expect(() => trustPolicyOf({ module: 'nginx', publishers: [key], promotion: { instances: 3, dwellMs: 31 * 86_400_000 } })).toThrow('promotion.dwellMs');
    expect(() => trustPolicyOf({ module: 'nginx', publishers: [key], promotion: { instances: 3 } })).toThrow('promotion.dwellMs');
  });

  it('reads an inventory, refusing a bad name, digest or size with where it is', () => {
    expect(moduleDigestsOf({ modules: { web: amd64, base: arm64 } })).toEqual({ base: arm64, web: amd64 });
    expect(moduleDigestsOf({})).toEqual({});
    expect(() => moduleDigestsOf({ modules: { Web: amd64 } })).toThrow(/inventory\.modules\["Web"\]: must be a name/);
    expect(() => moduleDigestsOf({ modules: { web: 'sha256:xyz' } })).toThrow(/inventory\.modules\.web: must be "sha256:"/);
    expect(() => moduleDigestsOf({ modules: { web: amd64 }, extra: 1 })).toThrow(/extra/);
    expect(() => moduleDigestsOf({ modules: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`m${i}`, amd64])) })).toThrow('at most 256 modules');
  });

  it('reads a peer\'s reported modules through the same checks, ignoring entries that fail them', () => {
    const view = readNodeState({ schema: 1, peerId: 'p', modules: { web: { digest: amd64, since: 5 }, bad: { digest: 'x', since: 5 }, Upper: { digest: amd64, since: 5 }, neg: { digest: amd64, since: -1 }, str: 'no' } });
    expect(view?.modules).toEqual({ web: { digest: amd64, since: 5 } });
  });
});
