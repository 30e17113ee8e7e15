import { createPublicKey, verify } from 'node:crypto';
import { fail, integerOf, listOf, nameOf, objectOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import { sortedUnique } from './order.ts';
import { type ModuleVersion, publisherKeyOf, versionStatement } from './version.ts';

/** Which publisher keys may sign a module's versions (Ed25519 in place of the original's cosign identities). */
export interface TrustPolicy {
  readonly module: string;
  /** base64url Ed25519 public keys, sorted. */
  readonly publishers: readonly string[];
  /** The promotion criteria lowered for a small fleet; the original's defaults when absent. */
  readonly promotion?: PromotionOverride;
}

/** How many instances must run a version (1-100), and for how long (0-30 days), before it may be blessed. */
export interface PromotionOverride {
  readonly instances: number;
  readonly dwellMs: number;
}

const DAY_MS = 86_400_000;

/** Whether a version may be used, and if not, why. */
export type TrustVerdict = { readonly trusted: true } | { readonly trusted: false; readonly reason: string };

/** Verifies an Ed25519 signature over bytes: `(publicKey, data, signature) → valid`. */
export type SignatureCheck = (publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array) => boolean;

/** Checks a trust policy from outside; throws {@link CatalogInputError}. */
export function trustPolicyOf(value: unknown): TrustPolicy {
  const raw = objectOf(value, 'trust policy', ['module', 'publishers', 'promotion']);
  const module = nameOf(raw['module'], 'trust policy.module');
  const path = `trust policy ${JSON.stringify(module)}.publishers`;
  const publishers = sortedUnique(listOf(raw['publishers'], path, CATALOG_LIMITS.publisherKeysMax, publisherKeyOf));
  if (publishers.length === 0) fail(path, 'name at least one publisher key; a policy with none would trust nothing');
  if (raw['promotion'] === undefined) return { module, publishers };
  const promotionPath = `trust policy ${JSON.stringify(module)}.promotion`;
  const promotion = objectOf(raw['promotion'], promotionPath, ['instances', 'dwellMs']);
  return {
    module,
    publishers,
    promotion: {
      instances: integerOf(promotion['instances'], `${promotionPath}.instances`, 1, 100),
      dwellMs: integerOf(promotion['dwellMs'], `${promotionPath}.dwellMs`, 0, 30 * DAY_MS),
    },
  };
}

// DER prefix that wraps a raw 32-byte Ed25519 public key as SPKI for node:crypto.
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/** Ed25519 verification with node:crypto; false for malformed keys or signatures, never a throw. */
export function verifyEd25519(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return verify(null, data, createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }), signature);
  } catch {
    return false;
  }
}

/**
 * A version is trusted when it is signed, by a key its module's policy names, and the signature
 * covers its module, number and artifact digests ({@link versionStatement}).
 */
export function checkVersionTrust(version: ModuleVersion, policy: TrustPolicy, check: SignatureCheck = verifyEd25519): TrustVerdict {
  if (policy.module !== version.module) return { trusted: false, reason: `the trust policy is for ${policy.module}, not ${version.module}` };
  const signature = version.signature;
  if (signature === undefined) return { trusted: false, reason: `${version.module} version ${version.number} is not signed` };
  if (!policy.publishers.includes(signature.publicKey)) {
    return { trusted: false, reason: `${version.module} version ${version.number} is signed by ${signature.publicKey}, which its trust policy does not name` };
  }
  const valid = check(Buffer.from(signature.publicKey, 'base64url'), versionStatement(version), Buffer.from(signature.signature, 'base64url'));
  return valid ? { trusted: true } : { trusted: false, reason: `${version.module} version ${version.number} has a signature that does not verify` };
}
