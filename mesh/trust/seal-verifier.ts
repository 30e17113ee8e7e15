import type { SignatureVerifier } from '../ports/signature-verifier.ts';
import { type Seal, sealCheck, sealId } from './seals.ts';

const DEFAULT_CACHE_SIZE = 100_000;

/**
 * Verifies seals through a {@link SignatureVerifier}, remembering verdicts so each seal is checked
 * once however often it is relayed or reloaded. The cache is bounded (oldest verdicts go first).
 */
export class SealVerifier {
  readonly #verifier: SignatureVerifier;
  readonly #fleetId: string;
  readonly #cache = new Map<string, boolean>();
  readonly #cacheSize: number;
  #checked = 0;

  constructor(verifier: SignatureVerifier, fleetId: string, cacheSize = DEFAULT_CACHE_SIZE) {
    this.#verifier = verifier;
    this.#fleetId = fleetId;
    this.#cacheSize = cacheSize;
  }

  /** One verdict per seal, in order. Malformed seals are `false`. */
  async verify(seals: readonly Seal[]): Promise<boolean[]> {
    const ids = seals.map((seal) => sealId(this.#fleetId, seal));
    const verdicts: Array<boolean | undefined> = ids.map((id) => this.#cache.get(id));
    const pending: number[] = [];
    const checks = [];
    const firstIndex = new Map<string, number>();
    for (let i = 0; i < seals.length; i++) {
      if (verdicts[i] !== undefined || firstIndex.has(ids[i]!)) continue;
      firstIndex.set(ids[i]!, i);
      const check = sealCheck(this.#fleetId, seals[i]!);
      if (check === undefined) {
        verdicts[i] = false;
        continue;
      }
      pending.push(i);
      checks.push(check);
    }
    if (checks.length > 0) {
      const results = await this.#verifier.verifyBatch(checks);
      this.#checked += checks.length;
      pending.forEach((index, k) => {
        verdicts[index] = results[k] === true;
        this.#remember(ids[index]!, verdicts[index]!);
      });
    }
    // Repeats within the batch take the verdict of their first occurrence.
    return verdicts.map((v, i) => (v ?? verdicts[firstIndex.get(ids[i]!)!]) === true);
  }

  /** Signatures actually checked (not answered from the cache), for observability and tests. */
  get signaturesChecked(): number {
    return this.#checked;
  }

  #remember(id: string, verdict: boolean): void {
    if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(id, verdict);
  }
}
