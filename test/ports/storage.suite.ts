import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidStorageKeyError, type Storage, StorageClosedError } from '../../mesh/index.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

/** The Storage contract, run against every adapter. */
export function runStorageSuite(name: string, open: () => Promise<Storage>): void {
  describe(`Storage contract: ${name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await open();
    });
    afterEach(async () => {
      await storage.close();
    });

    it('returns what was put and undefined for a missing key', async () => {
      await storage.put(['a', 'b'], bytes('one'));
      expect(text(await storage.get(['a', 'b']))).toBe('one');
      expect(await storage.get(['a', 'c'])).toBeUndefined();
    });

    it('does not let the caller alias stored bytes', async () => {
      const value = bytes('abc');
      await storage.put(['k'], value);
      value[0] = 0x7a;
      const read = await storage.get(['k']);
      expect(text(read)).toBe('abc');
    });

    it('deletes a key', async () => {
      await storage.put(['k'], bytes('v'));
      await storage.delete(['k']);
      expect(await storage.get(['k'])).toBeUndefined();
    });

    it('lists a prefix range in tuple order, excluding the prefix itself and siblings', async () => {
      await storage.put(['doc', 'x'], bytes('self'));
      await storage.put(['doc', 'x', '2'], bytes('2'));
      await storage.put(['doc', 'x', '10'], bytes('10'));
      await storage.put(['doc', 'x', '1', 'deep'], bytes('deep'));
      await storage.put(['doc', 'xy', '1'], bytes('sibling'));
      await storage.put(['doc', 'w', '1'], bytes('before'));
      const entries = await storage.range(['doc', 'x']);
      expect(entries.map((e) => e.key)).toEqual([
        ['doc', 'x', '1', 'deep'],
        ['doc', 'x', '10'],
        ['doc', 'x', '2'],
      ]);
      expect(entries.map((e) => text(e.value))).toEqual(['deep', '10', '2']);
      expect((await storage.range(['doc', 'x'], { limit: 2 })).length).toBe(2);
    });

    it('deletes a prefix range and nothing else', async () => {
      await storage.put(['doc', 'x', '1'], bytes('1'));
      await storage.put(['doc', 'x', '2'], bytes('2'));
      await storage.put(['doc', 'xy', '1'], bytes('keep'));
      await storage.put(['doc', 'x'], bytes('keep-self'));
      await storage.deleteRange(['doc', 'x']);
      expect(await storage.range(['doc', 'x'])).toEqual([]);
      expect(text(await storage.get(['doc', 'xy', '1']))).toBe('keep');
      expect(text(await storage.get(['doc', 'x']))).toBe('keep-self');
    });

    it('applies a batch of puts and deletes together, synced or not', async () => {
      await storage.put(['gone'], bytes('x'));
      await storage.batch([
        { type: 'put', key: ['a'], value: bytes('1') },
        { type: 'put', key: ['b'], value: bytes('2') },
        { type: 'delete', key: ['gone'] },
      ]);
      await storage.batch([{ type: 'put', key: ['c'], value: bytes('3') }], { sync: true });
      expect(text(await storage.get(['a']))).toBe('1');
      expect(text(await storage.get(['b']))).toBe('2');
      expect(text(await storage.get(['c']))).toBe('3');
      expect(await storage.get(['gone'])).toBeUndefined();
    });

    it('rejects a batch with an invalid key without applying any of it', async () => {
      await expect(
        storage.batch([
          { type: 'put', key: ['ok'], value: bytes('1') },
          { type: 'put', key: ['bad\u0000part'], value: bytes('2') },
        ]),
      ).rejects.toBeInstanceOf(InvalidStorageKeyError);
      expect(await storage.get(['ok'])).toBeUndefined();
      await expect(storage.put([], bytes('x'))).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.put(['a', ''], bytes('x'))).rejects.toBeInstanceOf(InvalidStorageKeyError);
    });

    it('refuses use after close', async () => {
      await storage.close();
      await expect(storage.get(['a'])).rejects.toBeInstanceOf(StorageClosedError);
      storage = await open();
    });
  });
}
