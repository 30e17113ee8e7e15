import { describe, expect, it } from 'vitest';
import { ControlPlane, INSTANCE_SILENCE_SINGLETON, RECOVERED_KIND, SILENT_KIND, rendezvousOwner } from '../../actors/index.ts';
import { type FleetNode, MemoryLogger, type PeerId } from '../../mesh/index.ts';
import { Fleet } from '../helpers/memory-fleet.ts';
import { testIdentity } from '../helpers/mini-fleet.ts';

const SENSOR = INSTANCE_SILENCE_SINGLETON;

/** An in-memory fleet whose nodes each run a control plane. */
async function controlFleet(size: number, options: { silenceCriticalAfterMs?: number } = {}) {
  const fleet = new Fleet();
  const nodes: FleetNode[] = [await fleet.found(0)];
  for (let i = 1; i < size; i++) nodes.push(await fleet.join(i, 0, `token-${i}`));
  const planes = nodes.map(
    (node) => new ControlPlane({ node, transport: fleet.network.lookup(node.peer)!, clock: fleet.clock, log: new MemoryLogger(), ...(options.silenceCriticalAfterMs === undefined ? {} : { silenceCriticalAfterMs: options.silenceCriticalAfterMs }) }),
  );
  // Joiners count as stable owners 3 s after they were first seen (PlacementConfig.stableMs).
  await fleet.run(4_000);
  for (const plane of planes) await fleet.pumpUntil(plane.start());
  const alive = new Set(nodes.map((_, i) => i));
  return {
    fleet,
    nodes,
    planes,
    alive,
    /** Indexes of the nodes where the sensor runs now. */
    running: () => [...alive].filter((i) => planes[i]!.placement.isActive(SENSOR)),
    view: (i: number) => planes[i]!.placement.view().find((v) => v.name === SENSOR)!,
    /** Cuts a node off from everyone for good, as a crash does (nothing of it is written after). */
    crash: async (i: number) => {
      alive.delete(i);
      await fleet.network.lookup(nodes[i]!.peer)!.stop();
    },
  };
}

describe('control-plane placement', () => {
  it('runs each singleton on exactly one node, the one every node names', async () => {
    const { fleet, running, view, alive } = await controlFleet(5);
    await fleet.run(2_000);
    expect(running()).toHaveLength(1);
    const owner = testIdentity(running()[0]!).peerId;
    for (const i of alive) expect(view(i)).toMatchObject({ owner, epoch: 1, active: true, ownerState: 'alive' });
    await fleet.run(5_000);
    expect(running()).toHaveLength(1);
  });

  it('moves a singleton off a dead owner with a higher epoch, and the sensor reports the death once', async () => {
    const { fleet, nodes, running, view, alive, crash } = await controlFleet(5);
    await fleet.run(2_000);
    const [first] = running();
    const crashedAt = fleet.clock.now();
    await crash(first!);
    let movedAt = 0;
    for (let t = 0; t < 10_000 && movedAt === 0; t += 50) {
      await fleet.run(50);
      if ([...alive].every((i) => view(i).epoch === 2 && view(i).active && view(i).owner !== nodes[first!]!.peer)) movedAt = fleet.clock.now();
    }
    expect(movedAt).toBeGreaterThan(0);
    // Detection (~1–2.5 s), then the lease the dead owner may still have held (1.25 s).
    expect(movedAt - crashedAt).toBeLessThan(5_000);
    expect(running()).toHaveLength(1);
    await fleet.run(2_000);
    for (const i of alive) {
      const silent = nodes[i]!.events.list({ kind: SILENT_KIND });
      expect(silent.map((e) => [e.subject, e.severity, e.source.singleton, e.source.epoch])).toEqual([[nodes[first!]!.peer, 'high', SENSOR, 2]]);
    }
  });

  it('deactivates on the minority side of a partition; the majority takes over with a higher epoch; after the heal one owner remains and old-epoch orders are refused', async () => {
    const { fleet, nodes, planes, running, view } = await controlFleet(5);
    await fleet.run(2_000);
    const [owner] = running();
    const others = [0, 1, 2, 3, 4].filter((i) => i !== owner);
    const minority = [owner!, others[0]!];
    const majority = others.slice(1);
    const oldStamp = { epoch: view(owner!).epoch, owner: nodes[owner!]!.peer };
    fleet.partition(minority, majority);
    const cutAt = fleet.clock.now();
    let minorityStoppedAt = 0;
    let mostAtOnce = 0;
    for (let t = 0; t < 10_000 && (minorityStoppedAt === 0 || !majority.some((i) => planes[i]!.placement.isActive(SENSOR))); t += 50) {
      await fleet.run(50);
      mostAtOnce = Math.max(mostAtOnce, running().length);
      if (minorityStoppedAt === 0 && !planes[owner!]!.placement.isActive(SENSOR)) minorityStoppedAt = fleet.clock.now();
    }
    // Never two at once, on either side: the majority waits out the lease the old owner held.
    expect(mostAtOnce).toBe(1);
    // The old owner stops within a lease of the cut, before the majority may start.
    expect(minorityStoppedAt - cutAt).toBeLessThanOrEqual(1_300);
    const newOwner = majority.find((i) => planes[i]!.placement.isActive(SENSOR))!;
    expect(newOwner).toBeDefined();
    expect(view(newOwner).epoch).toBe(oldStamp.epoch + 1);
    expect(minority.some((i) => planes[i]!.placement.isActive(SENSOR))).toBe(false);

    fleet.heal(minority, majority);
    for (let t = 0; t < 8_000; t += 50) {
      await fleet.run(50);
      expect(running().length).toBeLessThanOrEqual(1);
    }
    // One owner: the rendezvous owner of all five again (it may move back, handing over cleanly).
    expect(running()).toHaveLength(1);
    const final = view(running()[0]!);
    expect(final.epoch).toBeGreaterThanOrEqual(oldStamp.epoch + 1);
    for (const i of [0, 1, 2, 3, 4]) expect(view(i)).toMatchObject({ owner: final.owner, epoch: final.epoch, active: true });
    // Orders stamped with the old epoch (sent by the old owner) are refused everywhere; the current epoch's are not.
    const finalOwner = nodes.findIndex((n) => n.peer === final.owner);
    for (const i of [0, 1, 2, 3, 4]) {
      const stale = await fleet.pumpUntil(planes[owner!]!.order(nodes[i]!.peer as PeerId, SENSOR, oldStamp, 'noop'));
      expect(stale).toMatchObject({ accepted: false, reason: 'superseded', current: { epoch: final.epoch, owner: final.owner } });
      const current = await fleet.pumpUntil(planes[finalOwner]!.order(nodes[i]!.peer as PeerId, SENSOR, { epoch: final.epoch, owner: final.owner! }, 'noop'));
      expect(current).toMatchObject({ accepted: true });
    }
    // A member cannot order in another's name, nor claim an epoch its own records do not show:
    // the fence is not raised by a forgery, so the real owner's orders still pass.
    const member = [0, 1, 2, 3, 4].find((i) => i !== finalOwner)!;
    const target = [0, 1, 2, 3, 4].find((i) => i !== finalOwner && i !== member)!;
    const forged = await fleet.pumpUntil(planes[member]!.order(nodes[target]!.peer as PeerId, SENSOR, { epoch: final.epoch, owner: final.owner! }, 'noop'));
    expect(forged).toMatchObject({ accepted: false, reason: 'failed', detail: expect.stringMatching(/names .* as its sender but came from/) });
    const inflated = await fleet.pumpUntil(planes[member]!.order(nodes[target]!.peer as PeerId, SENSOR, { epoch: 2 ** 40, owner: nodes[member]!.peer }, 'noop'));
    expect(inflated).toMatchObject({ accepted: false, reason: 'failed', detail: expect.stringMatching(/no activation of .* at epoch 1099511627776 on record/) });
    expect(await fleet.pumpUntil(planes[finalOwner]!.order(nodes[target]!.peer as PeerId, SENSOR, { epoch: final.epoch, owner: final.owner! }, 'noop'))).toMatchObject({ accepted: true });
    // No duplicate was ever seen.
    expect(nodes[0]!.events.list({ kind: 'placement.duplicate_activation' })).toEqual([]);
  });

  it('sees its own activation record as soon as it writes it, and still once the write is on disk', async () => {
    const { fleet, nodes, running, view } = await controlFleet(3);
    await fleet.run(2_000);
    const i = [0, 1, 2].find((n) => !running().includes(n))!;
    expect(view(i).epoch).toBe(1);
    // A durable write is heard of by listeners only once stored; readers see it at once.
    const writing = nodes[i]!.recordActivation(SENSOR, { epoch: 99, since: fleet.clock.now(), active: false });
    expect(view(i)).toMatchObject({ owner: nodes[i]!.peer, epoch: 99, active: false });
    await fleet.pumpUntil(writing);
    expect(view(i)).toMatchObject({ owner: nodes[i]!.peer, epoch: 99, active: false });
  });

  it('writes a stop whose record failed to be written again until it is, so the record never says the node still runs it', async () => {
    const { fleet, nodes, planes, running, view } = await controlFleet(5);
    await fleet.run(2_000);
    const [owner] = running();
    const node = nodes[owner!]!;
    // The owner's storage refuses its first two stop records (a full disk, say).
    let refused = 0;
    const write = node.recordActivation.bind(node);
    node.recordActivation = async (name, record) => {
      if (!record.active && refused < 2) {
        refused++;
        throw new Error('no space left on device');
      }
      return write(name, record);
    };
    const others = [0, 1, 2, 3, 4].filter((i) => i !== owner);
    fleet.partition([owner!, others[0]!], others.slice(1));
    let recordedAt = 0;
    for (let t = 0; t < 5_000 && recordedAt === 0; t += 50) {
      await fleet.run(50);
      const own = view(owner!);
      if (own.owner === node.peer && !own.active) recordedAt = fleet.clock.now();
    }
    expect(refused).toBe(2);
    expect(planes[owner!]!.placement.isActive(SENSOR)).toBe(false);
    // Written at the third try: the evaluations after the failures (every 100 ms while one is owed).
    expect(recordedAt).toBeGreaterThan(0);
    expect(node.activationRecords().get(node.peer)?.[SENSOR]).toMatchObject({ active: false });
  });

  it('emits exactly one silence per dead member across a failover of the sensor, escalates once, and reports the recovery once', async () => {
    const { fleet, nodes, running, alive, crash } = await controlFleet(5, { silenceCriticalAfterMs: 6_000 });
    await fleet.run(2_000);
    const [owner] = running();
    const victim = [0, 1, 2, 3, 4].find((i) => i !== owner && i !== 0)!;
    const rest = [0, 1, 2, 3, 4].filter((i) => i !== victim);
    fleet.partition([victim], rest);
    await fleet.run(4_000);
    await crash(owner!);
    await fleet.run(16_000);
    expect(running()).toHaveLength(1);
    const watchers = [...alive].filter((i) => i !== victim);
    for (const i of watchers) {
      const events = nodes[i]!.events.list({ kind: SILENT_KIND });
      const bySubject = (peer: string, severity: string) => events.filter((e) => e.subject === peer && e.severity === severity);
      expect(bySubject(nodes[victim]!.peer, 'high')).toHaveLength(1);
      expect(bySubject(nodes[owner!]!.peer, 'high')).toHaveLength(1);
      // Escalated once each (6 s window), by the first sensor or its successor, never twice.
      expect(bySubject(nodes[victim]!.peer, 'critical')).toHaveLength(1);
      expect(bySubject(nodes[owner!]!.peer, 'critical')).toHaveLength(1);
      expect(events).toHaveLength(4);
    }
    // The isolated member comes back: one recovery, and no new silence.
    fleet.heal([victim], rest);
    await fleet.run(6_000);
    for (const i of watchers) {
      expect(nodes[i]!.events.list({ kind: RECOVERED_KIND }).map((e) => e.subject)).toEqual([nodes[victim]!.peer]);
      expect(nodes[i]!.events.list({ kind: SILENT_KIND })).toHaveLength(4);
    }
  });

  it('runs a singleton on one of two would-be owners whose views differ, though neither has seen the other activate (docs/SIMULATION.md, leader-kill-lossy)', async () => {
    const { fleet, nodes, planes, running, crash } = await controlFleet(5);
    await fleet.run(2_000);
    const [owner] = running();
    const rest = [0, 1, 2, 3, 4].filter((i) => i !== owner);
    const byPeer = (peer: string | undefined) => nodes.findIndex((n) => n.peer === peer);
    // b ranks first once the owner is gone, a second: a holds b as just back from a flap (not
    // stable yet), so a names itself the owner, while b, which never holds itself unstable, names itself.
    const b = byPeer(rendezvousOwner(SENSOR, rest.map((i) => nodes[i]!.peer)));
    const a = byPeer(rendezvousOwner(SENSOR, rest.filter((i) => i !== b).map((i) => nodes[i]!.peer)));
    const members = planes[a]!.members.bind(planes[a]!);
    planes[a]!.members = () => members().map((m) => (m.peerId === nodes[b]!.peer ? { ...m, stateSince: fleet.clock.now(), upSince: fleet.clock.now() } : m));
    // Neither has the other's activation records yet (replication under loss lags).
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const records = nodes[self]!.activationRecords.bind(nodes[self]!);
      nodes[self]!.activationRecords = () => {
        const all = records();
        all.delete(nodes[other]!.peer);
        return all;
      };
    }
    const witness = rest.find((i) => i !== a && i !== b)!;
    await crash(owner!);
    let mostAtOnce = 0;
    for (let t = 0; t < 12_000; t += 10) {
      await fleet.run(10);
      mostAtOnce = Math.max(mostAtOnce, running().length);
    }
    expect(mostAtOnce).toBe(1);
    expect(running()).toHaveLength(1);
    expect([a, b]).toContain(running()[0]);
    // One owner per epoch, as a node that sees every record finds them.
    const owners = new Map<number, Set<string>>();
    for (const [peer, byName] of nodes[witness]!.activationRecords()) {
      const record = byName[SENSOR];
      if (record !== undefined) owners.set(record.epoch, new Set([...(owners.get(record.epoch) ?? []), peer]));
    }
    expect([...owners.values()].every((set) => set.size === 1)).toBe(true);
  });

  it('takes orders only of singletons it knows, each kind only from its own singleton, and keeps no fence for made-up ones', async () => {
    const { fleet, nodes, planes, running, view } = await controlFleet(3);
    await fleet.run(2_000);
    const [owner] = running();
    const member = [0, 1, 2].find((i) => i !== owner)!;
    const target = [0, 1, 2].find((i) => i !== owner && i !== member)!;
    // A member records activations of made-up singletons in its own (sealed) document, as a
    // modified node could, and orders under one: the record backs the order, the name does not.
    for (let n = 0; n < 50; n++) await fleet.pumpUntil(nodes[member]!.recordActivation(`made.up${n}`, { epoch: 1, since: fleet.clock.now(), active: true }));
    await fleet.run(2_000);
    const madeUp = await fleet.pumpUntil(planes[member]!.order(nodes[target]!.peer as PeerId, 'made.up0', { epoch: 1, owner: nodes[member]!.peer }, 'noop'));
    expect(madeUp).toMatchObject({ accepted: false, reason: 'failed', detail: 'made.up0 is not a singleton of this fleet' });
    expect(Object.keys(planes[target]!.fence.stats().newest)).toEqual([SENSOR]);
    // An executor bound to one singleton refuses orders of another, even from that one's real owner.
    const ran: string[] = [];
    planes[target]!.registerExecutor('claim.thing', (body) => void ran.push(body), { singleton: 'control.things' });
    const stamp = { epoch: view(owner!).epoch, owner: view(owner!).owner! };
    const wrong = await fleet.pumpUntil(planes[owner!]!.order(nodes[target]!.peer as PeerId, SENSOR, stamp, 'claim.thing', 'x'));
    expect(wrong).toMatchObject({ accepted: false, reason: 'failed', detail: `claim.thing orders come from control.things only, not ${SENSOR}` });
    expect(ran).toEqual([]);
    expect(await fleet.pumpUntil(planes[owner!]!.order(nodes[target]!.peer as PeerId, SENSOR, stamp, 'noop'))).toMatchObject({ accepted: true });
  });

  it('records two activations alive at once as a fleet event', async () => {
    const { fleet, nodes, running, view } = await controlFleet(3);
    await fleet.run(2_000);
    const [owner] = running();
    const other = [0, 1, 2].find((i) => i !== owner)!;
    // A faulty node claims the singleton while the owner still runs it.
    await fleet.pumpUntil(nodes[other]!.recordActivation(SENSOR, { epoch: view(owner!).epoch, since: fleet.clock.now(), active: true }));
    await fleet.run(3_000);
    const duplicates = nodes[0]!.events.list({ kind: 'placement.duplicate_activation' });
    expect(duplicates).toHaveLength(1);
    expect(duplicates[0]!.subject).toBe(SENSOR);
    expect(duplicates[0]!.detail).toContain(nodes[other]!.peer);
  });

  it('records a holder at an older epoch as a duplicate while its lease rounds say it runs it, and not once they stop', async () => {
    const { fleet, nodes, running, view, crash, alive } = await controlFleet(5);
    await fleet.run(2_000);
    const [first] = running();
    // A node records a newer epoch than the owner's while the owner runs it: both run it.
    const other = [...alive].find((i) => i !== first)!;
    await fleet.pumpUntil(nodes[other]!.recordActivation(SENSOR, { epoch: view(first!).epoch + 5, since: fleet.clock.now(), active: true }));
    await fleet.run(3_000);
    const watcher = [...alive].find((i) => i !== first && i !== other)!;
    expect(nodes[watcher]!.events.list({ kind: 'placement.duplicate_activation' }).map((e) => e.subject)).toEqual([SENSOR]);
    // The node whose record is older crashes: its record stays active, and a member that still held
    // it alive would see two records; it no longer announces, so that is a failover, not a duplicate.
    await fleet.pumpUntil(nodes[other]!.recordActivation(SENSOR, { epoch: view(first!).epoch + 5, since: fleet.clock.now(), active: false }));
    await fleet.run(3_000);
    const before = nodes[watcher]!.events.list({ kind: 'placement.duplicate_activation' }).length;
    // The watcher's failure detection stops, so it holds the crashed node alive for good (as the
    // last members to hear of a death in a large fleet do, for seconds).
    nodes[watcher]!.swim.stop();
    await crash(first!);
    await fleet.pumpUntil(nodes[other]!.recordActivation(SENSOR, { epoch: view(first!).epoch + 6, since: fleet.clock.now(), active: true }));
    await fleet.run(4_000);
    expect(nodes[watcher]!.swim.state(nodes[first!]!.peer)).toBe('alive');
    expect(nodes[watcher]!.events.list({ kind: 'placement.duplicate_activation' })).toHaveLength(before);
  });
});
