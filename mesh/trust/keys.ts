import { type KeyObject, createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { Random } from '../ports/random.ts';
import { rememberedIn } from '../bounded-map.ts';

/** An Ed25519 key pair. The 32-byte seed is the private key. */
export interface Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

// DER prefixes that wrap a raw Ed25519 seed (PKCS#8) and public key (SPKI) for node:crypto.
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/** Thrown when key material has the wrong size or format. */
export class InvalidKeyError extends Error {
  override name = 'InvalidKeyError';
}

/**
 * node:crypto key objects, by key bytes: making one from DER costs about as much as the signature
 * it is for (a node signs with its one identity, and verifies the same few hundred keys, over and
 * over). Bounded; the oldest goes first.
 */
const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();

const bytesKey = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

function privateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new InvalidKeyError('an Ed25519 private key is 32 bytes');
  return rememberedIn(privateKeys, bytesKey(seed), 1_024, () => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== 32) throw new InvalidKeyError('an Ed25519 public key is 32 bytes');
  return rememberedIn(publicKeys, bytesKey(publicKey), 8_192, () => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }));
}

/** Derives the key pair for a seed. */
export function keyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  const der = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return { seed: Uint8Array.from(seed), publicKey: new Uint8Array(der.subarray(SPKI_PREFIX.length)) };
}

/** A new key pair from the node's randomness (a seeded generator in the simulator). */
export function generateKeyPair(random: Random): Ed25519KeyPair {
  return keyPairFromSeed(random.bytes(32));
}

export function signBytes(seed: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, privateKeyObject(seed)));
}

/** True when `signature` is `publicKey`'s signature over `data`; false for any malformed input. */
export function verifyBytes(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return verify(null, data, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** Decodes base64url; throws {@link InvalidKeyError} for anything else. */
export function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new InvalidKeyError('not base64url');
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
