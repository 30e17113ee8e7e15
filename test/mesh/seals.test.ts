import { describe, expect, it } from 'vitest';
import { InProcessVerifier, InvalidSealError, SealVerifier, SeededRandom, generateKeyPair, signSeal } from '../../mesh/index.ts';

const FLEET = '0123456789abcdef0123456789abcdef';
const head = (n: number): string => n.toString(16).padStart(64, '0');

describe('seals over heads', () => {
  const random = new SeededRandom(5);
  const writer = generateKeyPair(random);
  const other = generateKeyPair(random);

  it('verifies a seal once, answers repeats from its cache, and refuses forgeries and moved seals', async () => {
    const verifier = new SealVerifier(new InProcessVerifier(), FLEET);
    const seal = signSeal(FLEET, 'node/x', [head(2), head(1)], writer);
    expect(seal.heads).toEqual([head(1), head(2)]);
    expect(await verifier.verify([seal, seal])).toEqual([true, true]);
    expect(await verifier.verify([seal])).toEqual([true]);
    expect(verifier.signaturesChecked).toBe(1);

    const otherSigner = { ...seal, signer: other.publicKey };
    const moreHeads = { ...seal, heads: [head(1), head(2), head(3)] };
    const otherDoc = { ...seal, docId: 'node/y' };
    const otherFleet = await new SealVerifier(new InProcessVerifier(), 'f'.repeat(32)).verify([seal]);
    const malformed = { ...seal, heads: ['not-a-hash'] };
    expect(await verifier.verify([otherSigner, moreHeads, otherDoc, malformed])).toEqual([false, false, false, false]);
    expect(otherFleet).toEqual([false]);
  });

  it('refuses to sign malformed heads', () => {
    expect(() => signSeal(FLEET, 'fleet', [], writer)).toThrow(InvalidSealError);
    expect(() => signSeal(FLEET, 'fleet', ['zz'], writer)).toThrow(InvalidSealError);
  });
});
