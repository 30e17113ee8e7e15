import { describe, expect, it } from 'vitest';
import { type Random, shuffled } from '../../mesh/index.ts';

/** The Random contract: ranges and rough uniformity (a broken generator fails these). */
export function runRandomSuite(name: string, create: () => Random): void {
  describe(`Random contract: ${name}`, () => {
    it('returns the requested number of bytes, not all equal', () => {
      const random = create();
      const bytes = random.bytes(33);
      expect(bytes.length).toBe(33);
      expect(new Set(bytes).size).toBeGreaterThan(10);
    });

    it('keeps float() in [0, 1) with a mean near one half', () => {
      const random = create();
      let sum = 0;
      for (let i = 0; i < 10_000; i++) {
        const value = random.float();
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThan(1);
        sum += value;
      }
      expect(sum / 10_000).toBeGreaterThan(0.47);
      expect(sum / 10_000).toBeLessThan(0.53);
    });

    it('keeps int(n) in [0, n) and reaches every value', () => {
      const random = create();
      const seen = new Set<number>();
      for (let i = 0; i < 1_000; i++) {
        const value = random.int(7);
        expect(Number.isInteger(value) && value >= 0 && value < 7).toBe(true);
        seen.add(value);
      }
      expect(seen.size).toBe(7);
      expect(() => random.int(0)).toThrow(RangeError);
    });

    it('shuffles without losing or adding items', () => {
      const random = create();
      const items = Array.from({ length: 50 }, (_, i) => i);
      const result = shuffled(random, items);
      expect([...result].sort((a, b) => a - b)).toEqual(items);
      expect(result).not.toEqual(items);
    });
  });
}
