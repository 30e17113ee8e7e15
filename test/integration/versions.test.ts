import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess, cli, eventually } from '../helpers/cli-fleet.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const v1 = `sha256:${'1'.repeat(64)}`;
const v2 = `sha256:${'2'.repeat(64)}`;

/**
 * Module versions through the CLI against one real node process that reports, from its
 * `modules.json`, running web's version 1 digest (docs/CATALOG.md §Versions, §Promotion evidence).
 */
describe('module versions, trust and promotion evidence through the CLI', () => {
  let root: { path: string; remove: () => Promise<void> };
  let node: NodeProcess;
  let api: string[];
  let publisher: string;
  let publisherKey: string;

  beforeAll(async () => {
    root = await tempDir('fc-versions-');
    const data = join(root.path, 'n');
    const init = await cli(['fleet', 'init', '--data', data]);
    expect(init.code).toBe(0);
    const operatorKey = (JSON.parse(init.stdout) as { operatorKey: string }).operatorKey;
    await writeFile(join(data, 'modules.json'), JSON.stringify({ modules: { web: v1 } }));
    node = await NodeProcess.start(data);
    api = ['--api', node.ready.api, '--key', operatorKey];
    const moduleFile = join(root.path, 'web.json');
    await writeFile(moduleFile, JSON.stringify({ name: 'web', variety: 'instance', category: { name: 'web', position: 5 } }));
    expect((await cli(['module', 'put', ...api, moduleFile])).code).toBe(0);
    publisherKey = join(root.path, 'publisher.key');
    const created = await cli(['module', 'publisher', 'create', '--name', 'ci', '--out', publisherKey, '--json']);
    expect(created.code).toBe(0);
    publisher = (JSON.parse(created.stdout) as { publicKey: string }).publicKey;
  }, 60_000);

  afterAll(async () => {
    await node?.kill9();
    await root?.remove();
  });

  it('publishes signed versions and stages them; refuses a move the lifecycle does not allow', async () => {
    for (const [number, digest] of [['1', v1], ['2', v2]] as const) {
      const published = await cli(['module', 'version', 'publish', 'web', '--number', number, '--artifact', `amd64=${digest}`, '--publisher-key', publisherKey, ...api]);
      expect(published.code, published.stderr).toBe(0);
    }
    const again = await cli(['module', 'version', 'publish', 'web', '--number', '1', '--artifact', `amd64=${v2}`, '--publisher-key', publisherKey, ...api]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/web@1 is already published: versions never change; publish web@3/);
    const skip = await cli(['module', 'version', 'promote', 'web@1', 'live', ...api]);
    expect(skip.code).not.toBe(0);
    expect(skip.stderr).toMatch(/from built it can move to: staging, retired/);
    for (const key of ['web@1', 'web@2']) expect((await cli(['module', 'version', 'promote', key, 'staging', ...api])).code).toBe(0);
    const untrusted = await cli(['module', 'version', 'promote', 'web@1', 'blessed', ...api]);
    expect(untrusted.stderr).toMatch(/web has no trust policy/);
  });

  it('refuses a bad promotion threshold as usage', async () => {
    const half = await cli(['module', 'trust', 'web', '--publisher', publisher, '--promotion-instances', '1', ...api]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--promotion-instances and --promotion-dwell go together/);
    const zero = await cli(['module', 'trust', 'web', '--publisher', publisher, '--promotion-instances', '0', '--promotion-dwell', '0s', ...api]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--promotion-instances takes a whole number from 1 to 100, not "0"/);
    const long = await cli(['module', 'trust', 'web', '--publisher', publisher, '--promotion-instances', '3', '--promotion-dwell', '31d', ...api]);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/--promotion-dwell is at most 30d/);
  });

  it('blesses only a version the fleet runs, by the thresholds of its trust policy', async () => {
    expect((await cli(['module', 'trust', 'web', '--publisher', publisher, '--promotion-instances', '1', '--promotion-dwell', '0s', ...api])).code).toBe(0);
    // Naming the publishers again without the flags keeps the lowered thresholds.
    expect((await cli(['module', 'trust', 'web', '--publisher', publisher, ...api])).code).toBe(0);
    // Version 2 runs nowhere: the node refuses, naming why and where to look.
    const refused = await cli(['module', 'version', 'promote', 'web@2', 'blessed', ...api]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/web@2 cannot be blessed yet: 0 instances run this version; 1 are required \(powernode module version evidence web@2\)/);
    // Version 1 runs here once the instance reconciler records this instance running.
    const evidence = await eventually(async () => {
      const run = await cli(['module', 'version', 'evidence', 'web@1', ...api, '--json']);
      const answer = JSON.parse(run.stdout) as { verdict: { eligible: boolean }; observations: Array<{ instance: string; state: string; digest: string }> };
      return answer.verdict.eligible ? answer : undefined;
    }, 15_000, 'web@1 eligible');
    expect(evidence.observations).toEqual([expect.objectContaining({ instance: node.ready.peerId, state: 'running', digest: v1 })]);
    expect(evidence).toMatchObject({ thresholds: { requiredCount: 1, dwellMs: 0 } });
    const text = await cli(['module', 'version', 'evidence', 'web@2', ...api]);
    expect(text.stdout).toMatch(/web@2 \(staging\): may not be blessed yet: 0 instances run this version/);
    expect(text.stdout).toMatch(/no member reports running it/);
    const blessed = await cli(['module', 'version', 'promote', 'web@1', 'blessed', ...api]);
    expect(blessed.code, blessed.stderr).toBe(0);
    const list = await cli(['module', 'version', 'list', 'web', ...api, '--json']);
    expect((JSON.parse(list.stdout) as { versions: Array<{ number: number; state: string }> }).versions.map((v) => [v.number, v.state])).toEqual([[1, 'blessed'], [2, 'staging']]);
    const status = await cli(['status', ...api, '--json']);
    expect((JSON.parse(status.stdout) as { modules: unknown }).modules).toEqual({ modules: { web: v1 }, inventoryErrors: 0, problem: null });
  });
});
