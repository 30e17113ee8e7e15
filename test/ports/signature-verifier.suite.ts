import { describe, expect, it } from 'vitest';
import { SeededRandom, type SignatureCheck, type SignatureVerifier, generateKeyPair, signBytes } from '../../mesh/index.ts';

/** The SignatureVerifier contract: verdicts in order, forgeries and malformed input false. */
export function runSignatureVerifierSuite(name: string, create: () => SignatureVerifier): void {
  describe(`SignatureVerifier contract: ${name}`, () => {
    const random = new SeededRandom(21);
    const keys = Array.from({ length: 8 }, () => generateKeyPair(random));
    const checks = (count: number): SignatureCheck[] =>
      Array.from({ length: count }, (_, i) => {
        const key = keys[i % keys.length]!;
        const message = new TextEncoder().encode(`message ${i}`);
        return { publicKey: key.publicKey, message, signature: signBytes(key.seed, message) };
      });

    it('accepts valid signatures and refuses each kind of bad one, keeping the order', async () => {
      const verifier = create();
      try {
        const [good, wrongMessage, wrongKey, truncated, shortKey] = checks(5);
        const cases: SignatureCheck[] = [
          good!,
          { ...wrongMessage!, message: new TextEncoder().encode('something else') },
          { ...wrongKey!, publicKey: keys[7]!.publicKey === wrongKey!.publicKey ? keys[0]!.publicKey : keys[7]!.publicKey },
          { ...truncated!, signature: truncated!.signature.subarray(0, 63) },
          { ...shortKey!, publicKey: new Uint8Array(31) },
        ];
        expect(await verifier.verifyBatch(cases)).toEqual([true, false, false, false, false]);
      } finally {
        await verifier.close();
      }
    });

    it('verifies a large batch with one forgery in the middle', async () => {
      const verifier = create();
      try {
        const batch = checks(300);
        batch[150] = { ...batch[150]!, signature: new Uint8Array(64) };
        const verdicts = await verifier.verifyBatch(batch);
        expect(verdicts.length).toBe(300);
        expect(verdicts.filter((v) => !v)).toEqual([false]);
        expect(verdicts[150]).toBe(false);
      } finally {
        await verifier.close();
      }
    });
  });
}
