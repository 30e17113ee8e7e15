/**
 * Randomness as the core sees it. Real nodes use a cryptographic source; tests and the simulator
 * use a seeded generator so a run can be replayed.
 */
export interface Random {
  /** `length` random bytes. */
  bytes(length: number): Uint8Array;
  /** A float in [0, 1). */
  float(): number;
  /** An integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
}

/** Returns a copy of `items` in random order (Fisher–Yates). */
export function shuffled<T>(random: Random, items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
