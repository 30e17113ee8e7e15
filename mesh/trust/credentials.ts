import type { SignatureCheck } from '../ports/signature-verifier.ts';
import { s } from '../wire/index.ts';
import { fromBase64Url, signBytes, toBase64Url } from './keys.ts';
import { publicKeyFromPeerId } from './peer-keys.ts';
import type { Ed25519KeyPair } from './keys.ts';

/**
 * A membership credential: `issuer`, a member, vouches that `peerId` is a member of the fleet
 * until `expiresAt`. Issued by the member that admitted the node (and renewed by any member that
 * knows its admission), signed with the issuer's libp2p key, so any node can check it without
 * holding the fleet's documents yet (docs/SECURITY.md §Membership credentials).
 */
export interface Credential {
  readonly fleetId: string;
  readonly peerId: string;
  readonly issuer: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  /** base64url Ed25519 signature by the issuer over {@link credentialStatement}. */
  readonly signature: string;
}

export const CREDENTIAL_LIFE_MS = 90 * 24 * 3_600_000;
/** A credential is renewed once this share of its life has passed. */
export const CREDENTIAL_RENEW_AT = 0.75;
/** A presented chain is at most this long: the node's credential, then its issuer's, and so on. */
export const MAX_CREDENTIAL_CHAIN = 4;
/** Clock difference tolerated on `issuedAt`. */
const ISSUE_SKEW_MS = 60_000;

/** A credential chain as the wire carries it. */
export const credentialChainShape = s.array(
  s.object({
    fleetId: s.string({ min: 1, max: 64 }),
    peerId: s.string({ min: 1, max: 100 }),
    issuer: s.string({ min: 1, max: 100 }),
    issuedAt: s.uint(),
    expiresAt: s.uint(),
    signature: s.string({ min: 1, max: 200 }),
  }),
  { min: 1, max: MAX_CREDENTIAL_CHAIN },
);

const encoder = new TextEncoder();

export function credentialStatement(credential: Omit<Credential, 'signature'>): Uint8Array {
  return encoder.encode(
    `powernode-credential/v1\n${credential.fleetId}\n${credential.peerId}\n${credential.issuer}\n${credential.issuedAt}\n${credential.expiresAt}`,
  );
}

export function issueCredential(issuer: Ed25519KeyPair & { readonly peerId: string }, fields: Omit<Credential, 'signature' | 'issuer'>): Credential {
  const unsigned = { ...fields, issuer: issuer.peerId };
  return { ...unsigned, signature: toBase64Url(signBytes(issuer.seed, credentialStatement(unsigned))) };
}

/** The credential's signature as a check for a signature verifier; undefined if malformed. */
export function credentialSignatureCheck(credential: Credential): SignatureCheck | undefined {
  try {
    return { publicKey: publicKeyFromPeerId(credential.issuer), message: credentialStatement(credential), signature: fromBase64Url(credential.signature) };
  } catch {
    return undefined;
  }
}

/** What the checking node knows, for {@link chainProblem}. */
export interface CredentialContext {
  readonly fleetId: string;
  readonly now: number;
  /** A member by this node's own records (derived membership). */
  isMember(peer: string): boolean;
  /** Why a peer is never admitted whatever vouches for it (revoked, lost its token), or undefined. */
  barredReason(peer: string): string | undefined;
  /** Whether the signature verifies (the caller caches and batches). */
  signatureValid(credential: Credential): boolean;
}

/** Why a chain does not prove membership: `unknown` when no member this node knows vouches for it (yet). */
export interface ChainProblem {
  readonly kind: 'invalid' | 'unknown';
  readonly reason: string;
}

/**
 * Why `chain` does not prove that `peer` is a member, or undefined when it does. `chain[0]` is the
 * peer's credential; each next one is the previous issuer's. The chain holds at the first
 * credential whose issuer this node knows as a member; every credential up to it must be for the
 * fleet, current, issued by the next one's subject, unbarred, and validly signed.
 */
export function chainProblem(peer: string, chain: readonly Credential[], context: CredentialContext): ChainProblem | undefined {
  const invalid = (reason: string): ChainProblem => ({ kind: 'invalid', reason });
  if (chain.length === 0) return invalid('no credential presented');
  if (chain.length > MAX_CREDENTIAL_CHAIN) return invalid(`a credential chain is at most ${MAX_CREDENTIAL_CHAIN} long`);
  const barred = context.barredReason(peer);
  if (barred !== undefined) return invalid(barred);
  let subject = peer;
  for (const credential of chain) {
    if (credential.peerId !== subject) return invalid(`the credential is for ${credential.peerId}, not ${subject}`);
    if (credential.fleetId !== context.fleetId) return invalid(`the credential is for fleet ${credential.fleetId}`);
    if (credential.expiresAt <= context.now) return invalid(`the credential of ${subject} expired at ${new Date(credential.expiresAt).toISOString()}`);
    if (credential.issuedAt > context.now + ISSUE_SKEW_MS) return invalid(`the credential of ${subject} is issued in the future`);
    if (context.barredReason(credential.issuer) !== undefined) return invalid(`the credential of ${subject} is issued by ${credential.issuer}, which is not a member`);
    if (!context.signatureValid(credential)) return invalid(`the credential of ${subject} is not signed by ${credential.issuer}`);
    if (context.isMember(credential.issuer)) return undefined;
    subject = credential.issuer;
  }
  return { kind: 'unknown', reason: `no member this node knows vouches for ${peer}` };
}
