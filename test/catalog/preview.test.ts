import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Module, type TemplatePreview, previewTemplate, templateOf } from '../../crdt-schema/index.ts';
import { module } from './fixtures.ts';

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
const PATHS = ['/etc/**', '/etc/shadow', '/etc/ssh/**', '/usr/bin/x', '/var/cache/**', '/srv/**', '/srv/www'];
const CAPABILITIES = ['database', 'web-server'];

const names = fc.subarray(NAMES, { maxLength: 3 });
const entries = fc.subarray([...NAMES, ...CAPABILITIES], { maxLength: 3 });
const paths = fc.subarray(PATHS, { maxLength: 3 });

/** A random catalog over a few names, so dependencies, conflicts, cycles and overlaps all happen. */
const catalogArbitrary = fc.uniqueArray(
  fc.record({
    name: fc.constantFrom(...NAMES),
    variety: fc.constantFrom('config' as const, 'instance' as const, 'subscription' as const),
    category: fc.constantFrom('base', 'apps'),
    position: fc.integer({ min: 0, max: 2 }),
    priority: fc.integer({ min: 0, max: 2 }),
    immutable: fc.boolean(),
    requires: entries,
    recommends: entries,
    conflicts: entries,
    provides: fc.subarray(CAPABILITIES, { maxLength: 1 }),
    mask: paths,
    fileSpec: paths,
    dependencySpec: paths,
    protectedSpec: paths,
    packageSpec: fc.subarray(['nginx', 'curl', 'jq'], { maxLength: 2 }),
  }),
  { selector: (sketch) => sketch.name, minLength: 1, maxLength: NAMES.length },
).map((sketches) => sketches.map((sketch) => module(sketch.name, sketch)));

const templateArbitrary = fc.array(
  fc.record({ module: fc.constantFrom(...NAMES), enabled: fc.boolean(), priority: fc.integer({ min: 0, max: 3 }), recommendsOverride: fc.option(fc.record({ replace: names }), { nil: undefined }) }),
  { maxLength: 4 },
).map((modules) => {
  const unique = [...new Map(modules.map((entry) => [entry.module, entry])).values()];
  return unique.map((entry) => (entry.recommendsOverride === undefined ? { module: entry.module, enabled: entry.enabled, priority: entry.priority } : entry));
});

function preview(modules: readonly Module[], templateModules: readonly object[]): TemplatePreview {
  return previewTemplate(templateOf({ name: 't', modules: templateModules }), modules);
}

/** Checks a closure for error conflicts from first principles, not with the code under test. */
function hasConflict(result: TemplatePreview, modules: readonly Module[]): boolean {
  const inClosure = new Set(result.closure.map((entry) => entry.module));
  const chosen = modules.filter((m) => inClosure.has(m.name));
  const declared = chosen.some((m) => m.manifest.dependencies.conflicts.some((c) => chosen.some((other) => other !== m && (other.name === c || other.manifest.dependencies.provides.includes(c)))));
  const categories = chosen.filter((m) => m.variety === 'instance').map((m) => m.category.name);
  return declared || new Set(categories).size !== categories.length;
}

describe('template preview properties', () => {
  it('does not depend on the order of the catalog or of the template', () => {
    fc.assert(
      fc.property(catalogArbitrary, templateArbitrary, (modules, templateModules) => {
        const forward = preview(modules, templateModules);
        const backward = preview([...modules].reverse(), [...templateModules].reverse());
        expect(backward).toEqual(forward);
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same result, to the fingerprint, every time', () => {
    fc.assert(
      fc.property(catalogArbitrary, templateArbitrary, (modules, templateModules) => {
        const first = preview(modules, templateModules);
        const second = preview(modules.map((m) => structuredClone(m)), structuredClone(templateModules));
        expect(JSON.stringify(second)).toBe(JSON.stringify(first));
      }),
    );
  });

  it('never says ok for a closure that holds a conflict', () => {
    let okSeen = 0;
    let conflictSeen = 0;
    fc.assert(
      fc.property(catalogArbitrary, templateArbitrary, (modules, templateModules) => {
        const result = preview(modules, templateModules);
        const conflict = hasConflict(result, modules);
        if (result.ok) okSeen++;
        if (conflict) conflictSeen++;
        expect(result.ok && conflict).toBe(false);
        expect(result.ok).toBe(result.conflicts.length === 0);
      }),
      { numRuns: 500 },
    );
    // The generator must reach both sides, or the property says nothing.
    expect(okSeen).toBeGreaterThan(0);
    expect(conflictSeen).toBeGreaterThan(0);
  });

  it('keeps a fingerprint when nothing that builds changes, and changes it when a path does', () => {
    fc.assert(
      fc.property(catalogArbitrary, (modules) => {
        const all = modules.map((m) => ({ module: m.name }));
        const base = preview(modules, all);
        // Config and template priorities do not reach the build, so they leave the fingerprint alone.
        const reconfigured = preview(modules.map((m) => ({ ...m, config: { tuned: true } })), all.map((entry) => ({ ...entry, priority: 7 })));
        expect(reconfigured.fingerprint).toBe(base.fingerprint);
        const target = modules[0]!;
        const changed = preview([{ ...target, fileSpec: [...target.fileSpec, '/new/path'] }, ...modules.slice(1)], all);
        expect(changed.fingerprint).not.toBe(base.fingerprint);
      }),
    );
  });
});

describe('template preview', () => {
  it('orders the closure as the overlay stacks: highest effective priority first', () => {
    const modules = [module('os', { position: 1, priority: 5 }), module('tuning', { position: 9, priority: 0 }), module('app', { position: 5, priority: 999 })];
    const result = preview(modules, [{ module: 'os' }, { module: 'tuning' }, { module: 'app' }]);
    expect(result.closure.map((entry) => [entry.module, entry.effectivePriority])).toEqual([
      ['tuning', 9000],
      ['app', 5999],
      ['os', 1005],
    ]);
  });

  it("lays the template module's config over the module's, key by key", () => {
    const modules = [module('nginx', { config: { workers: 2, tls: { enabled: false, ciphers: ['a'] } } })];
    const result = preview(modules, [{ module: 'nginx', config: { tls: { enabled: true } } }]);
    expect(result.closure[0]!.config).toEqual({ workers: 2, tls: { enabled: true, ciphers: ['a'] } });
  });

  it('lists problems by kind, then by message', () => {
    const modules = [module('z', { requires: ['ghost'] }), module('a', { requires: ['ghost', 'a'] }), module('m', { conflicts: ['a'] })];
    const result = preview(modules, [{ module: 'z' }, { module: 'a' }, { module: 'm' }]);
    expect(result.conflicts.map((problem) => `${problem.kind}: ${problem.message}`)).toEqual([
      'dependency-cycle: dependency cycle: a → a',
      'missing-dependency: a requires "ghost", which no module in the catalog is or provides',
      'missing-dependency: z requires "ghost", which no module in the catalog is or provides',
      'module-conflict: m conflicts with a, and both are in the closure',
    ]);
  });

  it('shows the footprint: modules, packages and paths of the whole closure', () => {
    const modules = [module('web', { requires: ['base'], packageSpec: ['nginx'], fileSpec: ['/etc/nginx/**'] }), module('base', { packageSpec: ['coreutils', 'nginx'], fileSpec: ['/etc/**'] })];
    expect(preview(modules, [{ module: 'web' }]).footprint).toEqual({ modules: ['base', 'web'], packages: ['coreutils', 'nginx'], paths: ['/etc/**', '/etc/nginx/**'] });
  });
});
