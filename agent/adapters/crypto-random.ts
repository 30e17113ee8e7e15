import { randomBytes, randomInt } from 'node:crypto';
import type { Random } from '../../mesh/index.ts';

/** Randomness from the operating system's CSPRNG. */
export class CryptoRandom implements Random {
  bytes(length: number): Uint8Array {
    return new Uint8Array(randomBytes(length));
  }

  float(): number {
    // 53 random bits, the precision of a double.
    const bytes = randomBytes(7);
    let value = 0;
    for (const byte of bytes) value = value * 256 + byte;
    return Math.floor(value / 8) / 2 ** 53;
  }

  int(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive <= 0) throw new RangeError(`int(max) needs a positive integer, got ${maxExclusive}`);
    return randomInt(maxExclusive);
  }
}
