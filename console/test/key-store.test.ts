import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { keyStore } from '../src/lib/key-store.ts';

describe('the key store', () => {
  it('keeps a non-extractable signing key across loads, and forgets it', async () => {
    expect(await keyStore.load()).toBeUndefined();
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    await keyStore.save({ privateKey: pair.privateKey, publicKey: 'pub', fleetId: 'ab'.repeat(16), name: 'ops' });
    const loaded = await keyStore.load();
    expect(loaded?.publicKey).toBe('pub');
    expect(loaded?.privateKey.extractable).toBe(false);
    const signature = await crypto.subtle.sign('Ed25519', loaded!.privateKey, new Uint8Array([1, 2, 3]));
    expect(await crypto.subtle.verify('Ed25519', pair.publicKey, signature, new Uint8Array([1, 2, 3]))).toBe(true);
    await keyStore.forget();
    expect(await keyStore.load()).toBeUndefined();
  });
});
