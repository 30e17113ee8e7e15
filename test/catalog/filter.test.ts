import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog, composeFilters, compositionFingerprint, effectiveMasks, filterFingerprint, filterInput, filterText } from '../../crdt-schema/index.ts';
import { module } from './fixtures.ts';

describe('rsync filter', () => {
  it('writes excludes, then includes, then "- *", one rule a line', () => {
    expect(filterText(['/etc/shadow', '/var/cache/**'], ['/etc/**', '/usr/bin/tool'])).toBe('- /etc/shadow\n- /var/cache/**\n+ /etc/**\n+ /usr/bin/tool\n- *\n');
  });

  it('is only "- *" for a module that includes nothing', () => {
    expect(filterText([], [])).toBe('- *\n');
  });

  it('fingerprints filter and packages as the original: SHA-256 of "filter|packages"', () => {
    const filter = '+ /etc/**\n- *\n';
    expect(filterFingerprint(filter, ['nginx', 'libpcre3'])).toBe(createHash('sha256').update(`${filter}|nginx\nlibpcre3\n`).digest('hex'));
    expect(filterFingerprint(filter, [])).toBe(createHash('sha256').update(`${filter}|`).digest('hex'));
  });

  it('changes the fingerprint when the packages change and keeps it when nothing does', () => {
    const filter = '+ /etc/**\n- *\n';
    expect(filterFingerprint(filter, ['a'])).toBe(filterFingerprint(filter, ['a']));
    expect(filterFingerprint(filter, ['a'])).not.toBe(filterFingerprint(filter, ['b']));
  });

  it('hashes text beyond ASCII as UTF-8, inside a composition as alone', () => {
    const [filter] = composeFilters([{ ...filterInput(buildCatalog([]), module('a', { fileSpec: ['/srv/café/**'] })) }]);
    expect(filter!.fingerprint).toBe(createHash('sha256').update(`${filter!.filter}|`, 'utf8').digest('hex'));
    expect(filterFingerprint(filter!.filter, [])).toBe(filter!.fingerprint);
  });

  it('writes each module the filter of its effective mask and its fingerprint', () => {
    const line = fc.constantFrom('/a/**', '/b', '/etc/shadow', '/srv/ü', '*.pyc');
    const lines = fc.uniqueArray(line, { maxLength: 3 });
    const sketch = fc.record({ position: fc.integer({ min: 0, max: 3 }), immutable: fc.boolean(), mask: lines, fileSpec: lines, dependencySpec: lines, protectedSpec: lines, packageSpec: fc.uniqueArray(fc.constantFrom('curl', 'jq'), { maxLength: 2 }) });
    fc.assert(
      fc.property(fc.array(sketch, { maxLength: 6 }), (sketches) => {
        const catalog = buildCatalog([]);
        const inputs = sketches.map((entry, index) => filterInput(catalog, module(`m${index}`, entry)));
        const masks = effectiveMasks(inputs, 1_000_000);
        for (const filter of composeFilters(inputs)) {
          const input = inputs.find((entry) => entry.name === filter.module)!;
          expect(filter.filter).toBe(filterText(masks.get(filter.module)!, input.fileSpec));
          expect(filter.fingerprint).toBe(filterFingerprint(filter.filter, input.packageSpec));
        }
      }),
    );
  });

  it('fingerprints each filter whole, though many modules share the beginning of their masks', () => {
    // Every module protects a few of the same lines, so most masks begin alike for a while and
    // part ways at different lines: the hash state over a shared beginning is reused.
    const protectedLine = fc.constantFrom(...Array.from({ length: 12 }, (_, index) => `/etc/${String.fromCharCode(97 + index)}`), '/etc/é');
    const sketch = fc.record({
      position: fc.integer({ min: 0, max: 3 }),
      immutable: fc.boolean(),
      mask: fc.uniqueArray(fc.constantFrom('/etc/c', '/var/cache/**', '/srv/ü'), { maxLength: 2 }),
      fileSpec: fc.uniqueArray(fc.constantFrom('/opt/x/**', '/srv/**'), { maxLength: 2 }),
      protectedSpec: fc.uniqueArray(protectedLine, { maxLength: 4 }),
      packageSpec: fc.uniqueArray(fc.constantFrom('curl', 'jq'), { maxLength: 2 }),
    });
    fc.assert(
      fc.property(fc.array(sketch, { minLength: 2, maxLength: 16 }), (sketches) => {
        const catalog = buildCatalog([]);
        const inputs = sketches.map((entry, index) => filterInput(catalog, module(`m${String(index).padStart(2, '0')}`, entry)));
        const masks = effectiveMasks(inputs, 1_000_000);
        for (const filter of composeFilters(inputs)) {
          const input = inputs.find((entry) => entry.name === filter.module)!;
          expect(filter.filter).toBe(filterText(masks.get(filter.module)!, input.fileSpec));
          expect(filter.fingerprint).toBe(filterFingerprint(filter.filter, input.packageSpec));
        }
      }),
    );
  });

  it("gives a child its parent's dependencySpec as includes and ignores its own fileSpec", () => {
    const parent = module('postgres', { fileSpec: ['/usr/lib/postgresql/**'], dependencySpec: ['/etc/postgresql/**'] });
    const child = module('postgres-tuned', { variety: 'config', parent: 'postgres', fileSpec: ['/ignored/**'] });
    const catalog = buildCatalog([parent, child]);
    const [filter] = composeFilters([filterInput(catalog, child)]);
    expect(filter!.filter).toBe('+ /etc/postgresql/**\n- *\n');
  });

  it('fingerprints a composition from its module fingerprints in name order, whatever order they come in', () => {
    const filters = [
      { module: 'b', filter: '- *\n', fingerprint: 'f2' },
      { module: 'a', filter: '- *\n', fingerprint: 'f1' },
    ];
    expect(compositionFingerprint(filters)).toBe(createHash('sha256').update('a f1\nb f2\n').digest('hex'));
    expect(compositionFingerprint([...filters].reverse())).toBe(compositionFingerprint(filters));
  });
});
