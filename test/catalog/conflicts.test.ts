import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCatalog, findConflicts, pathsOverlap, previewTemplate } from '../../crdt-schema/index.ts';
import { module, template } from './fixtures.ts';

describe('conflicts', () => {
  it('refuses a closure holding a module and one it declares a conflict with', () => {
    const modules = [module('nginx', { conflicts: ['apache'] }), module('apache')];
    const preview = previewTemplate(template('t', ['nginx', 'apache']), modules);
    expect(preview.ok).toBe(false);
    expect(preview.conflicts).toEqual([expect.objectContaining({ kind: 'module-conflict', module: 'nginx', conflictsWith: 'apache' })]);
  });

  it('ignores a conflict with a module outside the closure', () => {
    const modules = [module('nginx', { conflicts: ['apache'] }), module('apache')];
    expect(previewTemplate(template('t', ['nginx']), modules).ok).toBe(true);
  });

  it('catches a conflict pulled in through a dependency and one with a capability', () => {
    const modules = [module('app', { requires: ['web-server'] }), module('apache', { provides: ['web-server'] }), module('nginx', { conflicts: ['web-server'], provides: ['web-server'] })];
    const preview = previewTemplate(template('t', ['app', 'nginx']), modules);
    // app's web-server is met by the chosen nginx; nginx conflicts with web-server but not with itself.
    expect(preview.ok).toBe(true);
    // apache arrives only through app's requirement, and x conflicts with what it provides.
    const pulledIn = [module('app', { requires: ['web-server'] }), module('apache', { provides: ['web-server'] }), module('x', { conflicts: ['web-server'] })];
    const pulled = previewTemplate(template('t', ['app', 'x']), pulledIn);
    expect(pulled.conflicts).toEqual([expect.objectContaining({ kind: 'module-conflict', module: 'x', conflictsWith: 'apache', declared: 'web-server' })]);
  });

  it('refuses two instance-variety modules in one category and allows them in two', () => {
    const one = [module('pg', { variety: 'instance', category: 'db' }), module('maria', { variety: 'instance', category: 'db' })];
    const preview = previewTemplate(template('t', ['pg', 'maria']), one);
    expect(preview.conflicts).toEqual([expect.objectContaining({ kind: 'instance-collision', category: 'db', modules: ['maria', 'pg'] })]);
    const two = [module('pg', { variety: 'instance', category: 'db' }), module('redis', { variety: 'instance', category: 'cache' })];
    expect(previewTemplate(template('t', ['pg', 'redis']), two).ok).toBe(true);
  });

  it("warns, without blocking, when a file spec covers another module's protected paths", () => {
    const modules = [module('base', { protectedSpec: ['/etc/shadow', '/etc/sudoers', '/root/**'] }), module('broad', { fileSpec: ['/etc/**'] })];
    const preview = previewTemplate(template('t', ['base', 'broad']), modules);
    expect(preview.ok).toBe(true);
    expect(preview.warnings).toEqual([expect.objectContaining({ kind: 'protected-overlap', claimer: 'base', other: 'broad', paths: ['/etc/shadow', '/etc/sudoers'] })]);
  });

  it('does not warn about a module covering its own protected paths', () => {
    const modules = [module('base', { protectedSpec: ['/etc/shadow'], fileSpec: ['/etc/**'] })];
    expect(previewTemplate(template('t', ['base']), modules).warnings).toEqual([]);
  });
});

describe('path overlap', () => {
  it('overlaps equal paths and paths under one another, ignoring a trailing /* or /**', () => {
    expect(pathsOverlap('/etc/**', '/etc/shadow')).toBe(true);
    expect(pathsOverlap('/etc/ssh/sshd_config', '/etc/*')).toBe(true);
    expect(pathsOverlap('/etc', '/etc/**')).toBe(true);
    expect(pathsOverlap('/**', '/var/lib')).toBe(true);
  });

  it('does not overlap siblings or a shared name prefix', () => {
    expect(pathsOverlap('/etc/foo', '/etc/foobar')).toBe(false);
    expect(pathsOverlap('/etc/a/**', '/etc/b/**')).toBe(false);
    expect(pathsOverlap('*.pyc', '/etc/x.pyc')).toBe(false);
  });

  it('finds through its index exactly the overlaps a pairwise comparison finds', () => {
    const path = fc.constantFrom('/**', '/etc', '/etc/**', '/etc/*', '/etc/ssh', '/etc/ssh/**', '/etc/sshd', '/var', '/var/lib/x', 'rel', 'rel/**');
    const spec = fc.uniqueArray(path, { maxLength: 3 });
    fc.assert(
      fc.property(fc.array(fc.record({ fileSpec: spec, protectedSpec: spec }), { maxLength: 5 }), (sketches) => {
        const modules = sketches.map((sketch, index) => module(`m${index}`, sketch));
        const found = findConflicts(buildCatalog(modules), modules.map((m) => m.name)).flatMap((problem) => (problem.kind === 'protected-overlap' ? [`${problem.claimer}>${problem.other}:${problem.paths.join(',')}`] : []));
        const expected: string[] = [];
        for (const claimer of modules) {
          for (const other of modules) {
            if (other === claimer) continue;
            const paths = claimer.protectedSpec.filter((claim) => other.fileSpec.some((line) => pathsOverlap(claim, line)));
            if (paths.length > 0) expected.push(`${claimer.name}>${other.name}:${paths.join(',')}`);
          }
        }
        expect(found.sort()).toEqual(expected.sort());
      }),
    );
  });
});
