import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DesiredCatalog, EMPTY_DESIRED_CATALOG, FLEET_FILE_LIMITS, type FleetFile, type FleetFileProblem, StaleFleetChangeError,
  applyFleetChanges, assignmentOf, diffFleetFile, exportFleetFile, moduleOf, parseFleetFile, poolOf, templateOf,
} from '../../crdt-schema/index.ts';
import { module, template } from './fixtures.ts';

/** The file, which the test expects to be valid. */
function parsed(text: string): FleetFile {
  const result = parseFleetFile(text);
  if (!result.ok) throw new Error(`expected a valid file, got: ${result.problems.map((problem) => `${problem.line}:${problem.column} ${problem.message}`).join('\n')}`);
  return result.file;
}

/** The problems, which the test expects there to be. */
function problemsOf(text: string): readonly FleetFileProblem[] {
  const result = parseFleetFile(text);
  if (result.ok) throw new Error('expected problems, the file was valid');
  return result.problems;
}

function diffProblems(file: FleetFile, current: DesiredCatalog): readonly FleetFileProblem[] {
  const diff = diffFleetFile(file, current);
  if (diff.ok) throw new Error(`expected problems, got ${diff.changes.length} changes`);
  expect(diff).not.toHaveProperty('changes');
  return diff.problems;
}

const ORIGINAL_SHAPE = `# as the original's docs/gitops.md writes it, with the modules Powernode needs
templates:
  web-server:
    name: web-server
    description: Standard nginx node
    modules:
      nginx-public: {priority: 5}
modules:
  nginx-public:
    name: nginx-public
    priority: 50
    variety: config
    category: {name: web, position: 2}
    config:
      nginx_workers: 4
assignments:
  app-01:nginx-public:
    enabled: true
    priority: 50
  app-03:nginx-public:
    enabled: false   # disabled on app-03 without detaching
provider_configs:
  hetzner: {token: not-kept}
`;

describe('parsing fleet.yaml', () => {
  it("reads the original's top-level shape, noting the fields it does not apply", () => {
    const file = parsed(ORIGINAL_SHAPE);
    expect(file.modules).toEqual([moduleOf({ name: 'nginx-public', variety: 'config', category: { name: 'web', position: 2 }, priority: 50, config: { nginx_workers: 4 } })]);
    expect(file.templates).toEqual([templateOf({ name: 'web-server', modules: [{ module: 'nginx-public', priority: 5 }] })]);
    expect(file.assignments).toEqual([
      assignmentOf({ node: 'app-01', module: 'nginx-public', enabled: true }, 'a'),
      assignmentOf({ node: 'app-03', module: 'nginx-public', enabled: false }, 'a'),
    ]);
    expect(file.pools).toBeUndefined();
    expect(file.providerConfigs).toEqual(['hetzner']);
    expect(JSON.stringify(file)).not.toContain('not-kept');
    expect(file.notices.map((notice) => [notice.path, notice.line, notice.column])).toEqual([
      ['templates.web-server.description', 5, 5],
      ['assignments.app-01:nginx-public.priority', 19, 5],
      ['provider_configs.hetzner', 23, 3],
    ]);
  });

  it('reports every YAML syntax error with its line and column, and no value', () => {
    const problems = problemsOf('modules:\n  a: [1, 2\nassignments:\n\tx: 1\n');
    expect(problems.length).toBeGreaterThanOrEqual(2);
    expect(problems.every((problem) => problem.kind === 'syntax')).toBe(true);
    expect(problems.map((problem) => problem.line)).toContain(4);
    expect(problems.find((problem) => problem.line === 4)).toMatchObject({ column: 1, message: expect.stringContaining('Tabs') });
  });

  it('points a schema error at its line, column and YAML path, saying what is allowed', () => {
    const problems = problemsOf(`modules:
  nginx:
    variety: config
    category: {name: web, position: 1}
    manifest:
      schema_version: 1
      dependencies:
        requires: [tls, base, Not_A_Name]
`);
    expect(problems).toEqual([
      {
        kind: 'schema',
        path: 'modules.nginx.manifest.dependencies.requires[2]',
        line: 8,
        column: 31,
        message: expect.stringMatching(/^modules\.nginx\.manifest\.dependencies\.requires\[2\]: must be a name of 1-64 lowercase letters/),
      },
    ]);
  });

  it('reports the first problem of every entry in one run, under fleet.yaml names', () => {
    const problems = problemsOf(`modules:
  a: {variety: sometimes, category: {name: c, position: 1}}
  b: {variety: config, category: {name: c, position: 1}, filespec: [/etc]}
  c: {variety: config, category: {name: c, position: 1}, file_spec: ["/etc\\nx"]}
templates:
  t:
    modules:
      a: {priority: 5000}
assignments:
  app-01:a: {enabled: maybe}
  app-01:a:b: {}
pools:
  p: {template: t, target_size: 20, max_size: 10}
`);
    expect(problems.map((problem) => [problem.path, problem.line, problem.column])).toEqual([
      ['modules.a.variety', 2, 16],
      ['modules.b.filespec', 3, 58],
      ['modules.c.file_spec[0]', 4, 70],
      ['templates.t.modules.a.priority', 8, 21],
      ['assignments.app-01:a.enabled', 10, 23],
      ['assignments.app-01:a:b', 11, 3],
      ['pools.p.target_size', 13, 33],
    ]);
    expect(problems[1]!.message).toContain('known fields: name, variety, category, priority, parent, config, init_start');
    expect(problems[5]!.message).toContain('the key must be node:module');
  });

  it('refuses a file over 1 MiB before parsing it', () => {
    const padding = `# ${'x'.repeat(FLEET_FILE_LIMITS.bytesMax)}\n`;
    expect(problemsOf(`modules: {}\n${padding}`)).toEqual([{ kind: 'too-large', path: '', line: 1, column: 1, message: expect.stringContaining('at most 1048576') }]);
    // The cap counts bytes, not characters: 2-byte characters reach it at half the length.
    expect(problemsOf(`# ${'é'.repeat(FLEET_FILE_LIMITS.bytesMax / 2)}\n`)[0]!.kind).toBe('too-large');
    expect(parsed(`modules: {}\n# ${'x'.repeat(FLEET_FILE_LIMITS.bytesMax - 100)}\n`).modules).toEqual([]);
  });

  it('refuses a duplicate key, giving both positions', () => {
    const problems = problemsOf(`modules:
  a: {variety: config, category: {name: c, position: 1}}
assignments:
  n1:a: {}
  n1:a: {enabled: false}
`);
    expect(problems).toEqual([
      { kind: 'duplicate-key', path: 'assignments.n1:a', line: 5, column: 3, firstAt: { line: 4, column: 3 }, message: expect.stringContaining('first at line 4, column 3') },
    ]);
  });

  it('refuses an unknown top-level key, and the original sections it does not carry with the reason', () => {
    const problems = problemsOf('modules: {}\nmodles: {}\nplatforms: {}\n');
    expect(problems.map((problem) => [problem.kind, problem.path, problem.line, problem.column])).toEqual([
      ['unknown-key', 'modles', 2, 1],
      ['unknown-key', 'platforms', 3, 1],
    ]);
    expect(problems[0]!.message).toContain('the sections are templates, modules, assignments, pools, provider_configs');
    expect(problems[1]!.message).toContain('no platform deployments');
  });

  it('refuses anchors, aliases and explicit tags (safe mode)', () => {
    const problems = problemsOf('modules: &all {}\ntemplates: *all\nassignments: !!map {}\npools: !custom {}\n');
    expect(problems.map((problem) => [problem.kind, problem.path, problem.line])).toEqual([
      ['alias', 'modules', 1],
      ['alias', 'templates', 2],
      ['tag', 'assignments', 3],
      ['tag', 'pools', 4],
    ]);
  });

  it('refuses a section that is not a mapping, and a template that lists no modules', () => {
    const problems = problemsOf('modules:\ntemplates:\n  web: {description: x}\n');
    expect(problems.map((problem) => [problem.path, problem.line])).toEqual([['modules', 1], ['templates.web', 3]]);
    expect(problems[0]!.message).toContain('write modules: {} for none');
    expect(problems[1]!.message).toContain('must list its modules');
  });

  it('quotes keys holding dots in paths, and still finds their position', () => {
    const problems = problemsOf('assignments:\n  web-01.example.com:nginx: {enabled: 3}\n');
    expect(problems[0]).toMatchObject({ path: 'assignments["web-01.example.com:nginx"].enabled', line: 2, column: 39 });
  });

  it('reads an empty file as a file that manages nothing', () => {
    expect(parsed('# nothing yet\n')).toMatchObject({ providerConfigs: [], notices: [] });
    expect(diffFleetFile(parsed(''), catalogOf({ modules: [module('a')] }))).toMatchObject({ ok: true, changes: [], kept: [] });
  });
});

/** A catalog with the given lists, the rest empty. */
function catalogOf(parts: Partial<DesiredCatalog>): DesiredCatalog {
  return { ...EMPTY_DESIRED_CATALOG, ...parts };
}

const BASE = `modules:
  base: {variety: config, category: {name: os, position: 1}}
  web:
    variety: config
    category: {name: apps, position: 2}
    manifest: {schema_version: 1, dependencies: {requires: [base]}}
templates:
  web:
    modules: {web: {}}
assignments:
  n1:web: {template: web}
  n2:web: {template: web}
pools:
  burst: {template: web, target_size: 2, min_size: 0, max_size: 5, lifecycle_class: ephemeral, status: active}
`;

describe('diffing fleet.yaml against the catalog', () => {
  it('lists adds against an empty catalog, sorted by kind then key', () => {
    const diff = diffFleetFile(parsed(BASE), EMPTY_DESIRED_CATALOG);
    expect(diff.ok && diff.changes.map((change) => `${change.type} ${change.kind} ${change.key}`)).toEqual([
      'add module base', 'add module web', 'add template web', 'add pool burst', 'add assignment n1:web', 'add assignment n2:web',
    ]);
  });

  it('gives no changes when the same file is applied twice', () => {
    const file = parsed(BASE);
    const first = diffFleetFile(file, EMPTY_DESIRED_CATALOG);
    if (!first.ok) throw new Error('expected changes');
    const applied = applyFleetChanges(EMPTY_DESIRED_CATALOG, first.changes);
    expect(diffFleetFile(parsed(BASE), applied)).toEqual({ ok: true, changes: [], kept: [], unchanged: 6, notices: [] });
  });

  it('updates what changed, keeps what the file leaves out unless pruning, and leaves absent sections alone', () => {
    const current = applyAll(parsed(BASE), EMPTY_DESIRED_CATALOG);
    const withExtra = catalogOf({ ...current, assignments: [...current.assignments, assignmentOf({ node: 'n3', module: 'base' }, 'a')] });
    const edited = parsed(`assignments:
  n1:web: {template: web, config: {port: 8080}}
  n2:web: {template: web}
`);
    const kept = diffFleetFile(edited, withExtra);
    expect(kept.ok && kept.changes.map((change) => `${change.type} ${change.key}`)).toEqual(['update n1:web']);
    expect(kept.ok && kept.kept).toEqual([{ kind: 'assignment', key: 'n3:base' }]);
    const pruned = diffFleetFile(edited, withExtra, { prune: true });
    expect(pruned.ok && pruned.changes.map((change) => `${change.type} ${change.key}`)).toEqual(['update n1:web', 'remove n3:base']);
    expect(pruned.ok && pruned.kept).toEqual([]);
  });

  it('names a dependency cycle that a template of the file reaches, at the template', () => {
    const problems = diffProblems(parsed(`modules:
  a: {variety: config, category: {name: c, position: 1}, manifest: {schema_version: 1, dependencies: {requires: [b]}}}
  b: {variety: config, category: {name: c, position: 1}, manifest: {schema_version: 1, dependencies: {requires: [a]}}}
templates:
  loop:
    modules: {a: {}}
`), EMPTY_DESIRED_CATALOG);
    expect(problems).toEqual([{ kind: 'composition', path: 'templates.loop', line: 5, column: 3, message: expect.stringContaining('dependency cycle: a → b → a') }]);
  });

  it('refuses references the outcome would not hold, pointing at them; nothing is partially applied', () => {
    const problems = diffProblems(parsed(`modules:
  base: {variety: config, category: {name: os, position: 1}}
assignments:
  n1:base: {}
  n1:ghost: {}
  n2:base: {template: nowhere}
pools:
  p: {template: nowhere}
`), EMPTY_DESIRED_CATALOG);
    expect(problems.map((problem) => [problem.kind, problem.path, problem.line])).toEqual([
      ['reference', 'assignments.n1:ghost', 5],
      ['reference', 'assignments.n2:base', 6],
      ['reference', 'pools.p', 8],
    ]);
  });

  it("refuses module changes that would stop a template the file does not list from composing", () => {
    const current = catalogOf({ modules: [module('base'), module('web', { requires: ['base'] })], templates: [template('web', ['web'])] });
    const problems = diffProblems(parsed(`modules:
  base: {variety: config, category: {name: os, position: 1}, manifest: {schema_version: 1, dependencies: {requires: [web]}}}
  web: {variety: config, category: {name: apps, position: 2}, manifest: {schema_version: 1, dependencies: {requires: [base]}}}
`), current);
    expect(problems).toEqual([{ kind: 'composition', path: 'modules', line: 1, column: 1, message: expect.stringContaining('stop template web (not in this file) from composing: dependency cycle: base → web → base') }]);
  });

  it('refuses pruning a module that entries the file does not list still use', () => {
    const current = applyAll(parsed(BASE), EMPTY_DESIRED_CATALOG);
    const file = parsed('modules:\n  base: {variety: config, category: {name: os, position: 1}}\n');
    expect(diffFleetFile(file, current)).toMatchObject({ ok: true, changes: [], kept: [{ kind: 'module', key: 'web' }] });
    const diff = diffFleetFile(file, current, { prune: true });
    expect(diff.ok).toBe(false);
    expect(!diff.ok && diff.problems.map((problem) => [problem.path, problem.line, problem.message.replace(/, which.*/, '')])).toEqual([
      ['modules', 1, 'modules: assignments.n1:web (not in this file) names module web'],
      ['modules', 1, 'modules: assignments.n2:web (not in this file) names module web'],
      ['modules', 1, 'modules: the file\'s module changes stop template web (not in this file) from composing: template web names module web'],
    ]);
  });
});

function applyAll(file: FleetFile, current: DesiredCatalog, prune = false): DesiredCatalog {
  const diff = diffFleetFile(file, current, { prune });
  if (!diff.ok) throw new Error(diff.problems.map((problem) => problem.message).join('\n'));
  return applyFleetChanges(current, diff.changes);
}

describe('applying changes', () => {
  it('refuses a change made against another catalog', () => {
    const diff = diffFleetFile(parsed(BASE), EMPTY_DESIRED_CATALOG);
    if (!diff.ok) throw new Error('expected changes');
    const applied = applyFleetChanges(EMPTY_DESIRED_CATALOG, diff.changes);
    expect(() => applyFleetChanges(applied, diff.changes)).toThrow(StaleFleetChangeError);
    const update = diffFleetFile(parsed(BASE.replace('target_size: 2', 'target_size: 3')), applied);
    if (!update.ok) throw new Error('expected changes');
    expect(update.changes).toEqual([expect.objectContaining({ type: 'update', kind: 'pool', key: 'burst' })]);
    const moved = catalogOf({ ...applied, pools: [poolOf({ name: 'burst', template: 'web', target: 1 })] });
    expect(() => applyFleetChanges(moved, update.changes)).toThrow(/does not hold what the change was made against/);
  });
});

// Catalogs for the properties: modules of config variety without dependencies always compose, so
// every generated file is valid and the properties exercise diffing and the YAML form, not composition.
const NAMES = ['base', 'nginx', 'tls', 'db', 'cache.v2'] as const;
const NODES = ['app-01', 'app-02', 'web.example.com'] as const;
const text = fc.constantFrom('', 'yes', 'no', 'null', '~', '1.0', '0x1f', '-', 'a: b', '#x', ' padded ', 'line\nbreak', 'tab\there', 'é✓', '@at', '[x]', "'q'", '"d"');
const configValue = fc.oneof(text, fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).filter((x) => !Object.is(x, -0)));
const config = fc.dictionary(fc.constantFrom('port', 'workers', 'on', 'null', '1', 'a b', 'x.y'), fc.oneof(configValue, fc.array(configValue, { maxLength: 2 }), fc.dictionary(fc.constantFrom('k', 'yes'), configValue, { maxKeys: 2 })), { maxKeys: 3 });
const lines = fc.subarray(['/etc/**', '/var/lib/x', '/opt/app dir/*', '/srv/#weird'], { maxLength: 2 });

const moduleArbitrary = (name: string) =>
  fc.record({
    priority: fc.integer({ min: 0, max: 999 }),
    position: fc.integer({ min: 0, max: 3 }),
    config,
    immutable: fc.boolean(),
    rebootRequired: fc.boolean(),
    initStart: fc.option(fc.constantFrom('systemctl start x', 'echo "hi: there"'), { nil: undefined }),
    provides: fc.subarray(['http', 'tls-terminator'], { maxLength: 1 }),
    services: fc.subarray([{ name: 'web', ports: [80, 443] }, { name: 'worker', command: 'run --fast' }], { maxLength: 2 }),
    capabilities: fc.subarray(['CAP_NET_ADMIN', 'CAP_SYS_TIME'], { maxLength: 2 }),
    privileged: fc.boolean(),
    mask: lines,
    fileSpec: lines,
  }).map((sketch) =>
    moduleOf({
      name, variety: 'config', category: { name: `cat-${sketch.position}`, position: sketch.position }, priority: sketch.priority, config: sketch.config,
      immutable: sketch.immutable, rebootRequired: sketch.rebootRequired, ...(sketch.initStart === undefined ? {} : { initStart: sketch.initStart }),
      manifest: { schema_version: 1, dependencies: { provides: sketch.provides }, services: sketch.services, security: { capabilities: sketch.capabilities, privileged: sketch.privileged } },
      mask: sketch.mask, fileSpec: sketch.fileSpec,
    }),
  );

const catalogArbitrary: fc.Arbitrary<DesiredCatalog> = fc.subarray([...NAMES], { minLength: 1 }).chain((moduleNames) =>
  fc.record({
    modules: fc.tuple(...moduleNames.map(moduleArbitrary)),
    templates: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('web', 'edge', 'batch'),
        modules: fc.subarray(moduleNames).chain((chosen) =>
          fc.tuple(...chosen.map((name) => fc.record({ module: fc.constant(name), enabled: fc.boolean(), priority: fc.integer({ min: 0, max: 5 }), config, override: fc.option(fc.record({ replace: fc.option(fc.subarray(['http']), { nil: undefined }), exclude: fc.subarray(['tls']) }), { nil: undefined }) }))),
        ),
      }),
      { selector: (entry) => entry.name, maxLength: 3 },
    ),
    assignments: fc.uniqueArray(fc.record({ node: fc.constantFrom(...NODES), module: fc.constantFrom(...moduleNames), config, enabled: fc.boolean() }), { selector: (entry) => `${entry.node}:${entry.module}`, maxLength: 6 }),
  }).chain((parts) => {
    const templates = parts.templates.map((entry) => templateOf({ name: entry.name, modules: entry.modules.map(({ override, ...rest }) => (override === undefined ? rest : { ...rest, recommendsOverride: override })) }));
    const templateNames = templates.map((entry) => entry.name);
    return fc.record({
      assignments: fc.tuple(...parts.assignments.map((entry) => fc.option(fc.constantFrom(...(templateNames.length > 0 ? templateNames : ['unused'])), { nil: undefined }).map((chosen) => assignmentOf(templateNames.length > 0 && chosen !== undefined ? { ...entry, template: chosen } : entry, 'assignment')))),
      pools: templateNames.length === 0 ? fc.constant([]) : fc.uniqueArray(fc.record({ name: fc.constantFrom('burst', 'ci'), template: fc.constantFrom(...templateNames), target: fc.integer({ min: 0, max: 3 }), lifecycle: fc.constantFrom('ephemeral', 'spot') }).map((pool) => poolOf({ ...pool, max: 5 })), { selector: (pool) => pool.name, maxLength: 2 }),
    }).map(({ assignments, pools }) => sorted({ ...EMPTY_DESIRED_CATALOG, modules: parts.modules, templates, assignments, pools }));
  }),
);

/** Lists in key order, as a DesiredCatalog holds them. */
function sorted(catalog: DesiredCatalog): DesiredCatalog {
  const byName = <T extends { readonly name: string }>(list: readonly T[]) => [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byKey = (a: { node: string; module: string }, b: { node: string; module: string }) => (a.node === b.node ? (a.module < b.module ? -1 : 1) : a.node < b.node ? -1 : 1);
  return { ...catalog, modules: byName(catalog.modules), templates: byName(catalog.templates), pools: byName(catalog.pools), assignments: [...catalog.assignments].sort(byKey) };
}

function fileOf(catalog: DesiredCatalog): FleetFile {
  return { modules: catalog.modules, templates: catalog.templates, assignments: catalog.assignments, pools: catalog.pools, providerConfigs: [], notices: [], positions: { keys: new Map(), values: new Map(), lineStarts: [] } };
}

describe('exporting fleet.yaml', () => {
  it('writes a config shared by several entries out each time, never as an alias', () => {
    const shared = { workers: 4, tls: { on: true } };
    const catalog = catalogOf({
      modules: [moduleOf({ name: 'nginx', variety: 'config', category: { name: 'web', position: 1 }, config: shared })],
      assignments: ['app-01', 'app-02'].map((node) => assignmentOf({ node, module: 'nginx', config: shared }, 'a')),
    });
    const text = exportFleetFile(catalog);
    expect(text).not.toMatch(/[&*]a\d/);
    expect(parsed(text).assignments).toEqual(catalog.assignments);
  });
});

describe('fleet.yaml properties', () => {
  it('applying a diff and diffing again gives no changes, with or without prune', () => {
    fc.assert(
      fc.property(catalogArbitrary, catalogArbitrary, fc.boolean(), (current, wanted, prune) => {
        const file = fileOf(wanted);
        const diff = diffFleetFile(file, current, { prune });
        if (!diff.ok) throw new Error(diff.problems.map((problem) => problem.message).join('\n'));
        const applied = applyFleetChanges(current, diff.changes);
        const again = diffFleetFile(file, applied, { prune });
        expect(again.ok && again.changes).toEqual([]);
        // Each list the file has ends up as the file says, plus (without prune) what it left out.
        for (const assignment of wanted.assignments) expect(applied.assignments).toContainEqual(assignment);
        if (prune) expect({ ...applied, versions: [], trust: [] }).toEqual(wanted);
      }),
      { numRuns: 150 },
    );
  });

  it('parsing an export gives back the same catalog', () => {
    fc.assert(
      fc.property(catalogArbitrary, (catalog) => {
        const file = parsed(exportFleetFile(catalog));
        expect({ modules: file.modules, templates: file.templates, assignments: file.assignments, pools: file.pools }).toEqual({
          modules: catalog.modules, templates: catalog.templates, assignments: catalog.assignments, pools: catalog.pools,
        });
        expect(diffFleetFile(file, catalog, { prune: true })).toMatchObject({ ok: true, changes: [], kept: [] });
      }),
      { numRuns: 150 },
    );
  });
});
