import { describe, expect, it } from 'vitest';
import type { FleetId, FleetView } from '../../crdt-schema/index.ts';
import { AuthError, RequestVerifier, SeededRandom, certifyOperator, generateKeyPair, signRequest, toBase64Url } from '../../mesh/index.ts';

const random = new SeededRandom(11);
const root = generateKeyPair(random);
const operatorKeys = generateKeyPair(random);
const fleetId = 'ab'.repeat(16) as FleetId;
const operator = certifyOperator(root.seed, fleetId, { publicKey: toBase64Url(operatorKeys.publicKey), name: 'ops', addedAt: 1 });
const fleet: FleetView = { schema: 1, fleetId, name: 'f', createdAt: 1, rootKey: toBase64Url(root.publicKey), operators: [operator], founder: { peerId: 'F', name: 'f', at: 1 }, labels: {}, revoked: {}, decisionCount: 0 };
const NOW = 1_800_000_000_000;

function signed(body = '{"a":1}', overrides: { timeMs?: number; nonce?: string; seed?: Uint8Array; key?: string } = {}) {
  return signRequest(overrides.seed ?? operatorKeys.seed, overrides.key ?? operator.publicKey, {
    method: 'POST',
    path: '/api/v1/labels',
    timeMs: overrides.timeMs ?? NOW,
    nonce: overrides.nonce ?? toBase64Url(random.bytes(18)),
    body,
  });
}

function refusal(verifier: RequestVerifier, signature: Partial<ReturnType<typeof signed>>, body = '{"a":1}', view: FleetView = fleet): string {
  try {
    verifier.verify(view, NOW, signature, { method: 'POST', path: '/api/v1/labels', body });
    return 'accepted';
  } catch (error) {
    expect(error).toBeInstanceOf(AuthError);
    return (error as Error).message;
  }
}

describe('operator request signatures', () => {
  it('accepts a request signed by a certified operator', () => {
    expect(refusal(new RequestVerifier(), signed())).toBe('accepted');
  });

  it('refuses unsigned, tampered, replayed, stale and uncertified requests, saying which', () => {
    const verifier = new RequestVerifier();
    expect(refusal(verifier, {})).toMatch(/needs a signed request/);
    expect(refusal(verifier, signed('{"a":1}'), '{"a":2}')).toMatch(/signature does not verify/);
    const once = signed();
    expect(refusal(verifier, once)).toBe('accepted');
    expect(refusal(verifier, once)).toMatch(/already used \(replay refused\)/);
    expect(refusal(verifier, signed('{"a":1}', { timeMs: NOW - 61_000 }))).toMatch(/more than 60 s away/);
    const stranger = generateKeyPair(random);
    expect(refusal(verifier, signed('{"a":1}', { seed: stranger.seed, key: toBase64Url(stranger.publicKey) }))).toMatch(/not a certified operator/);
    // An operator listed in the fleet document without a valid root certificate is refused too.
    const forged = { ...operator, publicKey: toBase64Url(stranger.publicKey) };
    const view = { ...fleet, operators: [operator, forged] };
    expect(refusal(verifier, signed('{"a":1}', { seed: stranger.seed, key: forged.publicKey }), '{"a":1}', view)).toMatch(/not a certified operator/);
    expect(refusal(verifier, { ...signed(), signature: 'not*base64' })).toMatch(/signature does not verify/);
  });
});

describe('join grants', () => {
  it('holds for a grant signed by a certified operator and names what is wrong otherwise', async () => {
    const { signGrant, grantProblem } = await import('../../mesh/index.ts');
    const base = { fleetId, tokenHash: 'ab'.repeat(32), expiresAt: NOW + 3_600_000, operator: operator.publicKey };
    const grant = signGrant(operatorKeys.seed, base);
    expect(grantProblem(fleet, grant)).toBeUndefined();
    expect(grantProblem(fleet, { ...grant, expiresAt: grant.expiresAt + 1 })).toMatch(/signature does not verify/);
    expect(grantProblem(fleet, { ...grant, name: 'other' })).toMatch(/signature does not verify/);
    expect(grantProblem({ ...fleet, fleetId: 'cd'.repeat(16) as FleetId }, grant)).toMatch(/is for fleet/);
    const stranger = generateKeyPair(random);
    const rogue = signGrant(stranger.seed, { ...base, operator: toBase64Url(stranger.publicKey) });
    expect(grantProblem(fleet, rogue)).toMatch(/not issued by an operator of this fleet/);
  });
});
