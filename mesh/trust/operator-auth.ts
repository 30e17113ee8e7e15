import type { FleetView, OperatorView } from '../../crdt-schema/index.ts';
import { fromBase64Url, sha256Hex, signBytes, toBase64Url, verifyBytes } from './keys.ts';
import { setBounded } from '../bounded-map.ts';

const encoder = new TextEncoder();

/** What the fleet root key signs to certify an operator key. */
export function operatorCertificateStatement(fleetId: string, operator: Omit<OperatorView, 'certificate'>): Uint8Array {
  return encoder.encode(`powernode-operator-certificate/v1\n${fleetId}\n${operator.publicKey}\n${operator.name}\n${operator.addedAt}`);
}

export function certifyOperator(rootSeed: Uint8Array, fleetId: string, operator: Omit<OperatorView, 'certificate'>): OperatorView {
  const certificate = toBase64Url(signBytes(rootSeed, operatorCertificateStatement(fleetId, operator)));
  return { ...operator, certificate };
}

/** True when `operator` carries a valid certificate from the fleet's root key. */
export function isCertifiedOperator(fleet: FleetView, operator: OperatorView): boolean {
  try {
    const statement = operatorCertificateStatement(fleet.fleetId, operator);
    return verifyBytes(fromBase64Url(fleet.rootKey), statement, fromBase64Url(operator.certificate));
  } catch {
    return false;
  }
}

/** Certified, and not revoked by the root key as of `atMs`. */
export function isActiveOperator(fleet: FleetView, operator: OperatorView, atMs: number): boolean {
  return (operator.revokedAt === undefined || atMs < operator.revokedAt) && isCertifiedOperator(fleet, operator);
}

/** The public keys of the operators the fleet root key revoked as of `atMs` (none without a fleet). */
export function revokedOperatorKeys(fleet: FleetView | undefined, atMs: number): string[] {
  return (fleet?.operators ?? []).filter((o) => o.revokedAt !== undefined && o.revokedAt <= atMs).map((o) => o.publicKey);
}

/** The parts of an HTTP request that an operator signs. */
export interface SignedRequestParts {
  readonly method: string;
  /** Path with query string, as sent. */
  readonly path: string;
  readonly timeMs: number;
  readonly nonce: string;
  readonly body: Uint8Array | string;
}

export function requestStatement(parts: SignedRequestParts): Uint8Array {
  return encoder.encode(`powernode-api/v1\n${parts.method.toUpperCase()}\n${parts.path}\n${parts.timeMs}\n${parts.nonce}\n${sha256Hex(parts.body)}`);
}

/** Headers that carry an operator's signature on an API request. */
export const AUTH_HEADERS = {
  key: 'x-powernode-key',
  time: 'x-powernode-time',
  nonce: 'x-powernode-nonce',
  signature: 'x-powernode-signature',
} as const;

export interface RequestSignature {
  readonly key: string;
  readonly time: string;
  readonly nonce: string;
  readonly signature: string;
}

export function signRequest(operatorSeed: Uint8Array, operatorPublicKey: string, parts: SignedRequestParts): RequestSignature {
  return {
    key: operatorPublicKey,
    time: String(parts.timeMs),
    nonce: parts.nonce,
    signature: toBase64Url(signBytes(operatorSeed, requestStatement(parts))),
  };
}

/** Why a signed request was refused. */
export class AuthError extends Error {
  override name = 'AuthError';
}

export const REQUEST_SKEW_MS = 60_000;
const MAX_REMEMBERED_NONCES = 100_000;

/**
 * Verifies operator signatures on API requests: the key is a certified operator of the fleet,
 * the time is within ±60 s of this node's clock, the nonce is fresh, the signature is valid.
 */
export class RequestVerifier {
  readonly #seen = new Map<string, number>();

  /** Returns the operator who signed, or throws {@link AuthError} saying what is wrong. */
  verify(fleet: FleetView, nowMs: number, signature: Partial<RequestSignature>, request: Omit<SignedRequestParts, 'timeMs' | 'nonce'>): OperatorView {
    const { key, time, nonce, signature: sig } = signature;
    if (key === undefined || time === undefined || nonce === undefined || sig === undefined) {
      throw new AuthError('this API needs a signed request: use the powernode CLI with --key OPERATOR_KEY_FILE');
    }
    const operator = fleet.operators.find((o) => o.publicKey === key);
    if (operator === undefined || !isCertifiedOperator(fleet, operator)) {
      throw new AuthError('that key is not a certified operator of this fleet');
    }
    if (!isActiveOperator(fleet, operator, nowMs)) throw new AuthError('that operator key was revoked by the fleet root key');
    const timeMs = Number(time);
    if (!Number.isSafeInteger(timeMs) || Math.abs(nowMs - timeMs) > REQUEST_SKEW_MS) {
      throw new AuthError('the request time is more than 60 s away from this node’s clock: check both clocks');
    }
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(nonce)) throw new AuthError('the request nonce is malformed');
    this.#forgetBefore(nowMs - 2 * REQUEST_SKEW_MS);
    if (this.#seen.has(nonce)) throw new AuthError('this request was already used (replay refused)');
    let valid = false;
    try {
      valid = verifyBytes(fromBase64Url(key), requestStatement({ ...request, timeMs, nonce }), fromBase64Url(sig));
    } catch {
      valid = false;
    }
    if (!valid) throw new AuthError('the request signature does not verify');
    setBounded(this.#seen, nonce, timeMs, MAX_REMEMBERED_NONCES);
    return operator;
  }

  #forgetBefore(cutoffMs: number): void {
    for (const [nonce, at] of this.#seen) {
      if (at >= cutoffMs) break;
      this.#seen.delete(nonce);
    }
  }
}
