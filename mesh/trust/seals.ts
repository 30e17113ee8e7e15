import { createHash } from 'node:crypto';
import type { SignatureCheck } from '../ports/signature-verifier.ts';
import { signBytes } from './keys.ts';

/**
 * A writer's signature over a document's heads. Automerge changes are chained by hash, so a seal
 * authenticates the whole history below those heads (docs/SECURITY.md §Write authority).
 */
export interface Seal {
  readonly docId: string;
  /** Sorted change hashes (hex). */
  readonly heads: readonly string[];
  /** The writer's Ed25519 public key. */
  readonly signer: Uint8Array;
  readonly signature: Uint8Array;
}

const encoder = new TextEncoder();
const HEAD_PATTERN = /^[0-9a-f]{64}$/;
export const MAX_SEAL_HEADS = 64;

/** Thrown when seal input is malformed (before any signature is made or checked). */
export class InvalidSealError extends Error {
  override name = 'InvalidSealError';
}

/** The exact bytes a seal signs: fleet, document and sorted heads, with a version tag. */
export function sealStatement(fleetId: string, docId: string, heads: readonly string[]): Uint8Array {
  if (heads.length === 0 || heads.length > MAX_SEAL_HEADS) throw new InvalidSealError(`a seal covers 1 to ${MAX_SEAL_HEADS} heads`);
  for (const head of heads) if (!HEAD_PATTERN.test(head)) throw new InvalidSealError(`not a change hash: ${head.slice(0, 80)}`);
  return encoder.encode(`powernode-seal/v1\n${fleetId}\n${docId}\n${[...heads].sort().join(',')}`);
}

export function signSeal(fleetId: string, docId: string, heads: readonly string[], signer: { publicKey: Uint8Array; seed: Uint8Array }): Seal {
  const sorted = [...heads].sort();
  return { docId, heads: sorted, signer: signer.publicKey, signature: signBytes(signer.seed, sealStatement(fleetId, docId, sorted)) };
}

/** The signature check for a seal, or undefined when the seal is malformed. */
export function sealCheck(fleetId: string, seal: Seal): SignatureCheck | undefined {
  try {
    return { publicKey: seal.signer, message: sealStatement(fleetId, seal.docId, seal.heads), signature: seal.signature };
  } catch {
    return undefined;
  }
}

/** A stable id of a seal (hash of its signature and statement), for caching verdicts. */
export function sealId(fleetId: string, seal: Seal): string {
  const hash = createHash('sha256').update(seal.signer).update(seal.signature).update(fleetId).update(seal.docId);
  for (const head of seal.heads) hash.update(head);
  return hash.digest('base64url');
}
