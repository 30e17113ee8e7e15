import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompositionTooLargeError, type MaskInput, effectiveMasks } from '../../crdt-schema/index.ts';

const LIMIT = 1_000_000;

function input(name: string, fields: Partial<MaskInput> = {}): MaskInput {
  return { name, effectivePriority: 0, immutable: false, mask: [], fileSpec: [], dependencySpec: [], protectedSpec: [], ...fields };
}

function maskOf(neighbours: readonly MaskInput[], name: string): readonly string[] {
  return effectiveMasks(neighbours, LIMIT).get(name)!;
}

/** The original's effective_mask, transcribed loop for loop, to check the batch version against. */
function referenceMask(self: MaskInput, neighbours: readonly MaskInput[]): string[] {
  const collected: string[] = [];
  for (const neighbour of neighbours) {
    if (neighbour.name === self.name) continue;
    collected.push(...neighbour.protectedSpec);
    if (neighbour.effectivePriority > self.effectivePriority) {
      collected.push(...neighbour.mask);
      if (neighbour.immutable) collected.push(...neighbour.fileSpec, ...neighbour.dependencySpec);
    }
  }
  return [...new Set([...collected, ...self.mask])].sort();
}

describe('effective mask', () => {
  it('keeps a module with no neighbours to its own mask', () => {
    expect(maskOf([input('a', { mask: ['/var/cache/**', '/tmp/x'] })], 'a')).toEqual(['/tmp/x', '/var/cache/**']);
  });

  it("takes every neighbour's protectedSpec whatever the priorities, but not the module's own", () => {
    const low = input('low', { effectivePriority: 1, protectedSpec: ['/etc/shadow'] });
    const high = input('high', { effectivePriority: 9, protectedSpec: ['/etc/sudoers'] });
    expect(maskOf([low, high], 'low')).toEqual(['/etc/sudoers']);
    expect(maskOf([low, high], 'high')).toEqual(['/etc/shadow']);
  });

  it('keeps a protected line in its own mask when another neighbour protects it too', () => {
    const a = input('a', { protectedSpec: ['/etc/shadow'] });
    const b = input('b', { protectedSpec: ['/etc/shadow'] });
    expect(maskOf([a, b], 'a')).toEqual(['/etc/shadow']);
  });

  it('carries masks down from strictly higher priorities only, never up or sideways', () => {
    const high = input('high', { effectivePriority: 5001, mask: ['/high'] });
    const peer = input('peer', { effectivePriority: 3000, mask: ['/peer'] });
    const low = input('low', { effectivePriority: 3000, mask: ['/low'] });
    const modules = [high, peer, low];
    expect(maskOf(modules, 'low')).toEqual(['/high', '/low']);
    expect(maskOf(modules, 'peer')).toEqual(['/high', '/peer']);
    expect(maskOf(modules, 'high')).toEqual(['/high']);
  });

  it("excludes a higher immutable neighbour's fileSpec and dependencySpec, not a mutable one's", () => {
    const locked = input('locked', { effectivePriority: 9, immutable: true, fileSpec: ['/opt/locked/**'], dependencySpec: ['/srv/child/**'] });
    const open = input('open', { effectivePriority: 8, fileSpec: ['/opt/open/**'], dependencySpec: ['/srv/open/**'] });
    const low = input('low', { effectivePriority: 1 });
    expect(maskOf([locked, open, low], 'low')).toEqual(['/opt/locked/**', '/srv/child/**']);
    // A lower immutable module reserves nothing from a higher one.
    expect(maskOf([locked, open, low], 'locked')).toEqual([]);
  });

  it('gives the same masks as the original, module by module, for any neighbours', () => {
    const line = fc.constantFrom('/a', '/a/**', '/b', '/b/c', '/etc/shadow', '/etc/**', '*.pyc', '/var/cache/**');
    const lines = fc.uniqueArray(line, { maxLength: 4 }).map((values) => values.sort());
    const neighbour = fc.record({ effectivePriority: fc.integer({ min: 0, max: 4 }), immutable: fc.boolean(), mask: lines, fileSpec: lines, dependencySpec: lines, protectedSpec: lines });
    fc.assert(
      fc.property(fc.array(neighbour, { maxLength: 8 }), (sketches) => {
        const neighbours = sketches.map((sketch, index) => input(`m${index}`, sketch));
        const masks = effectiveMasks(neighbours, LIMIT);
        for (const module of neighbours) expect(masks.get(module.name)).toEqual(referenceMask(module, neighbours));
      }),
    );
  });

  it('refuses a composition whose masks pass the line limit', () => {
    const modules = [input('a', { protectedSpec: ['/x', '/y'] }), input('b', { protectedSpec: ['/z'] })];
    expect(() => effectiveMasks(modules, 2)).toThrow(CompositionTooLargeError);
    expect(effectiveMasks(modules, 3).get('a')).toEqual(['/z']);
  });
});
