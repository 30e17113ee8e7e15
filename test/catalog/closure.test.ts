import { describe, expect, it } from 'vitest';
import { type Module, previewTemplate } from '../../crdt-schema/index.ts';
import { module, template } from './fixtures.ts';

const names = (modules: readonly { module: string }[]): string[] => modules.map((entry) => entry.module).sort();

function closureOf(chosen: readonly (string | Record<string, unknown>)[], modules: readonly Module[]) {
  return previewTemplate(template('t', chosen), modules);
}

describe('dependency closure', () => {
  it('follows requires transitively and records who pulled each module in', () => {
    const modules = [module('web', { requires: ['nginx'] }), module('nginx', { requires: ['base'] }), module('base'), module('unused')];
    const preview = closureOf(['web'], modules);
    expect(names(preview.closure)).toEqual(['base', 'nginx', 'web']);
    expect(preview.closure.find((entry) => entry.module === 'base')).toMatchObject({ explicit: false, requiredBy: ['nginx'] });
    expect(preview.closure.find((entry) => entry.module === 'web')).toMatchObject({ explicit: true, requiredBy: [] });
  });

  it('follows recommends unless the template module turns them off', () => {
    const modules = [module('web', { recommends: ['metrics', 'logs'] }), module('metrics'), module('logs')];
    expect(names(closureOf(['web'], modules).closure)).toEqual(['logs', 'metrics', 'web']);
    expect(names(closureOf([{ module: 'web', recommendsOverride: { replace: [] } }], modules).closure)).toEqual(['web']);
    expect(names(closureOf([{ module: 'web', recommendsOverride: { exclude: ['logs'] } }], modules).closure)).toEqual(['metrics', 'web']);
    expect(names(closureOf([{ module: 'web', recommendsOverride: { replace: ['logs'] } }], modules).closure)).toEqual(['logs', 'web']);
  });

  it('lets a module pulled in transitively follow all of its own recommends', () => {
    const modules = [module('web', { requires: ['nginx'] }), module('nginx', { recommends: ['metrics'] }), module('metrics')];
    expect(names(closureOf([{ module: 'web', recommendsOverride: { replace: [] } }], modules).closure)).toEqual(['metrics', 'nginx', 'web']);
  });

  it('leaves disabled template modules out unless something requires them', () => {
    const modules = [module('web', { requires: ['base'] }), module('base'), module('extra')];
    const preview = closureOf(['web', { module: 'extra', enabled: false }, { module: 'base', enabled: false }], modules);
    expect(names(preview.closure)).toEqual(['base', 'web']);
    expect(preview.closure.find((entry) => entry.module === 'base')!.explicit).toBe(false);
  });

  it('meets a capability with a chosen provider first, else with its only provider', () => {
    const modules = [module('app', { requires: ['database'] }), module('postgres', { provides: ['database'] }), module('mariadb', { provides: ['database'] })];
    const chosen = closureOf(['app', 'mariadb'], modules);
    expect(names(chosen.closure)).toEqual(['app', 'mariadb']);
    expect(chosen.ok).toBe(true);
    const single = [module('app', { requires: ['database'] }), module('postgres', { provides: ['database'] })];
    expect(names(closureOf(['app'], single).closure)).toEqual(['app', 'postgres']);
  });

  it('reports an ambiguous capability as an error naming its providers', () => {
    const modules = [module('app', { requires: ['database'] }), module('postgres', { provides: ['database'] }), module('mariadb', { provides: ['database'] })];
    const preview = closureOf(['app'], modules);
    expect(preview.ok).toBe(false);
    expect(preview.conflicts).toEqual([expect.objectContaining({ kind: 'ambiguous-dependency', module: 'app', dependency: 'database', providers: ['mariadb', 'postgres'] })]);
  });

  it('reports a missing requirement as an error and a missing recommendation as a warning', () => {
    const preview = closureOf(['app'], [module('app', { requires: ['ghost'], recommends: ['phantom'] })]);
    expect(preview.ok).toBe(false);
    expect(preview.conflicts.map((problem) => problem.kind)).toEqual(['missing-dependency']);
    expect(preview.warnings.map((problem) => problem.kind)).toEqual(['missing-recommendation']);
  });

  it('reports a template module missing from the catalog without throwing', () => {
    const preview = closureOf(['ghost', 'base'], [module('base')]);
    expect(preview.ok).toBe(false);
    expect(preview.conflicts).toEqual([expect.objectContaining({ kind: 'unknown-module', module: 'ghost' })]);
    expect(names(preview.closure)).toEqual(['base']);
  });
});

describe('dependency cycles', () => {
  it('names a cycle from its first module along the way back: a → b → c → a', () => {
    const modules = [module('b', { requires: ['c'] }), module('c', { requires: ['a'] }), module('a', { requires: ['b'] })];
    const preview = closureOf(['c'], modules);
    expect(preview.ok).toBe(false);
    expect(preview.conflicts).toEqual([expect.objectContaining({ kind: 'dependency-cycle', cycle: ['a', 'b', 'c', 'a'], message: 'dependency cycle: a → b → c → a' })]);
  });

  it('names the shortest way back when a group has several cycles', () => {
    const modules = [module('a', { requires: ['b', 'c'] }), module('b', { requires: ['c'] }), module('c', { requires: ['a'] })];
    expect(closureOf(['a'], modules).conflicts.map((problem) => problem.message)).toEqual(['dependency cycle: a → c → a']);
  });

  it('reports a module that requires itself, and each separate cycle once', () => {
    const modules = [module('self', { requires: ['self'] }), module('x', { requires: ['y'] }), module('y', { requires: ['x'] })];
    expect(closureOf(['self', 'x'], modules).conflicts.map((problem) => problem.message)).toEqual(['dependency cycle: self → self', 'dependency cycle: x → y → x']);
  });

  it('does not count recommends as a cycle', () => {
    const modules = [module('a', { requires: ['b'] }), module('b', { recommends: ['a'] })];
    expect(closureOf(['a'], modules).ok).toBe(true);
  });

  it('finds a cycle at the end of a long chain without overflowing the stack', () => {
    const length = 4_000;
    const modules = Array.from({ length }, (_, index) => module(`m${String(index).padStart(4, '0')}`, { requires: [`m${String((index + 1) % length).padStart(4, '0')}`] }));
    const [problem] = closureOf(['m0000'], modules).conflicts;
    expect(problem?.kind === 'dependency-cycle' && problem.cycle.length).toBe(length + 1);
  });
});
