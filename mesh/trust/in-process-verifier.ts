import type { SignatureCheck, SignatureVerifier } from '../ports/signature-verifier.ts';
import { verifyBytes } from './keys.ts';

/** Verifies on the calling thread: deterministic, for tests, the simulator and small batches. */
export class InProcessVerifier implements SignatureVerifier {
  async verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    return checks.map((check) => verifyBytes(check.publicKey, check.message, check.signature));
  }

  async close(): Promise<void> {}
}
