import { describe, expect, it } from 'vitest';
import { ControlPlane, DEFAULT_INSTANCE_CONFIG, INSTANCES_SINGLETON, type InstanceView, instancePorts, instanceReconcilerSpec, instanceRecords, planInstances, registerInstanceExecutors } from '../../actors/index.ts';
import { DESIRED_TASKS_DOC_ID, type InstanceRecord } from '../../crdt-schema/index.ts';
import { type FleetNode, MemoryLogger, ScriptedProcessRunner, signDecision, signDesiredEntry, toBase64Url } from '../../mesh/index.ts';
import { Fleet } from '../helpers/memory-fleet.ts';

const CONFIG = { tickMs: 500, errorAfterMs: 5_000 };

async function instanceFleet(size: number) {
  const fleet = new Fleet();
  const nodes: FleetNode[] = [await fleet.found(0)];
  for (let i = 1; i < size; i++) nodes.push(await fleet.join(i, 0, `token-${i}`));
  const reboots = nodes.map(() => new ScriptedProcessRunner([{ command: 'reboot-now', result: { exitCode: 0, stdout: '', stderr: '' } }]));
  const planes: ControlPlane[] = [];
  nodes.forEach((node, i) => {
    const plane: ControlPlane = new ControlPlane({
      node,
      transport: fleet.network.lookup(node.peer)!,
      clock: fleet.clock,
      log: new MemoryLogger(),
      singletons: [instanceReconcilerSpec(CONFIG)],
      ports: instancePorts(node, fleet.clock, () => plane),
    });
    // A stop ends the node cleanly: it leaves, as a SIGTERM'd process does.
    registerInstanceExecutors(plane, { node, stopSelf: () => void plane.stop().then(() => node.stop()), reboot: ['reboot-now'], runner: reboots[i]!, clock: fleet.clock, log: new MemoryLogger() });
    planes.push(plane);
  });
  await fleet.run(4_000);
  for (const plane of planes) await fleet.pumpUntil(plane.start());
  await fleet.run(3_000);
  const signer = { ...fleet.operator, seed: fleet.operatorKeys.seed };
  const act = async (via: number, id: string, node: number, action: 'start' | 'stop' | 'reboot' | 'terminate'): Promise<void> =>
    fleet.pumpUntil(nodes[via]!.desired.record([signDesiredEntry(signer, fleet.fleetId, DESIRED_TASKS_DOC_ID, [{ op: 'put', kind: 'instance-action', value: { id, node: nodes[node]!.peer, action, reason: '' } }], fleet.clock.now())], DESIRED_TASKS_DOC_ID));
  const state = (via: number, node: number): InstanceRecord | undefined => instanceRecords(nodes[via]!).get(nodes[node]!.peer);
  const owner = (): number => planes.findIndex((plane) => plane.placement.isActive(INSTANCES_SINGLETON));
  return { fleet, nodes, planes, reboots, act, state, owner };
}

describe('instance reconciler', () => {
  it('marks members running, a stopped one stopped, a silent one errored, and records who did each', async () => {
    const { fleet, nodes, act, state, owner, reboots } = await instanceFleet(5);
    const reconciler = owner();
    const [stopped, silent, rebooted] = [0, 1, 2, 3, 4].filter((i) => i !== reconciler);
    for (let i = 0; i < 5; i++) expect(state(reconciler, i)).toMatchObject({ state: 'running', epoch: 1, transitions: [{ from: 'pending', event: 'mark_running', by: nodes[reconciler]!.peer }] });
    await act(reconciler, 'a-stop', stopped!, 'stop');
    await act(reconciler, 'a-reboot', rebooted!, 'reboot');
    await fleet.run(4_000);
    const operator = toBase64Url(fleet.operatorKeys.publicKey);
    expect(state(reconciler, stopped!)?.state).toBe('stopped');
    expect(state(reconciler, stopped!)?.transitions.slice(-2).map((t) => [t.event, t.by === operator])).toEqual([['stop', true], ['mark_stopped', false]]);
    expect(state(reconciler, rebooted!)?.state).toBe('rebooting');
    expect(reboots[rebooted!]!.calls.map((c) => c.command)).toEqual(['reboot-now']);
    // A reboot asked of the stopped instance is refused, naming what it can take.
    await act(reconciler, 'a-bad', stopped!, 'reboot');
    await fleet.run(1_000);
    const outcome = nodes[reconciler]!.tasks.of(nodes[reconciler]!.peer).actions.get('a-bad');
    expect(outcome).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/from stopped it can take: start, terminate/) });
    // Silent: cut off without a leave; errored once silent past errorAfterMs.
    await fleet.network.lookup(nodes[silent!]!.peer)!.stop();
    await fleet.run(CONFIG.errorAfterMs + 4_000);
    expect(state(reconciler, silent!)).toMatchObject({ state: 'error', transitions: expect.arrayContaining([expect.objectContaining({ event: 'mark_errored', reason: expect.stringMatching(/silent for \d+ s/) })]) });
    // Every live node holds the same records.
    for (const i of [0, 1, 2, 3, 4].filter((n) => n !== stopped && n !== silent)) expect(state(i, stopped!)?.state).toBe('stopped');
  });

  it('terminates a revoked instance, and a new reconciler after a failover applies each action once', async () => {
    const { fleet, nodes, planes, act, state, owner } = await instanceFleet(5);
    const first = owner();
    const target = [0, 1, 2, 3, 4].find((i) => i !== first)!;
    const revoke = signDecision({ seed: fleet.operatorKeys.seed, publicKey: toBase64Url(fleet.operatorKeys.publicKey) }, fleet.fleetId, 'revoke-node', { node: nodes[target]!.peer, reason: 'retired' }, fleet.clock.now());
    await fleet.pumpUntil(nodes[first]!.decide(revoke));
    await act(first, 'a-term', target, 'terminate');
    await fleet.run(3_000);
    expect(state(first, target)).toMatchObject({ state: 'terminated', transitions: expect.arrayContaining([expect.objectContaining({ event: 'terminate', reason: 'revoked by an operator: retired' })]) });
    // The reconciler's node goes; the next one starts from the records and repeats nothing.
    await planes[first]!.stop();
    await fleet.network.lookup(nodes[first]!.peer)!.stop();
    await fleet.run(10_000);
    const next = owner();
    expect(next).not.toBe(first);
    const survivor = state(next, target)!;
    expect(survivor.transitions.filter((t) => t.event === 'terminate')).toHaveLength(1);
    const outcomes = [...nodes[next]!.tasks.all().values()].flatMap((doc) => (doc.actions.has('a-term') ? [doc.actions.get('a-term')!] : []));
    expect(outcomes.map((o) => o.outcome)).toEqual(['applied']);
  });
});

describe('instance executors', () => {
  it('carry out each action once, even when a new reconciler repeats the order', async () => {
    const { fleet, nodes, planes, owner, reboots, act } = await instanceFleet(3);
    const reconciler = owner();
    const target = [0, 1, 2].find((i) => i !== reconciler)!;
    const view = planes[reconciler]!.placement.view().find((v) => v.name === INSTANCES_SINGLETON)!;
    const order = (actionId = 'a-once') => fleet.pumpUntil(planes[reconciler]!.order(nodes[target]!.peer, INSTANCES_SINGLETON, { epoch: view.epoch, owner: view.owner! }, 'instance.reboot', JSON.stringify({ actionId })));
    // An order alone (any member can send one) does nothing without an operator's signed action.
    expect(await order('a-forged')).toEqual({ accepted: true, result: { refused: true, reason: expect.stringMatching(/no operator-signed reboot a-forged/) } });
    expect(reboots[target]!.calls).toHaveLength(0);
    // Signed, but held back from the reconciler (a reboot far in the reconciler's future is not planned: its tick would act on it too).
    await fleet.pumpUntil(planes[reconciler]!.stop());
    await act(target, 'a-once', target, 'reboot');
    await fleet.run(300);
    expect(await order()).toEqual({ accepted: true, result: { rebooting: true } });
    await fleet.run(500);
    expect(await order()).toEqual({ accepted: true, result: { duplicate: true } });
    expect(reboots[target]!.calls).toHaveLength(1);
    expect(nodes[target]!.tasks.of(nodes[target]!.peer).executed.has('a-once')).toBe(true);
  });
});

describe('instance action retention', () => {
  it("deletes an action's outcome and its node's mark once its request has retired, and never carries it out again", async () => {
    const { fleet, nodes, planes, reboots, act, owner } = await instanceFleet(3);
    const reconciler = owner();
    const target = [0, 1, 2].find((i) => i !== reconciler)!;
    await act(reconciler, 'a-month', target, 'reboot');
    await fleet.run(3_000);
    expect(reboots[target]!.calls).toHaveLength(1);
    const outcomeOn = (i: number): boolean => [...nodes[i]!.tasks.all().values()].some((view) => view.actions.has('a-month'));
    const markOn = (i: number): boolean => nodes[i]!.tasks.of(nodes[target]!.peer).executed.has('a-month');
    for (const i of [0, 1, 2]) expect(outcomeOn(i) && markOn(i)).toBe(true);
    const day = new Date(fleet.clock.now()).toISOString().slice(0, 10);
    const dayStart = Date.parse(`${day}T00:00:00Z`);
    // The request retires on day 31; outcome and mark stay until two days past that window.
    fleet.clock.jumpTo(dayStart + 31 * 86_400_000 + 1_000);
    await fleet.run(5_000);
    for (const i of [0, 1, 2]) {
      expect(nodes[i]!.desired.tasks().actions.some((a) => a.id === 'a-month')).toBe(false);
      expect(outcomeOn(i) && markOn(i)).toBe(true);
    }
    fleet.clock.jumpTo(dayStart + 33 * 86_400_000 + 1_000);
    await fleet.run(3_700_000);
    for (const i of [0, 1, 2]) expect(outcomeOn(i) || markOn(i)).toBe(false);
    // An order naming it again does nothing (no node holds its request; this process also remembers it ran it).
    const view = planes[owner()]!.placement.view().find((v) => v.name === INSTANCES_SINGLETON)!;
    const again = await fleet.pumpUntil(planes[owner()]!.order(nodes[target]!.peer, INSTANCES_SINGLETON, { epoch: view.epoch, owner: view.owner! }, 'instance.reboot', JSON.stringify({ actionId: 'a-month' })));
    expect(again.accepted).toBe(true);
    expect(again).not.toMatchObject({ result: { rebooting: true } });
    expect(reboots[target]!.calls).toHaveLength(1);
  });
});

describe('planInstances', () => {
  const context = { epoch: 4, owner: 'me' };
  const record = (state: InstanceRecord['state'], since = 0): InstanceRecord => ({ state, since, epoch: 3, transitions: [] });
  const view = (over: Partial<InstanceView>): InstanceView => ({ now: 100_000, instances: [], records: new Map(), actions: [], ...over });

  it('moves instances along the lifecycle from what is observed', () => {
    const plan = planInstances(
      view({
        instances: [
          { peerId: 'new', state: 'alive', stateSince: 0 },
          { peerId: 'back', state: 'alive', stateSince: 90_000 },
          { peerId: 'left', state: 'left', stateSince: 99_000 },
          { peerId: 'quiet', state: 'dead', stateSince: 30_000 },
          { peerId: 'brief', state: 'dead', stateSince: 99_000 },
          { peerId: 'reboot', state: 'alive', stateSince: 0, startedAt: 95_000 },
          // Never heard from by this owner (it started after the member went silent): not up.
          { peerId: 'unheard', state: 'alive', stateSince: 99_000, heard: false },
          { peerId: 'unheard-new', state: 'alive', stateSince: 99_000, heard: false },
        ],
        records: new Map([['back', record('stopped', 80_000)], ['left', record('running')], ['quiet', record('running')], ['brief', record('running')], ['reboot', record('rebooting', 94_000)], ['unheard', record('error', 50_000)]]),
      }),
      context,
      DEFAULT_INSTANCE_CONFIG,
    );
    const states = Object.fromEntries(plan.instances.map(({ peer, record: r }) => [peer, [r.state, r.transitions.map((t) => t.event).join(',')]]));
    expect(states).toEqual({ new: ['running', 'mark_running'], back: ['running', 'start,mark_running'], left: ['stopped', 'mark_stopped'], quiet: ['error', 'mark_errored'], reboot: ['running', 'mark_running'] });
    expect(plan.instances.every(({ record: r }) => r.epoch === 4 && r.transitions.every((t) => t.by === 'me' && t.epoch === 4))).toBe(true);
  });

  it('applies an action once, orders the node when it is reachable, and refuses what the lifecycle does not allow', () => {
    const plan = planInstances(
      view({
        instances: [{ peerId: 'a', state: 'alive', stateSince: 0 }, { peerId: 'b', state: 'alive', stateSince: 0 }],
        records: new Map([['a', record('running')], ['b', record('running')]]),
        actions: [
          { id: 'x', node: 'a', action: 'stop', reason: '', by: 'op' },
          { id: 'y', node: 'b', action: 'start', reason: '', by: 'op' },
          { id: 'z', node: 'ghost', action: 'reboot', reason: '', by: 'op' },
        ],
      }),
      context,
      DEFAULT_INSTANCE_CONFIG,
    );
    expect(plan.orders).toEqual([{ node: 'a', kind: 'instance.stop', actionId: 'x' }]);
    expect(plan.actions.map((a) => [a.id, a.outcome.outcome])).toEqual([['x', 'applied'], ['y', 'refused'], ['z', 'refused']]);
    expect(plan.actions[1]!.outcome.reason).toMatch(/from running it can take: stop, reboot, terminate, mark_stopped, mark_errored/);
    expect(plan.instances.find((i) => i.peer === 'a')?.record.transitions.at(-1)).toMatchObject({ event: 'stop', by: 'op', epoch: 4 });
  });
});
