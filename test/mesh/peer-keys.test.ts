import { generateKeyPair as generateLibp2pKey } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { NotAnEd25519PeerIdError, peerIdFromPublicKey, publicKeyFromPeerId } from '../../mesh/index.ts';

describe('Ed25519 peer ids without libp2p', () => {
  it('gives the same peer id as libp2p, and the public key back', async () => {
    for (let i = 0; i < 20; i++) {
      const key = await generateLibp2pKey('Ed25519');
      const expected = peerIdFromPrivateKey(key).toString();
      expect(peerIdFromPublicKey(key.publicKey.raw)).toBe(expected);
      expect(publicKeyFromPeerId(expected)).toEqual(key.publicKey.raw);
    }
  });

  it('refuses ids that are not of an Ed25519 key', () => {
    for (const id of ['', 'not-base58-0OIl', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', '12D3KooW' + '1'.repeat(44)]) {
      expect(() => publicKeyFromPeerId(id)).toThrow(NotAnEd25519PeerIdError);
    }
  });
});
