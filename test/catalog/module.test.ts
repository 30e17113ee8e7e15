import { describe, expect, it } from 'vitest';
import { CATALOG_LIMITS, CatalogInputError, buildCatalog, effectivePriority, manifestOf, moduleOf, templateOf } from '../../crdt-schema/index.ts';
import { module } from './fixtures.ts';

const minimal = { name: 'nginx', variety: 'subscription', category: { name: 'web', position: 5 } };

describe('module input', () => {
  it('fills defaults and normalises spec lines: trimmed, empty dropped, duplicates merged, sorted', () => {
    const checked = moduleOf({ ...minimal, fileSpec: ['  /etc/nginx/** ', '/usr/sbin/nginx', '', '/etc/nginx/**'] });
    expect(checked).toMatchObject({ priority: 0, rebootRequired: false, immutable: false, config: {}, mask: [] });
    expect(checked.fileSpec).toEqual(['/etc/nginx/**', '/usr/sbin/nginx']);
    expect(checked.manifest.dependencies.requires).toEqual([]);
  });

  it('computes effective priority as category position × 1000 + priority', () => {
    expect(effectivePriority(moduleOf({ ...minimal, priority: 42 }))).toBe(5042);
  });

  it.each([
    [{ ...minimal, name: 'Nginx' }, 'module.name: must be a name'],
    [{ ...minimal, variety: 'daemon' }, 'module "nginx".variety: must be one of config, instance, subscription'],
    [{ ...minimal, priority: 1000 }, 'module "nginx".priority: must be a whole number from 0 to 999 (got 1000)'],
    [{ ...minimal, priority: 1.5 }, 'module "nginx".priority: must be a whole number'],
    [{ ...minimal, category: { name: 'web' } }, 'module "nginx".category.position: must be a whole number'],
    [{ ...minimal, parent: 'nginx' }, 'module "nginx".parent: a module cannot be its own parent'],
    [{ ...minimal, filespec: [] }, 'module: unknown field "filespec"'],
    [{ ...minimal, mask: ['/etc\n+ /root/**'] }, 'module "nginx".mask[0]: must not contain line breaks'],
    [{ ...minimal, mask: 'not a list' }, 'module "nginx".mask: must be a list'],
    [{ ...minimal, config: { when: new Date(0) } }, 'module "nginx".config.when: a config holds only plain objects'],
    [{ ...minimal, config: JSON.parse('{"__proto__": {"x": 1}}') }, 'module "nginx".config: a config key may not be "__proto__"'],
    [{ ...minimal, initStart: 'systemctl start nginx\nrm -rf /' }, 'module "nginx".initStart: must not contain line breaks'],
  ])('refuses bad input with the field and the rule: %#', (input, message) => {
    expect(() => moduleOf(input)).toThrow(CatalogInputError);
    expect(() => moduleOf(input)).toThrow(message);
  });

  it('puts limits on spec lines, their length and config size', () => {
    const lines = Array.from({ length: CATALOG_LIMITS.specLinesMax + 1 }, (_, index) => `/p/${index}`);
    expect(() => moduleOf({ ...minimal, fileSpec: lines })).toThrow(`must have at most ${CATALOG_LIMITS.specLinesMax} entries`);
    expect(() => moduleOf({ ...minimal, mask: [`/${'x'.repeat(CATALOG_LIMITS.specLineCharsMax)}`] })).toThrow('must be at most 1024 characters');
    expect(() => moduleOf({ ...minimal, config: { blob: 'x'.repeat(CATALOG_LIMITS.configBytesMax) } })).toThrow('must be at most 65536 bytes as JSON');
    let deep: Record<string, unknown> = {};
    for (let level = 0; level < CATALOG_LIMITS.configDepthMax + 1; level++) deep = { inner: deep };
    expect(() => moduleOf({ ...minimal, config: deep })).toThrow('a config nests at most 16 levels');
  });
});

describe('manifest input', () => {
  it('reads schema_version 1 with dependencies, services and security, sorted', () => {
    const manifest = manifestOf(
      {
        schema_version: 1,
        dependencies: { requires: ['openssl', 'base', 'base'], provides: ['web-server'], conflicts: ['apache'], recommends: ['metrics'] },
        services: [{ name: 'nginx', command: '/usr/sbin/nginx -g "daemon off;"', ports: [443, 80] }],
        security: { capabilities: ['CAP_NET_BIND_SERVICE'], egress_allow: ['10.0.0.0/8', 'api.example.com:443'], privileged: false },
      },
      'manifest',
    );
    expect(manifest.dependencies.requires).toEqual(['base', 'openssl']);
    expect(manifest.services).toEqual([{ name: 'nginx', command: '/usr/sbin/nginx -g "daemon off;"', ports: [80, 443] }]);
    expect(manifest.security).toEqual({ capabilities: ['CAP_NET_BIND_SERVICE'], egressAllow: ['10.0.0.0/8', 'api.example.com:443'], privileged: false });
  });

  it('refuses another schema version, unknown fields and bad entries, saying where', () => {
    expect(() => manifestOf({ schema_version: 2 }, 'manifest')).toThrow('manifest.schema_version: must be 1');
    expect(() => manifestOf({ schema_version: 1, dependencies: { depends: [] } }, 'manifest')).toThrow('manifest.dependencies: unknown field "depends"');
    expect(() => manifestOf({ schema_version: 1, security: { capabilities: ['net_admin'] } }, 'manifest')).toThrow('manifest.security.capabilities[0]: must be a Linux capability');
    expect(() => manifestOf({ schema_version: 1, services: [{ name: 'a' }, { name: 'a' }] }, 'manifest')).toThrow('"a" appears more than once');
    expect(() => manifestOf({ schema_version: 1, services: [{ name: 'a', ports: [0] }] }, 'manifest')).toThrow('manifest.services[0].ports[0]: must be a whole number from 1 to 65535');
  });
});

describe('catalog', () => {
  it('refuses a name used twice and a parent that is not in it', () => {
    expect(() => buildCatalog([module('a'), module('a')])).toThrow('catalog: "a" appears more than once');
    expect(() => buildCatalog([module('child', { parent: 'missing' })])).toThrow('module "child".parent: names "missing", which is not in the catalog');
  });

  it('refuses more modules than the limit', () => {
    const base = module('m');
    const many = Array.from({ length: CATALOG_LIMITS.modulesMax + 1 }, (_, index) => ({ ...base, name: `m${index}` }));
    expect(() => buildCatalog(many)).toThrow(`catalog: holds at most ${CATALOG_LIMITS.modulesMax} modules`);
  });
});

describe('template input', () => {
  it('orders template modules by priority, highest first, then by name', () => {
    const checked = templateOf({ name: 'web', modules: [{ module: 'b' }, { module: 'a', priority: 5 }, { module: 'c' }] });
    expect(checked.modules.map((entry) => entry.module)).toEqual(['a', 'b', 'c']);
    expect(checked.modules[1]).toEqual({ module: 'b', enabled: true, priority: 0, config: {} });
  });

  it('refuses a module named twice and bad overrides', () => {
    expect(() => templateOf({ name: 'web', modules: [{ module: 'a' }, { module: 'a' }] })).toThrow('template "web".modules: "a" appears more than once');
    expect(() => templateOf({ name: 'web', modules: [{ module: 'a', recommendsOverride: { only: [] } }] })).toThrow('recommendsOverride: unknown field "only"');
    const many = Array.from({ length: CATALOG_LIMITS.templateModulesMax + 1 }, (_, index) => ({ module: `m${index}` }));
    expect(() => templateOf({ name: 'web', modules: many })).toThrow(`must have at most ${CATALOG_LIMITS.templateModulesMax} entries`);
  });
});
