/**
 * libp2p peer ids of Ed25519 keys, without libp2p: the id is base58btc of an identity multihash
 * over the protobuf-encoded public key (`0x00 0x24 | 0x08 0x01 0x12 0x20 | key`). The core uses
 * this to check that a seal on `node/<peer>` is signed by that peer's own key, synchronously.
 */

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const PREFIX = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);

/** Thrown when a peer id is not the id of an Ed25519 key. */
export class NotAnEd25519PeerIdError extends Error {
  override name = 'NotAnEd25519PeerIdError';
}

export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes');
  const bytes = new Uint8Array(PREFIX.length + 32);
  bytes.set(PREFIX, 0);
  bytes.set(publicKey, PREFIX.length);
  return base58Encode(bytes);
}

export function publicKeyFromPeerId(peerId: string): Uint8Array {
  const cached = publicKeys.get(peerId);
  if (cached !== undefined) return cached.slice();
  const bytes = base58Decode(peerId);
  if (bytes === undefined || bytes.length !== PREFIX.length + 32 || PREFIX.some((b, i) => bytes[i] !== b)) {
    throw new NotAnEd25519PeerIdError(`${peerId.slice(0, 80)} is not the peer id of an Ed25519 key`);
  }
  const key = bytes.subarray(PREFIX.length);
  // Decoding base58 is a big-integer loop, and every seal check names its writer: remember a bounded few.
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.clear();
  publicKeys.set(peerId, key.slice());
  return key;
}

const MAX_CACHED_KEYS = 20_000;
const publicKeys = new Map<string, Uint8Array>();

function base58Encode(bytes: Uint8Array): string {
  let value = 0n;
  for (const byte of bytes) value = value * 256n + BigInt(byte);
  let out = '';
  while (value > 0n) {
    out = ALPHABET[Number(value % 58n)] + out;
    value /= 58n;
  }
  for (const byte of bytes) {
    if (byte !== 0) break;
    out = '1' + out;
  }
  return out;
}

function base58Decode(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length > 128) return undefined;
  let value = 0n;
  for (const char of text) {
    const digit = ALPHABET.indexOf(char);
    if (digit < 0) return undefined;
    value = value * 58n + BigInt(digit);
  }
  const out: number[] = [];
  while (value > 0n) {
    out.unshift(Number(value % 256n));
    value /= 256n;
  }
  for (const char of text) {
    if (char !== '1') break;
    out.unshift(0);
  }
  return Uint8Array.from(out);
}
