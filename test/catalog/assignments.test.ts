import { describe, expect, it } from 'vitest';
import { type Assignment, TemplateNotComposableError, applyTemplate, assignmentOf, diffAssignments } from '../../crdt-schema/index.ts';
import { module, template } from './fixtures.ts';

const modules = [module('web', { requires: ['base'], config: { port: 80 } }), module('base'), module('extra')];
const web = template('web', [{ module: 'web', config: { port: 8080 } }]);

function apply(nodes: readonly string[]): Assignment[] {
  return applyTemplate(web, modules, nodes).assignments;
}

/** What the world looks like after a diff is carried out. */
function carryOut(current: readonly Assignment[], changes: ReturnType<typeof diffAssignments>['changes']): Assignment[] {
  const byKey = new Map(current.map((a) => [`${a.node}:${a.module}`, a]));
  for (const change of changes) {
    if (change.type === 'remove') byKey.delete(`${change.node}:${change.module}`);
    else byKey.set(`${change.node}:${change.module}`, change.after!);
  }
  return [...byKey.values()];
}

describe('applying a template', () => {
  it('assigns the whole closure to every node, with the template config, in node:module order', () => {
    expect(apply(['node-b', 'node-a']).map((a) => `${a.node}:${a.module}`)).toEqual(['node-a:base', 'node-a:web', 'node-b:base', 'node-b:web']);
    expect(apply(['node-a']).find((a) => a.module === 'web')).toEqual({ node: 'node-a', module: 'web', template: 'web', config: { port: 8080 }, enabled: true });
  });

  it('refuses a template that does not compose, before producing anything', () => {
    const broken = template('broken', ['web', 'ghost']);
    expect(() => applyTemplate(broken, modules, ['node-a'])).toThrow(TemplateNotComposableError);
    expect(() => applyTemplate(broken, modules, ['node-a'])).toThrow('template broken does not compose: template broken names module ghost');
  });

  it('refuses an empty or malformed node list', () => {
    expect(() => applyTemplate(web, modules, [])).toThrow('name at least one node');
    expect(() => applyTemplate(web, modules, ['bad node'])).toThrow('nodes[0]: must be a node');
  });
});

describe('dry-run diff', () => {
  it('adds what is missing, updates what differs and counts what already matches', () => {
    const desired = apply(['node-a']);
    const current: Assignment[] = [{ node: 'node-a', module: 'base', template: 'web', config: {}, enabled: true }, { node: 'node-a', module: 'web', template: 'web', config: { port: 80 }, enabled: true }];
    const diff = diffAssignments(current, desired, { template: 'web', nodes: ['node-a'], purgeStale: false });
    expect(diff.changes.map((change) => [change.type, change.module])).toEqual([['update', 'web']]);
    expect(diff.unchanged).toBe(1);
    expect(diffAssignments([], desired, { template: 'web', nodes: ['node-a'], purgeStale: false }).changes.map((change) => change.type)).toEqual(['add', 'add']);
  });

  it('treats configs with the same values in another key order as unchanged', () => {
    const desired: Assignment[] = [{ node: 'n', module: 'm', template: 't', config: { a: 1, b: { c: 2, d: 3 } }, enabled: true }];
    const current: Assignment[] = [{ node: 'n', module: 'm', template: 't', config: { b: { d: 3, c: 2 }, a: 1 }, enabled: true }];
    expect(diffAssignments(current, desired, { template: 't', nodes: ['n'], purgeStale: true })).toEqual({ changes: [], stale: [], unchanged: 1 });
  });

  it('lists what the template no longer names as stale, and removes it only with purgeStale', () => {
    const desired = apply(['node-a']);
    const old: Assignment = { node: 'node-a', module: 'extra', template: 'web', config: {}, enabled: true };
    const manual: Assignment = { node: 'node-a', module: 'tools', config: {}, enabled: true };
    const elsewhere: Assignment = { node: 'node-b', module: 'extra', template: 'web', config: {}, enabled: true };
    const current = [...desired, old, manual, elsewhere];
    const kept = diffAssignments(current, desired, { template: 'web', nodes: ['node-a'], purgeStale: false });
    expect(kept).toEqual({ changes: [], stale: [old], unchanged: 2 });
    const purged = diffAssignments(current, desired, { template: 'web', nodes: ['node-a'], purgeStale: true });
    expect(purged.changes).toEqual([{ type: 'remove', node: 'node-a', module: 'extra', before: old }]);
  });

  it('changes nothing the second time the same template is applied', () => {
    const current: Assignment[] = [{ node: 'node-a', module: 'extra', template: 'web', config: {}, enabled: true }];
    const desired = apply(['node-a', 'node-b']);
    const scope = { template: 'web', nodes: ['node-a', 'node-b'], purgeStale: true };
    const after = carryOut(current, diffAssignments(current, desired, scope).changes);
    expect(diffAssignments(after, desired, scope).changes).toEqual([]);
  });

  it('refuses a side holding one node:module twice', () => {
    const twice: Assignment[] = [{ node: 'n', module: 'm', config: {}, enabled: true }, { node: 'n', module: 'm', config: {}, enabled: false }];
    expect(() => diffAssignments(twice, [], { template: 't', nodes: ['n'], purgeStale: false })).toThrow('current assignments: "n:m" appears more than once');
  });

  it('checks an assignment from outside', () => {
    expect(assignmentOf({ node: 'node-a', module: 'web' }, 'assignment')).toEqual({ node: 'node-a', module: 'web', config: {}, enabled: true });
    expect(() => assignmentOf({ node: 'node-a', module: 'web', enabled: 'yes' }, 'assignment')).toThrow('assignment.enabled: must be true or false');
  });
});
