import { describe, expect, it } from 'vitest';
import { ControlPlane, DEFAULT_DISPATCH_CONFIG, DISPATCHER_SINGLETON, SILENT_RUN_MARGIN_MS, TaskRunner, dispatcherPorts, dispatcherSpec, planDispatch, taskView } from '../../actors/index.ts';
import * as A from '@automerge/automerge';
import { DESIRED_TASKS_DOC_ID, type DesiredChange, type TaskLease, type TaskRun, type TaskStatus, type TasksDocument, readInstanceRecords, readTasksDoc, recordActionOutcome, recordLease, recordRun, taskStatuses, toPlain } from '../../crdt-schema/index.ts';
import { type Clock, type FleetNode, MemoryLogger, type ProcessRequest, type ProcessResult, type ProcessRunner, signDesiredEntry } from '../../mesh/index.ts';
import { Fleet } from '../helpers/memory-fleet.ts';

/** Commands that take virtual time: `sleep MS` exits 0 after MS, `fail` exits 3 at once; aborts and timeouts kill. */
class ClockRunner implements ProcessRunner {
  readonly starts: string[] = [];
  readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  run(request: ProcessRequest): Promise<ProcessResult> {
    this.starts.push(request.args.join(' '));
    if (request.command === 'fail') return Promise.resolve({ exitCode: 3, stdout: 'broken\n', stderr: '', killed: false });
    const ms = Number(request.args[0]);
    return new Promise((resolve) => {
      const killAfter = Math.min(ms, request.timeoutMs ?? Number.MAX_SAFE_INTEGER);
      const timer = this.clock.setTimeout(() => resolve(ms <= (request.timeoutMs ?? ms) ? { exitCode: 0, stdout: `slept ${ms}\n`, stderr: '', killed: false } : { exitCode: -1, stdout: '', stderr: '', killed: true }), killAfter);
      request.signal?.addEventListener('abort', () => {
        this.clock.clearTimeout(timer);
        resolve({ exitCode: -1, stdout: '', stderr: '', killed: true });
      });
    });
  }
}

const CONFIG = { leaseMs: 10_000, renewWhenLeftMs: 7_000, tickMs: 500 };

async function taskFleet(size: number) {
  const fleet = new Fleet();
  const nodes: FleetNode[] = [await fleet.found(0)];
  for (let i = 1; i < size; i++) nodes.push(await fleet.join(i, 0, `token-${i}`));
  const runners = nodes.map(() => new ClockRunner(fleet.clock));
  const planes: ControlPlane[] = [];
  const taskRunners = nodes.map((node, i) => new TaskRunner({ node, runner: runners[i]!, clock: fleet.clock, log: new MemoryLogger() }));
  nodes.forEach((node, i) => {
    const plane: ControlPlane = new ControlPlane({
      node,
      transport: fleet.network.lookup(node.peer)!,
      clock: fleet.clock,
      log: new MemoryLogger(),
      singletons: [dispatcherSpec(CONFIG)],
      ports: dispatcherPorts(node, fleet.clock, () => plane),
    });
    taskRunners[i]!.register(plane);
    planes.push(plane);
  });
  await fleet.run(4_000);
  for (const [i, plane] of planes.entries()) {
    await fleet.pumpUntil(taskRunners[i]!.start());
    await fleet.pumpUntil(plane.start());
  }
  await fleet.run(2_000);
  const signer = { ...fleet.operator, seed: fleet.operatorKeys.seed };
  const ask = async (via: number, ...changes: DesiredChange[]): Promise<void> =>
    fleet.pumpUntil(nodes[via]!.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, changes, fleet.clock.now())], DESIRED_TASKS_DOC_ID));
  const task = (id: string, node: number, command: string, args: string[] = [], timeoutMs = 60_000): DesiredChange => ({ op: 'put', kind: 'task', value: { id, node: nodes[node]!.peer, command, args, timeoutMs } });
  const status = (i: number, id: string): TaskStatus | undefined => taskView(nodes[i]!).find((t) => t.id === id);
  const dispatcher = (): number => planes.findIndex((plane, i) => alive.has(i) && plane.placement.isActive(DISPATCHER_SINGLETON));
  const alive = new Set(nodes.map((_, i) => i));
  const crash = async (i: number): Promise<void> => {
    alive.delete(i);
    await taskRunners[i]!.stop();
    await fleet.network.lookup(nodes[i]!.peer)!.stop();
  };
  return { fleet, nodes, runners, planes, ask, task, status, dispatcher, alive, crash };
}

describe('task dispatch', () => {
  it('runs an operator-signed task once on its node and every node sees how it ended', async () => {
    const { fleet, ask, task, status, runners, alive } = await taskFleet(4);
    await ask(1, task('t-ok', 3, 'sleep', ['2000']), task('t-bad', 2, 'fail'));
    await fleet.run(6_000);
    for (const i of alive) {
      expect(status(i, 't-ok')).toMatchObject({ state: 'complete', run: { exitCode: 0, output: 'slept 2000\n' } });
      expect(status(i, 't-bad')).toMatchObject({ state: 'failed', run: { exitCode: 3, output: 'broken\n' } });
    }
    expect(runners[3]!.starts).toEqual(['2000']);
    expect(runners.map((r) => r.starts.length)).toEqual([0, 0, 1, 1]);
  });

  it('keeps a running task running once across a dispatcher failover: the new owner renews its lease', async () => {
    const { fleet, ask, task, status, runners, dispatcher, crash, alive, nodes } = await taskFleet(5);
    const owner = dispatcher();
    const runner = [0, 1, 2, 3, 4].find((i) => i !== owner)!;
    await ask(runner, task('t-long', runner, 'sleep', ['25000']));
    await fleet.run(3_000);
    expect(status(runner, 't-long')?.state).toBe('running');
    await crash(owner);
    await fleet.run(30_000);
    const next = dispatcher();
    expect(next).not.toBe(owner);
    expect(next).toBeGreaterThanOrEqual(0);
    for (const i of alive) expect(status(i, 't-long')).toMatchObject({ state: 'complete', lease: { node: nodes[runner]!.peer, epoch: 2 } });
    expect(runners[runner]!.starts).toEqual(['25000']);
  });

  it('stops a command whose node is cut off from the dispatcher once its lease runs out, and never starts it again', async () => {
    const { fleet, ask, task, status, runners, dispatcher, alive } = await taskFleet(5);
    const owner = dispatcher();
    const cut = [0, 1, 2, 3, 4].find((i) => i !== owner)!;
    await ask(cut, task('t-cut', cut, 'sleep', ['60000']));
    await fleet.run(2_000);
    expect(status(cut, 't-cut')?.state).toBe('running');
    const rest = [0, 1, 2, 3, 4].filter((i) => i !== cut);
    fleet.partition([cut], rest);
    await fleet.run(CONFIG.leaseMs + 2_000);
    expect(status(cut, 't-cut')).toMatchObject({ state: 'aborted', run: { reason: expect.stringMatching(/lease ran out/) } });
    fleet.heal([cut], rest);
    await fleet.run(10_000);
    for (const i of alive) expect(status(i, 't-cut')?.state).toBe('aborted');
    expect(runners[cut]!.starts).toHaveLength(1);
  });

  it('cancels a task that has not begun and aborts one that runs', async () => {
    const { fleet, ask, task, status, runners, alive } = await taskFleet(3);
    await ask(0, task('t-run', 1, 'sleep', ['30000']));
    // A task id is asked for once: the same id with other content is refused where it is asked.
    await expect(ask(1, task('t-run', 1, 'sleep', ['5']))).rejects.toThrow(/already asked for with other content/);
    await fleet.run(2_000);
    expect(status(0, 't-run')?.state).toBe('running');
    // Asked for and cancelled in one entry: it never starts.
    await ask(0, task('t-never', 2, 'sleep', ['1000']), { op: 'put', kind: 'task-cancel', value: { id: 't-never', reason: 'changed my mind' } });
    await ask(2, { op: 'put', kind: 'task-cancel', value: { id: 't-run', reason: '' } });
    await fleet.run(4_000);
    for (const i of alive) {
      expect(status(i, 't-never')).toMatchObject({ state: 'cancelled', cancelRequested: true });
      expect(status(i, 't-run')).toMatchObject({ state: 'aborted', run: { reason: expect.stringMatching(/operator cancelled/) } });
    }
    expect(runners[2]!.starts).toEqual([]);
  });

  it('refuses to run what no operator signed, whoever orders it, and closes runs a previous process left running', async () => {
    const extras = await taskFleet(3);
    const { fleet, nodes, planes, dispatcher, runners } = extras;
    const owner = dispatcher();
    const view = planes[owner]!.placement.view().find((v) => v.name === DISPATCHER_SINGLETON)!;
    const answer = await fleet.pumpUntil(
      planes[owner]!.order(nodes[1]!.peer, DISPATCHER_SINGLETON, { epoch: view.epoch, owner: view.owner! }, 'task.run', JSON.stringify({ taskId: 'rm-rf', lease: { leaseId: 'x', node: nodes[1]!.peer, epoch: view.epoch, until: fleet.clock.now() + 10_000, at: fleet.clock.now() } })),
    );
    expect(answer).toEqual({ accepted: true, result: { state: 'refused', reason: expect.stringMatching(/no task rm-rf signed by an operator/) } });
    expect(runners[1]!.starts).toEqual([]);
    // A signed task the dispatcher closed is not started by a later order, whatever lease it carries.
    const { ask, task } = extras;
    await fleet.pumpUntil(planes[owner]!.stop());
    await ask(1, task('t-closed', 1, 'sleep', ['1000']));
    await fleet.pumpUntil(nodes[owner]!.tasks.recordLeases([{ taskId: 't-closed', lease: { leaseId: `${view.epoch}:t-closed`, node: nodes[1]!.peer, epoch: view.epoch, until: fleet.clock.now(), at: fleet.clock.now(), closed: 'aborted', reason: 'test' } }]));
    await fleet.run(1_000);
    const forged = await fleet.pumpUntil(
      planes[owner]!.order(nodes[1]!.peer, DISPATCHER_SINGLETON, { epoch: view.epoch, owner: view.owner! }, 'task.run', JSON.stringify({ taskId: 't-closed', lease: { leaseId: 'x', node: nodes[1]!.peer, epoch: view.epoch, until: fleet.clock.now() + 1e12, at: fleet.clock.now() } })),
    );
    expect(forged).toEqual({ accepted: true, result: { state: 'refused', reason: expect.stringMatching(/closed by the dispatcher/) } });
    expect(runners[1]!.starts).toEqual([]);
    // A run left running by a process that died: the next start records it aborted.
    await fleet.pumpUntil(nodes[2]!.tasks.recordRun('t-old', { leaseId: '1:t-old', epoch: 1, state: 'running', startedAt: fleet.clock.now() }));
    const restarted = new TaskRunner({ node: nodes[2]!, runner: runners[2]!, clock: fleet.clock, log: new MemoryLogger() });
    await fleet.pumpUntil(restarted.start());
    expect(nodes[2]!.tasks.of(nodes[2]!.peer).runs.get('t-old')).toMatchObject({ state: 'aborted', reason: 'the node restarted while it ran' });
    await restarted.stop();
  });
});

describe('task retention (docs/CATALOG.md §Tasks: retention)', () => {
  it('deletes a task\'s request and run buckets on every node 31 days on, never runs it again, and runs new tasks', async () => {
    const { fleet, nodes, ask, task, status, runners, alive } = await taskFleet(3);
    await ask(0, task('t-month', 2, 'sleep', ['1000']));
    await fleet.run(5_000);
    for (const i of alive) expect(status(i, 't-month')).toMatchObject({ state: 'complete' });
    const day = new Date(fleet.clock.now()).toISOString().slice(0, 10);
    const buckets = (i: number): string[] => nodes[i]!.store.ids().filter((id) => id.endsWith(`/${day}`)).sort();
    // The request, the run on node 2, and the lease the dispatcher's owner gave.
    for (const i of alive) {
      expect(buckets(i)).toContain(`desired/tasks/${day}`);
      expect(buckets(i)).toContain(`tasks/${nodes[2]!.peer}/${day}`);
      expect(nodes[i]!.store.ids()).not.toContain('desired/tasks');
    }
    const heldBefore = buckets(0);
    // 30 days on, all of it is still there; from the 31st, retired everywhere at the hourly check.
    const retiredFrom = Date.parse(`${day}T00:00:00Z`) + 31 * 86_400_000;
    fleet.clock.jumpTo(retiredFrom - 3_600_000);
    await fleet.run(2_000);
    for (const i of alive) expect(buckets(i)).toEqual(heldBefore);
    // The next hourly check falls just past midnight.
    fleet.clock.jumpTo(retiredFrom + 1_000);
    await fleet.run(5_000);
    for (const i of alive) {
      expect(buckets(i)).toEqual([]);
      expect(status(i, 't-month')).toBeUndefined();
      expect(nodes[i]!.desired.accepts(`desired/tasks/${day}`)).toBe(false);
    }
    expect(runners[2]!.starts).toEqual(['1000']);
    // And tasks go on: a new one runs, in today's buckets.
    await ask(1, task('t-after', 2, 'sleep', ['500']));
    await fleet.run(5_000);
    for (const i of alive) expect(status(i, 't-after')).toMatchObject({ state: 'complete' });
    expect(runners[2]!.starts).toEqual(['1000', '500']);
  });
});

describe('planDispatch', () => {
  const base: TaskStatus = { id: 't', node: 'n', command: 'c', args: [], timeoutMs: 1_000, requestedAt: 0, state: 'pending', cancelRequested: false };
  const plan = (status: TaskStatus, member: 'alive' | 'dead' | 'unknown' = 'alive', inFlight: string[] = []) =>
    planDispatch({ now: 100_000, epoch: 3, statuses: [status], memberState: () => member, inFlight: new Set(inFlight), config: DEFAULT_DISPATCH_CONFIG });

  it('leases a pending task under its epoch and sends it; re-sends its own valid lease; takes over an older epoch\'s', () => {
    expect(plan(base)).toEqual({ leases: [{ taskId: 't', lease: { leaseId: '3:t', node: 'n', epoch: 3, until: 160_000, at: 100_000 } }], orders: [expect.objectContaining({ kind: 'task.run' })] });
    const mine = { leaseId: '3:t', node: 'n', epoch: 3, until: 150_000, at: 90_000 };
    expect(plan({ ...base, state: 'scheduled', lease: mine })).toEqual({ leases: [], orders: [{ taskId: 't', node: 'n', kind: 'task.run', lease: mine }] });
    expect(plan({ ...base, state: 'scheduled', lease: { ...mine, epoch: 2 } }).leases).toHaveLength(1);
    expect(plan(base, 'alive', ['t'])).toEqual({ leases: [], orders: [] });
  });

  it('closes tasks whose node is gone with a lapsed lease, and waits for a dead node that never held one', () => {
    const lapsed = { leaseId: '2:t', node: 'n', epoch: 2, until: 99_000, at: 39_000 };
    expect(plan({ ...base, state: 'scheduled', lease: lapsed }, 'dead').leases[0]!.lease).toMatchObject({ closed: 'aborted', reason: expect.stringMatching(/n is dead/) });
    expect(plan(base, 'dead')).toEqual({ leases: [], orders: [] });
    expect(plan(base, 'unknown').leases[0]!.lease).toMatchObject({ closed: 'aborted', reason: expect.stringMatching(/not a member/) });
  });

  it('renews a running task\'s lease only when it runs low or came from an older epoch', () => {
    const run = { leaseId: '2:t', epoch: 2, state: 'running' as const, startedAt: 1 };
    const fresh = { leaseId: '2:t', node: 'n', epoch: 3, until: 150_000, at: 90_000 };
    expect(plan({ ...base, state: 'running', run, lease: fresh })).toEqual({ leases: [], orders: [] });
    expect(plan({ ...base, state: 'running', run, lease: { ...fresh, until: 130_000 } }).leases[0]!.lease).toMatchObject({ leaseId: '2:t', until: 160_000 });
    expect(plan({ ...base, state: 'running', run, lease: { ...fresh, epoch: 2 } }).orders).toHaveLength(1);
    expect(plan({ ...base, state: 'running', run, cancelRequested: true }).orders).toEqual([{ taskId: 't', node: 'n', kind: 'task.abort' }]);
  });

  it('closes a running task whose node is silent past its lease and the margin, and leaves it while the lease could still hold', () => {
    const run = { leaseId: '2:t', epoch: 2, state: 'running' as const, startedAt: 1 };
    const held = { leaseId: '2:t', node: 'n', epoch: 2, until: 100_000 - SILENT_RUN_MARGIN_MS, at: 10_000 };
    const closed = plan({ ...base, state: 'running', run, lease: held }, 'dead');
    expect(closed).toEqual({ leases: [{ taskId: 't', lease: expect.objectContaining({ leaseId: '2:t', epoch: 3, closed: 'aborted', reason: expect.stringMatching(/n is dead: its lease ran out/) }) }], orders: [] });
    expect(plan({ ...base, state: 'running', run, lease: { ...held, until: held.until + 1 } }, 'dead')).toEqual({ leases: [], orders: [] });
    expect(plan({ ...base, state: 'running', run, lease: held, cancelRequested: true }, 'unknown').leases[0]!.lease).toMatchObject({ closed: 'aborted', reason: 'n left the fleet while it ran' });
    // The fold: the closed lease wins over a run still marked running, not over a run that ended.
    const docs = (r: typeof run | { leaseId: string; epoch: number; state: 'complete'; startedAt: number; endedAt: number }) =>
      new Map([['n', { runs: new Map([['t', r]]), leases: new Map([['t', closed.leases[0]!.lease]]) }]]);
    const request = new Map([['t', { id: 't', node: 'n', command: 'c', args: [], timeoutMs: 1_000, requestedAt: 0 }]]);
    expect(taskStatuses(request, new Set(), docs(run))[0]!.state).toBe('aborted');
    expect(taskStatuses(request, new Set(), docs({ ...run, state: 'complete', endedAt: 5 }))[0]!.state).toBe('complete');
  });
});

describe('tasks documents', () => {
  const run: TaskRun = { leaseId: '3:t', epoch: 3, state: 'complete', startedAt: 10, endedAt: 20, exitCode: 0, output: 'ok\n', pid: 42 };
  const lease: TaskLease = { leaseId: '3:t', node: 'n1', epoch: 3, until: 60_000, at: 10 };

  it('writes runs, leases and action outcomes as one JSON string each, and reads those and the maps of schema 1 documents alike', () => {
    const doc = A.change(A.init<TasksDocument>(), (d) => {
      recordRun(d, 't', run);
      recordLease(d, 't', lease);
      recordActionOutcome(d, 'a-1', { outcome: 'applied', reason: '', at: 30, epoch: 3 });
    });
    expect(doc.schema).toBe(2);
    expect(typeof toPlain((doc.runs as Record<string, unknown>)['t'])).toBe('string');
    expect(readTasksDoc(doc)).toEqual({ runs: new Map([['t', run]]), leases: new Map([['t', lease]]) });
    expect(readInstanceRecords(doc).actions).toEqual(new Map([['a-1', { outcome: 'applied', reason: '', at: 30, epoch: 3 }]]));
    const str = (value: string) => new A.ImmutableString(value);
    const old = A.change(A.init<TasksDocument>(), (d) => {
      d.schema = 1;
      d.runs = { t: { leaseId: str('3:t'), epoch: 3, state: str('complete'), startedAt: 10, endedAt: 20, exitCode: 0, output: str('ok\n'), pid: 42 } };
      d.leases = { t: { leaseId: str('3:t'), node: str('n1'), epoch: 3, until: 60_000, at: 10 } };
      d.actions = { 'a-1': { outcome: str('applied'), reason: str(''), at: 30, epoch: 3 } };
    });
    expect(readTasksDoc(old)).toEqual(readTasksDoc(doc));
    expect(readInstanceRecords(old).actions).toEqual(readInstanceRecords(doc).actions);
  });

  it('leaves out records that do not parse or break the rules', () => {
    const doc = A.change(A.init<TasksDocument>(), (d) => {
      d.schema = 2;
      d.runs = { t: new A.ImmutableString(JSON.stringify(run)), broken: new A.ImmutableString('{'), badState: new A.ImmutableString(JSON.stringify({ ...run, state: 'won' })), list: new A.ImmutableString('[]') };
      d.leases = { t: new A.ImmutableString(JSON.stringify({ ...lease, until: 'later' })) };
    });
    expect(readTasksDoc(doc)).toEqual({ runs: new Map([['t', run]]), leases: new Map() });
  });
});
