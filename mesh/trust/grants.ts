import type { FleetView, StoredGrant } from '../../crdt-schema/index.ts';
import type { SignatureCheck } from '../ports/signature-verifier.ts';
import { fromBase64Url, signBytes, toBase64Url, verifyBytes } from './keys.ts';
import { isActiveOperator, isCertifiedOperator } from './operator-auth.ts';

/**
 * An operator's permission for one node to join: whoever holds the token whose SHA-256 is
 * `tokenHash` may be admitted once, before `expiresAt`, under `name` if given. Made and signed
 * where the operator key is (CLI, console), never on a node (docs/SECURITY.md §Join tokens).
 */
export type Grant = StoredGrant;

const encoder = new TextEncoder();

export function grantStatement(grant: Omit<Grant, 'signature'>): Uint8Array {
  return encoder.encode(`powernode-grant/v1\n${grant.fleetId}\n${grant.tokenHash}\n${grant.expiresAt}\n${grant.name ?? ''}\n${grant.operator}`);
}

export function signGrant(operatorSeed: Uint8Array, grant: Omit<Grant, 'signature'>): Grant {
  return { ...grant, signature: toBase64Url(signBytes(operatorSeed, grantStatement(grant))) };
}

/** Why a grant does not hold; undefined when it does (expiry is the caller's to check, with its clock). */
export function grantProblem(fleet: FleetView, grant: Grant, atMs?: number): string | undefined {
  const authority = grantAuthorityProblem(fleet, grant, atMs);
  if (authority !== undefined) return authority;
  const check = grantSignatureCheck(grant);
  if (check === undefined) return 'the join token is malformed';
  if (!verifyBytes(check.publicKey, check.message, check.signature)) return 'the join token was not issued by an operator of this fleet (its signature does not verify)';
  return undefined;
}

/** What {@link grantProblem} checks besides the signature: the fleet, and that the signer is a certified operator. */
export function grantAuthorityProblem(fleet: FleetView, grant: Grant, atMs?: number): string | undefined {
  if (grant.fleetId !== fleet.fleetId) return `the join token is for fleet ${grant.fleetId}, not ${fleet.fleetId}`;
  const operator = fleet.operators.find((o) => o.publicKey === grant.operator);
  if (operator === undefined || !isCertifiedOperator(fleet, operator)) return 'the join token was not issued by an operator of this fleet';
  if (atMs !== undefined && !isActiveOperator(fleet, operator, atMs)) return 'the join token was issued by an operator key the fleet root key has revoked';
  return undefined;
}

/** The grant's signature as a check for a signature-verifier batch; undefined if malformed. */
export function grantSignatureCheck(grant: Grant): SignatureCheck | undefined {
  try {
    return { publicKey: fromBase64Url(grant.operator), message: grantStatement(grant), signature: fromBase64Url(grant.signature) };
  } catch {
    return undefined;
  }
}
