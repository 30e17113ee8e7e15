import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../agent/api-client.ts';
import type { CatalogAnswer } from '../../agent/catalog-command.ts';
import { NodeProcess, cli } from '../helpers/cli-fleet.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** fleet.yaml in the original's shape (templates, modules, assignments keyed node:module, pools). */
const FLEET_YAML = `templates:
  web-server:
    modules:
      nginx-public: {priority: 5}
modules:
  tls:
    variety: config
    category: {name: base, position: 1}
    file_spec: ["/etc/ssl/**"]
  nginx-public:
    variety: config
    category: {name: web, position: 2}
    priority: 50
    config: {nginx_workers: 4}
    manifest: {schema_version: 1, dependencies: {requires: [tls]}}
assignments:
  app-01:nginx-public: {template: web-server}
  app-03:nginx-public: {enabled: false}
pools:
  burst: {template: web-server, target_size: 2, min_size: 0, max_size: 5, lifecycle_class: ephemeral, status: active}
`;

const ADDED = [
  { type: 'add', kind: 'module', key: 'nginx-public' },
  { type: 'add', kind: 'module', key: 'tls' },
  { type: 'add', kind: 'template', key: 'web-server' },
  { type: 'add', kind: 'pool', key: 'burst' },
  { type: 'add', kind: 'assignment', key: 'app-01:nginx-public' },
  { type: 'add', kind: 'assignment', key: 'app-03:nginx-public' },
];

/**
 * `fleet apply` and `fleet export` against one real node process, driven through the CLI.
 * Tests run in order and share the node's catalog.
 */
describe('fleet apply and fleet export through the CLI', () => {
  let root: { path: string; remove: () => Promise<void> };
  let node: NodeProcess;
  let client: ApiClient;
  let api: string[];

  const file = async (name: string, text: string): Promise<string> => {
    const path = join(root.path, name);
    await writeFile(path, text);
    return path;
  };
  const catalog = (): Promise<CatalogAnswer> => client.get<CatalogAnswer>('/api/v1/catalog');
  const keys = (answer: CatalogAnswer): string[] => [
    ...answer.catalog.modules.map((m) => `module ${m.name}`),
    ...answer.catalog.templates.map((t) => `template ${t.name}`),
    ...answer.catalog.pools.map((p) => `pool ${p.name}`),
    ...answer.catalog.assignments.map((a) => `assignment ${a.node}:${a.module}`),
  ];

  beforeAll(async () => {
    root = await tempDir('fc-fleet-apply-');
    const init = await cli(['fleet', 'init', '--data', join(root.path, 'n')]);
    expect(init.code).toBe(0);
    const operatorKey = (JSON.parse(init.stdout) as { operatorKey: string }).operatorKey;
    node = await NodeProcess.start(join(root.path, 'n'));
    client = await node.client(operatorKey);
    api = ['--api', node.ready.api, '--key', operatorKey];
  }, 60_000);

  afterAll(async () => {
    await node?.kill9();
    await root?.remove();
  });

  it('refuses a malformed file with FILE:LINE:COL for each problem and applies none of it', async () => {
    // Valid entries beside the broken ones: none of them may reach the catalog.
    const broken = await file('broken.yaml', `${FLEET_YAML.replace('priority: 50', 'priority: 5000')}  burst: {template: web-server, target_size: 1, min_size: 0, max_size: 1, lifecycle_class: ephemeral, status: active}\n`);
    const refused = await cli(['fleet', 'apply', broken, ...api]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${broken}:13:15: modules.nginx-public.priority: `);
    expect(refused.stderr).toMatch(new RegExp(`${broken}:21:3: pools\\.burst: duplicate key "burst" \\(first at line 20, column 3\\)`));
    expect(refused.stderr).toMatch(/2 problems; nothing was applied/);
    expect(refused.stdout).toBe('');
    const missing = await cli(['fleet', 'apply', join(root.path, 'absent.yaml'), ...api]);
    expect([missing.code, missing.stderr]).toEqual([1, `powernode: ${join(root.path, 'absent.yaml')}: no such file\n`]);
    expect((await catalog()).entries).toBe(0);
  });

  it('lists the changes on a dry run and sends nothing', async () => {
    const dryRun = await cli(['fleet', 'apply', await file('fleet.yaml', FLEET_YAML), '--dry-run', '--json', ...api]);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toBe(`${JSON.stringify({ changes: ADDED, dryRun: true })}\n`);
    const after = await catalog();
    expect([after.entries, keys(after)]).toEqual([0, []]);
  });

  it('applies the file in one request, then applying it again changes nothing', async () => {
    const path = join(root.path, 'fleet.yaml');
    const applied = await cli(['fleet', 'apply', path, '--json', ...api]);
    expect([applied.code, applied.stdout]).toEqual([0, `${JSON.stringify({ changes: ADDED })}\n`]);
    const held = await catalog();
    // All six changes went in one request as one signed entry.
    expect(held.entries).toBe(1);
    expect(keys(held).sort()).toEqual(ADDED.map((change) => `${change.kind} ${change.key}`).sort());
    expect(held.catalog.modules.find((m) => m.name === 'nginx-public')?.config).toEqual({ nginx_workers: 4 });
    expect(held.catalog.assignments.find((a) => a.node === 'app-03')?.enabled).toBe(false);
    const again = await cli(['fleet', 'apply', path, '--json', ...api]);
    expect([again.code, again.stdout]).toEqual([0, '{"changes":[]}\n']);
    expect((await catalog()).entries).toBe(1);
  });

  it('exports the catalog as a file that applies with no changes, and does not overwrite a file', async () => {
    const out = join(root.path, 'export.yaml');
    const exported = await cli(['fleet', 'export', '--out', out, ...api]);
    expect([exported.code, exported.stdout]).toEqual([0, `wrote 2 modules, 1 templates, 2 assignments and 1 pools to ${out}\n`]);
    const text = await readFile(out, 'utf8');
    expect(text).toMatch(/^assignments:\n {2}app-01:nginx-public: \{ template: web-server \}\n {2}app-03:nginx-public: \{ enabled: false \}$/m);
    const reapplied = await cli(['fleet', 'apply', out, '--prune', '--json', ...api]);
    expect([reapplied.code, reapplied.stdout]).toEqual([0, '{"changes":[]}\n']);
    const overwrite = await cli(['fleet', 'export', '--out', out, ...api]);
    expect([overwrite.code, overwrite.stderr]).toEqual([2, expect.stringContaining(`${out} already exists: choose another --out`)]);
    expect(await readFile(out, 'utf8')).toBe(text);
  });

  it('keeps an entry the file no longer names unless --prune, which removes it', async () => {
    const smaller = await file('smaller.yaml', `${FLEET_YAML.replace('  app-03:nginx-public: {enabled: false}\n', '')}provider_configs:\n  hetzner: {token: secret}\n`);
    const kept = await cli(['fleet', 'apply', smaller, ...api]);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toBe('nothing to change: the catalog already says this\n');
    expect(kept.stderr).toContain('kept 1 entry the file does not name (--prune removes them):\n  assignment app-03:nginx-public\n');
    expect(kept.stderr).toContain(`${smaller}:21:3: notice: provider_configs.hetzner: read and not applied`);
    expect(keys(await catalog())).toContain('assignment app-03:nginx-public');
    const pruned = await cli(['fleet', 'apply', smaller, '--prune', '--json', ...api]);
    expect(pruned.code).toBe(0);
    expect(JSON.parse(pruned.stdout)).toEqual({
      changes: [{ type: 'remove', kind: 'assignment', key: 'app-03:nginx-public' }],
      notices: [expect.objectContaining({ path: 'provider_configs.hetzner', line: 21, column: 3 })],
    });
    const after = await catalog();
    expect(keys(after)).not.toContain('assignment app-03:nginx-public');
    expect(keys(after)).toContain('assignment app-01:nginx-public');
  });
});
