import { flushSync } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeApiError, explain } from '../src/lib/api.ts';
import CatalogView from '../src/lib/components/CatalogView.svelte';
import InstanceList from '../src/lib/components/InstanceList.svelte';
import TaskList from '../src/lib/components/TaskList.svelte';
import { actorText, docsVersion } from '../src/lib/format.ts';
import { Reader } from '../src/lib/reader.svelte.ts';
import type { CatalogAnswer, InstanceInfo, TaskStatus, TemplatePreview } from '../src/lib/types.ts';
import { member, status } from './fixtures.ts';
import { click, render, settle } from './render.ts';

let view: ReturnType<typeof render> | undefined;
afterEach(() => {
  view?.destroy();
  view = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const q = (selector: string): Element | null => view?.target.querySelector(selector) ?? null;
const qa = (selector: string): Element[] => [...(view?.target.querySelectorAll(selector) ?? [])];
const text = (selector: string): string => q(selector)?.textContent?.replace(/\s+/g, ' ').trim() ?? '';
const BASE = 'http://127.0.0.1:7420';
const OPERATOR = 'Qx3vT0mJ8a9-kLpR2sUvWxYz0123456789abcdefghi';

/** A load function that answers `value` (or what `next` gives) and counts its calls. */
function loader<T>(value: T | (() => T | Promise<T>)) {
  const calls = { count: 0 };
  const load = async (): Promise<T> => {
    calls.count += 1;
    return typeof value === 'function' ? (value as () => T | Promise<T>)() : value;
  };
  return { calls, load };
}

const t0 = Date.now() - 60_000;
const alpha = member(0, { name: 'alpha' });
const bravo = member(1, { name: 'bravo', hostname: 'bravo.lan' });
const members = [alpha, bravo];

function task(id: string, overrides: Partial<TaskStatus> = {}): TaskStatus {
  return { id, node: bravo.peerId, command: '/bin/echo', args: ['hi'], timeoutMs: 600_000, requestedAt: t0, state: 'pending', cancelRequested: false, ...overrides };
}

const TASKS: TaskStatus[] = [
  task('t-old', {
    requestedAt: t0,
    state: 'complete',
    lease: { leaseId: 'l-1', node: bravo.peerId, epoch: 2, until: t0 + 60_000, at: t0 + 10 },
    run: { leaseId: 'l-1', epoch: 2, state: 'complete', startedAt: t0 + 20, endedAt: t0 + 1_520, exitCode: 0, output: 'hi\n', pid: 4242 },
  }),
  task('t-new', {
    node: alpha.peerId,
    command: '/bin/sh',
    args: ['-c', 'echo "<script>window.pwned = 1</script><b>bold</b>"; exit 3'],
    requestedAt: t0 + 30_000,
    state: 'failed',
    lease: { leaseId: 'l-2', node: alpha.peerId, epoch: 3, until: t0 + 90_000, at: t0 + 30_010 },
    run: { leaseId: 'l-2', epoch: 3, state: 'failed', startedAt: t0 + 30_020, endedAt: t0 + 30_120, exitCode: 3, output: '<script>window.pwned = 1</script><b>bold</b>\n', reason: 'exited with code 3' },
  }),
  task('t-mid', { requestedAt: t0 + 10_000, state: 'pending', node: member(7).peerId }),
];

describe('reading on an interval (Reader)', () => {
  it('reads at start, again every interval, and not once stopped', async () => {
    const { calls, load } = loader(1);
    const reader = new Reader(load, { intervalMs: 20 });
    reader.start();
    await settle();
    expect(reader.value).toBe(1);
    await sleep(90);
    expect(calls.count).toBeGreaterThanOrEqual(3);
    reader.stop();
    const stoppedAt = calls.count;
    await sleep(80);
    expect(calls.count).toBe(stoppedAt);
  });

  it('follows a read in flight with one more, never two at once, and keeps the last value when a read fails', async () => {
    let inFlight = 0;
    let most = 0;
    let fail = false;
    let reads = 0;
    const { calls, load } = loader(async (): Promise<number> => {
      reads += 1;
      inFlight += 1;
      most = Math.max(most, inFlight);
      await sleep(10);
      inFlight -= 1;
      if (fail) throw new NodeApiError(0, explain(0, '', BASE));
      return reads;
    });
    const reader = new Reader(load);
    reader.start();
    for (let i = 0; i < 10; i++) reader.refresh();
    await sleep(60);
    expect(calls.count).toBe(2);
    expect(most).toBe(1);
    fail = true;
    reader.refresh();
    await sleep(30);
    expect(reader.value).toBe(2);
    expect(reader.error).toBe('Cannot reach the node at http://127.0.0.1:7420. Is it running, and is the address right?');
    reader.stop();
  });
});

describe('the tasks view', () => {
  it('lists tasks newest first with their state, the node by name, and counts per state', async () => {
    view = render(TaskList, { load: loader({ tasks: TASKS }).load, members });
    await settle();
    const rows = qa('[data-testid=task]');
    expect(rows.map((r) => r.getAttribute('data-id'))).toEqual(['t-new', 't-mid', 't-old']);
    expect(rows.map((r) => r.querySelector('[data-testid=task-state]')?.textContent)).toEqual(['failed', 'pending', 'complete']);
    expect(rows[0]?.textContent).toContain('alpha');
    expect(rows[2]?.textContent).toContain('bravo');
    expect(rows[1]?.textContent).toContain('12D3KooW…'); // not a member: its id, shortened
    expect(text('[data-testid=task-summary]')).toMatch(/^3 tasks, read/);
    const options = [...(q('[data-testid=task-state-filter]') as HTMLSelectElement).options].map((o) => o.textContent);
    expect(options).toContain('failed (1)');
    expect(options).toContain('running (0)');
  });

  it('says when the node has more tasks than it was asked for', async () => {
    view = render(TaskList, { load: loader({ tasks: TASKS, total: 4_711 }).load, members });
    await settle();
    expect(text('[data-testid=task-summary]')).toMatch(/^3 tasks \(the newest of 4711\), read/);
  });

  it('filters by state and says when none is in it', async () => {
    view = render(TaskList, { load: loader({ tasks: TASKS }).load, members });
    await settle();
    const select = q('[data-testid=task-state-filter]') as HTMLSelectElement;
    select.value = 'complete';
    select.dispatchEvent(new Event('change', { bubbles: true }));
    flushSync();
    expect(qa('[data-testid=task]').map((r) => r.getAttribute('data-id'))).toEqual(['t-old']);
    expect(text('[data-testid=task-summary]')).toMatch(/^1 of 3 tasks/);
    select.value = 'running';
    select.dispatchEvent(new Event('change', { bubbles: true }));
    flushSync();
    expect(qa('[data-testid=task]')).toHaveLength(0);
    expect(text('[data-testid=tasks-none-match]')).toBe('No task is running.');
  });

  it('shows a task\'s command, lease, timings, exit code, reason and output, the output as text', async () => {
    view = render(TaskList, { load: loader({ tasks: TASKS }).load, members });
    await settle();
    click(q('[data-testid=task][data-id=t-new]'));
    const detail = q('[data-testid=task-detail]');
    expect(detail?.getAttribute('data-id')).toBe('t-new');
    expect(text('[data-testid=task-command]')).toBe(`/bin/sh -c 'echo "<script>window.pwned = 1</script><b>bold</b>"; exit 3'`);
    expect(text('[data-testid=task-lease]')).toContain('l-2, epoch 3');
    expect(text('[data-testid=task-exit]')).toBe('3');
    expect(text('[data-testid=task-reason]')).toBe('exited with code 3');
    expect(text('[data-testid=task-ended]')).toContain('after 100 ms');
    const output = q('[data-testid=task-output]') as HTMLPreElement;
    expect(output.tagName).toBe('PRE');
    expect(output.textContent).toBe('<script>window.pwned = 1</script><b>bold</b>\n');
    expect(output.children).toHaveLength(0);
    expect(view!.target.querySelector('script, b')).toBeNull();
    expect((globalThis as { pwned?: number }).pwned).toBeUndefined();
    // Another task replaces it; the close button closes it.
    click(q('[data-testid=task][data-id=t-old]'));
    expect(text('[data-testid=task-output]')).toBe('hi');
    expect(text('[data-testid=task-exit]')).toBe('0');
    click(q('[data-testid=task-detail] button'));
    expect(q('[data-testid=task-detail]')).toBeNull();
  });

  it('says there are no tasks yet, and how to ask for one', async () => {
    view = render(TaskList, { load: loader({ tasks: [] }).load, members });
    await settle();
    expect(text('[data-testid=tasks-empty]')).toContain('powernode task create --node NODE');
  });

  it('shows the node\'s refusal, and keeps the last list when a later read fails', async () => {
    const refused = async (): Promise<never> => {
      throw new NodeApiError(404, explain(404, 'no such endpoint: GET /api/v1/tasks', BASE));
    };
    view = render(TaskList, { load: refused, members });
    await settle();
    expect(text('[data-testid=task-error]')).toBe('The node at http://127.0.0.1:7420 does not offer this yet (no such endpoint: GET /api/v1/tasks): it may run an older powernode.');
    view.destroy();
    let fail = false;
    const { load } = loader(() => {
      if (fail) throw new NodeApiError(0, explain(0, '', BASE));
      return { tasks: TASKS };
    });
    view = render(TaskList, { load, members, intervalMs: 15 });
    await settle();
    fail = true;
    await sleep(60);
    flushSync();
    expect(text('[data-testid=task-error]')).toMatch(/^Could not read the tasks again \(showing the last read\): Cannot reach the node/);
    expect(qa('[data-testid=task]')).toHaveLength(3);
  });

  it('reads again on its interval while open, shows the change, and stops reading once closed', async () => {
    let current: TaskStatus[] = [task('t-1', { state: 'running' })];
    const { calls, load } = loader(() => ({ tasks: current }));
    view = render(TaskList, { load, members, intervalMs: 20 });
    await settle();
    expect(q('[data-testid=task]')?.getAttribute('data-state')).toBe('running');
    current = [task('t-1', { state: 'complete' })];
    await sleep(60);
    flushSync();
    expect(q('[data-testid=task]')?.getAttribute('data-state')).toBe('complete');
    view.destroy();
    view = undefined;
    const closedAt = calls.count;
    await sleep(70);
    expect(calls.count).toBe(closedAt);
  });
});

const OLD_REAPER = member(9).peerId;
const INSTANCES: InstanceInfo[] = [
  {
    peerId: alpha.peerId,
    name: 'alpha',
    observed: 'alive',
    state: 'running',
    since: t0 + 5_000,
    epoch: 3,
    transitions: [
      { from: 'pending', to: 'running', event: 'mark_running', by: OLD_REAPER, epoch: 1, reason: 'alive', at: t0 },
      { from: 'running', to: 'stopping', event: 'stop', by: OPERATOR, epoch: 2, reason: 'maintenance', at: t0 + 1_000 },
      { from: 'stopping', to: 'stopped', event: 'mark_stopped', by: bravo.peerId, epoch: 2, reason: 'left the fleet', at: t0 + 2_000 },
      { from: 'stopped', to: 'starting', event: 'start', by: bravo.peerId, epoch: 3, reason: 'came back', at: t0 + 5_000 },
      { from: 'starting', to: 'running', event: 'mark_running', by: bravo.peerId, epoch: 3, reason: 'alive', at: t0 + 5_000 },
    ],
  },
  { peerId: bravo.peerId, name: 'bravo', observed: 'dead', state: 'error', since: t0 + 40_000, epoch: 3, transitions: [{ from: 'running', to: 'error', event: 'mark_errored', by: alpha.peerId, epoch: 3, reason: 'silent for 60 s', at: t0 + 40_000 }] },
  { peerId: OLD_REAPER, name: null, observed: 'gone', state: 'pending', since: null, epoch: null, transitions: [] },
];

describe('the instances view', () => {
  it('names who made a transition: a member by name, another node by its id, an operator by its key', () => {
    const names = new Map([[alpha.peerId, 'alpha']]);
    expect(actorText(alpha.peerId, names)).toBe('alpha');
    expect(actorText(OLD_REAPER, names)).toBe(`${OLD_REAPER.slice(0, 8)}…${OLD_REAPER.slice(-6)}`);
    expect(actorText(OPERATOR, names)).toBe('operator Qx3vT0mJ');
  });

  it('lists each member\'s lifecycle, and its transitions newest first on asking', async () => {
    view = render(InstanceList, { load: loader({ instances: INSTANCES }).load, members });
    await settle();
    const rows = qa('[data-testid=instance]');
    expect(rows.map((r) => [r.querySelector('a')?.textContent, r.getAttribute('data-state'), r.querySelector('[data-testid=instance-observed]')?.textContent])).toEqual([
      ['alpha', 'running', 'alive'],
      ['bravo', 'error', 'dead'],
      [`${OLD_REAPER.slice(0, 8)}…${OLD_REAPER.slice(-6)}`, 'pending', 'gone'],
    ]);
    expect(rows[1]?.textContent).toContain('mark_errored by alpha: silent for 60 s');
    click(rows[0]!.querySelector('[data-testid=instance-history]'));
    const transitions = qa('[data-testid=transition]');
    expect(transitions.map((t) => t.getAttribute('data-event'))).toEqual(['mark_running', 'start', 'mark_stopped', 'stop', 'mark_running']);
    expect(transitions.map((t) => t.querySelector('[data-testid=transition-by]')?.textContent)).toEqual(['bravo', 'bravo', 'bravo', 'operator Qx3vT0mJ', `${OLD_REAPER.slice(0, 8)}…${OLD_REAPER.slice(-6)}`]);
    expect(transitions[3]?.textContent).toContain('maintenance');
  });

  it('shows one machine\'s lifecycle on its node page', async () => {
    view = render(InstanceList, { load: loader({ instances: INSTANCES }).load, members, only: bravo.peerId });
    await settle();
    expect(qa('[data-testid=instance]')).toHaveLength(1);
    expect(text('[data-testid=instance-state]')).toBe('error');
    expect(qa('[data-testid=transition]')).toHaveLength(1);
    view.destroy();
    view = render(InstanceList, { load: loader({ instances: INSTANCES }).load, members, only: member(5).peerId });
    await settle();
    expect(text('[data-testid=instance-none]')).toContain('No lifecycle recorded');
  });

  it('says so when there are none, or when the node refused', async () => {
    view = render(InstanceList, { load: loader({ instances: [] }).load, members });
    await settle();
    expect(text('[data-testid=instances-empty]')).toContain('No instances');
    view.destroy();
    view = render(InstanceList, { load: async () => Promise.reject(new NodeApiError(401, explain(401, 'that operator key was revoked by the fleet root key', BASE))), members });
    await settle();
    expect(text('[data-testid=instances-error]')).toMatch(/revoked by the fleet root key/);
  });

  it('reads again when the documents its records live in change, not otherwise', async () => {
    const { calls, load } = loader({ instances: INSTANCES });
    const props = $state({ load, members, version: 'a', intervalMs: 60_000 });
    view = render(InstanceList, props);
    await settle();
    expect(calls.count).toBe(1);
    props.members = [...members];
    await settle();
    expect(calls.count).toBe(1);
    props.version = 'b';
    await settle();
    expect(calls.count).toBe(2);
  });

  it('keys the read on task documents and member states', () => {
    const s = status(members, { docs: [{ id: 'fleet', digest: '1' }, { id: `tasks/${alpha.peerId}`, digest: '2' }] });
    const version = docsVersion(s, (id) => id.startsWith('tasks/'), true);
    expect(version).toBe(`tasks/${alpha.peerId}=2,${alpha.peerId}:alive,${bravo.peerId}:alive`);
    expect(docsVersion({ ...s, members: [alpha, { ...bravo, state: 'dead' }] }, (id) => id.startsWith('tasks/'), true)).not.toBe(version);
    expect(docsVersion({ ...s, docs: [{ id: 'fleet', digest: '9' }, ...s.docs.slice(1)] }, (id) => id.startsWith('tasks/'), true)).toBe(version);
  });
});

const CATALOG: CatalogAnswer = {
  catalog: {
    modules: [
      { name: 'base', variety: 'config', category: { name: 'os', position: 1 }, priority: 10, immutable: true, rebootRequired: false },
      { name: 'nginx', variety: 'instance', category: { name: 'web', position: 5 }, priority: 500, immutable: false, rebootRequired: false },
      { name: 'nginx-tls', variety: 'config', category: { name: 'web', position: 5 }, priority: 600, parent: 'nginx', immutable: false, rebootRequired: true },
    ],
    templates: [
      { name: 'broken', modules: [{ module: 'ghost', enabled: true, priority: 1 }] },
      { name: 'web', modules: [{ module: 'nginx', enabled: true, priority: 100 }, { module: 'nginx-tls', enabled: false, priority: 50 }] },
    ],
    assignments: [
      { node: alpha.peerId, module: 'base', template: 'web', enabled: true },
      { node: alpha.peerId, module: 'nginx', template: 'web', enabled: true },
      { node: 'bravo.lan', module: 'base', enabled: true },
      { node: 'future-box', module: 'base', template: 'web', enabled: false },
    ],
    pools: [{ name: 'warm-web', template: 'web', target: 2, min: 1, max: 4, lifecycle: 'ephemeral', status: 'active' }],
    versions: [
      { module: 'nginx', number: 1, state: 'retired', artifacts: { amd64: { digest: `sha256:${'a'.repeat(64)}` } } },
      { module: 'nginx', number: 2, state: 'live', artifacts: { amd64: { digest: `sha256:${'b'.repeat(64)}` }, arm64: { digest: `sha256:${'c'.repeat(64)}` } }, signature: { publicKey: OPERATOR, signature: 's'.repeat(86) } },
    ],
    trust: [{ module: 'nginx', publishers: [OPERATOR] }],
  },
  entries: 7,
  skipped: [{ entry: 'e'.repeat(86), index: 0, reason: 'version "nginx"@1 cannot move from retired to live' }],
};

const PREVIEW: TemplatePreview = {
  template: 'web',
  closure: [
    { module: 'nginx', variety: 'instance', category: 'web', effectivePriority: 5500, explicit: true, requiredBy: [] },
    { module: 'base', variety: 'config', category: 'os', effectivePriority: 1010, explicit: false, requiredBy: ['nginx'] },
  ],
  conflicts: [],
  warnings: [{ kind: 'missing-recommendation', severity: 'warning', message: 'nginx recommends "<img src=x onerror=alert(1)>", which is not in the catalog' }],
  fingerprint: `sha256:${'f'.repeat(64)}`,
  footprint: { modules: ['base', 'nginx'], packages: ['nginx'], paths: ['/etc/nginx/**'] },
  ok: true,
};

describe('the catalog view', () => {
  function previews() {
    const asked: string[] = [];
    const preview = async (template: string): Promise<TemplatePreview> => {
      asked.push(template);
      if (template === 'broken') throw new NodeApiError(400, explain(400, 'module "ghost" is not in the catalog', BASE));
      return PREVIEW;
    };
    return { asked, preview };
  }

  it('shows modules, templates, assignments by node, pools, versions and skipped changes', async () => {
    view = render(CatalogView, { load: loader(CATALOG).load, preview: previews().preview, members });
    await settle();
    expect(text('[data-testid=catalog-summary]')).toBe('7 signed entries: 3 modules, 2 templates, 4 assignments on 3 nodes, 1 pool, 2 versions.');
    const cells = (selector: string): string[] => [...(q(selector)?.querySelectorAll('td') ?? [])].map((td) => td.textContent?.trim() ?? '');
    expect(cells('[data-testid=module][data-name=nginx-tls]')).toEqual(['nginx-tls', 'config', 'web (5)', '600', '5600', 'nginx', 'reboot required']);
    expect(text('[data-testid=module][data-name=base]')).toContain('immutable');
    const web = q('[data-testid=template][data-name=web]');
    expect([...web!.querySelectorAll('.chip')].map((c) => [c.textContent, c.classList.contains('disabled')])).toEqual([['nginx', false], ['nginx-tls', true]]);
    const groups = qa('[data-testid=assignment-node]');
    expect(groups.map((g) => g.getAttribute('data-node'))).toEqual([alpha.peerId, 'bravo.lan', 'future-box']);
    const byNode = Object.fromEntries(groups.map((g) => [g.getAttribute('data-node'), g.textContent?.replace(/\s+/g, ' ').trim()]));
    expect(byNode[alpha.peerId]).toMatch(/^▸ alpha 2 modules/);
    expect(byNode['bravo.lan']).toMatch(/^▸ bravo \(host bravo\.lan\) 1 module/);
    expect(byNode['future-box']).toContain('not a member yet');
    click(q(`[data-testid=assignment-node][data-node="${alpha.peerId}"] button`));
    expect(qa('[data-testid=assignment]').map((a) => a.textContent)).toEqual(['base from template web', 'nginx from template web']);
    expect(cells('[data-testid=pool][data-name=warm-web]')).toEqual(['warm-web', 'web', '2', '1–4', 'ephemeral', 'active']);
    expect(qa('[data-testid=version-state]').map((b) => b.textContent)).toEqual(['retired', 'live']);
    expect(text('[data-testid=version][data-key="nginx@2"]')).toContain('amd64, arm64');
    expect(text('[data-testid=version][data-key="nginx@2"]')).toContain('signed by Qx3vT0mJ (trusted)');
    expect(text('[data-testid=catalog-skipped]')).toContain('cannot move from retired to live');
  });

  it('previews a template on asking: verdict, problems, closure and fingerprint; and shows a refused preview', async () => {
    const { asked, preview } = previews();
    view = render(CatalogView, { load: loader(CATALOG).load, preview, members });
    await settle();
    click(q('[data-testid=template][data-name=web] [data-testid=preview-button]'));
    await settle();
    expect(asked).toEqual(['web']);
    expect(text('[data-testid=preview-verdict]')).toBe('composes');
    expect(text('[data-testid=preview-fingerprint]')).toBe(PREVIEW.fingerprint);
    expect(qa('[data-testid=preview-closure]').map((r) => r.getAttribute('data-module'))).toEqual(['nginx', 'base']);
    expect(text('[data-testid=preview-closure][data-module=base]')).toContain('needed by nginx');
    expect(text('[data-testid=preview-warning]')).toContain('<img src=x onerror=alert(1)>');
    expect(view!.target.querySelector('[data-testid=preview] img')).toBeNull();
    click(q('[data-testid=template][data-name=broken] [data-testid=preview-button]'));
    await settle();
    expect(text('[data-testid=template][data-name=broken] [data-testid=preview-error]')).toBe('The node refused it: module "ghost" is not in the catalog.');
    click(q('[data-testid=template][data-name=web] [data-testid=preview-button]'));
    expect(q('[data-testid=template][data-name=web] [data-testid=preview]')).toBeNull();
  });

  it('shows conflicts of a template that does not compose', async () => {
    const preview = async (): Promise<TemplatePreview> => ({
      ...PREVIEW,
      ok: false,
      conflicts: [{ kind: 'instance-collision', severity: 'error', message: 'nginx and apache are both instances of category web' }],
    });
    view = render(CatalogView, { load: loader(CATALOG).load, preview, members });
    await settle();
    click(q('[data-testid=template][data-name=web] [data-testid=preview-button]'));
    await settle();
    expect(text('[data-testid=preview-verdict]')).toBe('does not compose');
    expect(q('[data-testid=preview-conflict]')?.getAttribute('data-kind')).toBe('instance-collision');
  });

  it('says the catalog is empty and how to fill it, or why it could not be read; reads again when the document changes', async () => {
    const empty: CatalogAnswer = { catalog: { modules: [], templates: [], assignments: [], pools: [], versions: [], trust: [] }, entries: 0, skipped: [] };
    const { calls, load } = loader(empty);
    const props = $state({ load, preview: previews().preview, members, version: 'd1' });
    view = render(CatalogView, props);
    await settle();
    expect(text('[data-testid=catalog-empty]')).toContain('fleet apply fleet.yaml');
    props.version = 'd2';
    await settle();
    expect(calls.count).toBe(2);
    view.destroy();
    view = render(CatalogView, { load: async () => Promise.reject(new NodeApiError(0, explain(0, '', BASE))), preview: previews().preview, members });
    await settle();
    expect(text('[data-testid=catalog-error]')).toBe('Cannot reach the node at http://127.0.0.1:7420. Is it running, and is the address right?');
  });
});
