import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../agent/api-client.ts';
import { ApiError } from '../../agent/api-client.ts';
import type { FleetEvent } from '../../crdt-schema/index.ts';
import { type CliFleet, eventually, startCliFleet } from '../helpers/cli-fleet.ts';

const SENSOR = 'sensor.instance-silence';

interface SingletonView {
  name: string;
  owner: string | null;
  epoch: number;
  since: number | null;
  active: boolean;
  ownerState: string | null;
}

interface ControlStatus {
  self: { peerId: string };
  singletons: SingletonView[];
  lease: { valid: boolean; voters: number; formerVoters: number[] };
  actors: { mailboxes: Array<{ name: string }> };
  members: Array<{ peerId: string; state: string }>;
}

const sensorOf = async (client: ApiClient): Promise<SingletonView> => (await client.get<ControlStatus>('/api/v1/status')).singletons.find((s) => s.name === SENSOR)!;
const silentEvents = async (client: ApiClient): Promise<FleetEvent[]> => (await client.get<{ events: FleetEvent[] }>('/api/v1/events?kind=system.instance_silent')).events;

/**
 * `eventually`, and when it fails, what each running node held then (its lease, voters and the
 * sensor's record): a wait that runs out in CI says why.
 */
async function explained<T>(fleet: CliFleet, check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  try {
    return await eventually(check, timeoutMs, what);
  } catch (error) {
    const views = await Promise.all(
      fleet.nodes.map(async (node, i) => {
        if (!node.running) return `n${i} not running`;
        let status: ControlStatus;
        try {
          status = await fleet.clients[i]!.get<ControlStatus>('/api/v1/status');
        } catch (e) {
          return `n${i}: ${String(e)}`;
        }
        const own = status.singletons.find((s) => s.name === SENSOR);
        const members = status.members.map((m) => `${m.peerId.slice(-6)}:${m.state}`).join(' ');
        // Its last words on the sensor, placement and the lease: why it did (or did not) stop or take over.
        const said = node.stderr
          .split('\n')
          .filter((line) => line.includes(SENSOR) || /lease|placement/i.test(line))
          .slice(-6)
          .map((line) => `    ${line.slice(0, 300)}`);
        return [`n${i} ${status.self.peerId.slice(-6)} lease ${JSON.stringify(status.lease)} sensor ${JSON.stringify({ ...own, owner: own?.owner?.slice(-6) })} members ${members}`, ...said].join('\n');
      }),
    );
    throw new Error(`${(error as Error).message}\n${views.join('\n')}`);
  }
}

/** Five real node processes with fault injection on: partitions at the mesh level, stale orders. */
describe('control plane across real processes', () => {
  let fleet: CliFleet;
  const peer = (i: number): string => fleet.nodes[i]!.ready.peerId;
  const indexOf = (peerId: string | null): number => fleet.nodes.findIndex((n) => n.ready.peerId === peerId);

  beforeAll(async () => {
    process.env['POWERNODE_FAULT_INJECTION'] = '1';
    fleet = await startCliFleet(5, 'powernode-control-');
    // One owner, seen by all, where placement leaves it: a member counts for ownership once it
    // has been up for 3 s (placement's stableMs), so the last joiner may take the sensor over up
    // to then — which moved it between reading the owner and cutting it off (seen once).
    const settled = Date.now() + 3_500;
    await explained(fleet, async () => {
      const views = await Promise.all(fleet.clients.map(sensorOf));
      const one = views.every((v) => v.active && v.owner === views[0]!.owner && v.epoch === views[0]!.epoch);
      return one && views[0]!.since !== null && views[0]!.since <= Date.now() - 1_000 && Date.now() >= settled ? true : undefined;
    }, 30_000, 'the sensor placed');
  }, 120_000);

  afterAll(async () => {
    delete process.env['POWERNODE_FAULT_INJECTION'];
    await fleet?.stop();
  });

  it('partitioned 2|3, the minority stops its singleton, the majority runs it with a higher epoch; healed, one owner remains and old-epoch orders are refused', async () => {
    const before = await sensorOf(fleet.clients[0]!);
    const owner = indexOf(before.owner);
    const minority = [owner, (owner + 1) % 5];
    const majority = [0, 1, 2, 3, 4].filter((i) => !minority.includes(i));
    const oldStamp = { epoch: before.epoch, owner: before.owner! };
    for (const i of minority) await fleet.clients[i]!.post('/api/v1/faults/isolate', { peers: majority.map(peer) });
    for (const i of majority) await fleet.clients[i]!.post('/api/v1/faults/isolate', { peers: minority.map(peer) });

    // The old owner records its own stop (lost lease); the majority activates the next epoch.
    await explained(fleet, async () => {
      const own = await sensorOf(fleet.clients[owner]!);
      return own.owner === peer(owner) && !own.active ? true : undefined;
    }, 10_000, 'the minority owner stopped');
    await explained(fleet, async () => {
      const views = await Promise.all(majority.map((i) => sensorOf(fleet.clients[i]!)));
      return views.every((v) => v.active && v.epoch > oldStamp.epoch && majority.includes(indexOf(v.owner)) && v.owner === views[0]!.owner) ? views[0] : undefined;
    }, 15_000, 'the majority took the singleton over');
    // (A higher epoch, the wait asks, not necessarily the next: a claim given up earlier, another member ranking higher, used one too.)
    for (const i of minority) expect((await fleet.clients[i]!.get<ControlStatus>('/api/v1/status')).lease.valid).toBe(false);

    for (const client of fleet.clients) await client.post('/api/v1/faults/heal', { peers: [] });
    const final = await explained(fleet, async () => {
      const views = await Promise.all(fleet.clients.map(sensorOf));
      return views.every((v) => v.active && v.owner === views[0]!.owner && v.epoch === views[0]!.epoch) ? views[0] : undefined;
    }, 20_000, 'one owner after the heal');
    expect(final.epoch).toBeGreaterThan(oldStamp.epoch);
    // Exactly one node runs it: the others' records agree, and only one holds a lease-backed activation.
    const running = (await Promise.all(fleet.clients.map((c) => c.get<ControlStatus>('/api/v1/status')))).filter((s) => s.actors.mailboxes.some((a) => a.name === `singleton/${SENSOR}`));
    expect(running.map((s) => s.self.peerId)).toEqual([final.owner]);

    await explained(fleet, async () => ((await Promise.all(fleet.clients.map((c) => c.get<ControlStatus>('/api/v1/status')))).every((s) => s.members.every((m) => m.state === 'alive')) ? true : undefined), 20_000, 'every member alive everywhere');
    // The deposed owner's orders are refused everywhere, the current owner's taken (an order is
    // believed only from the owner it names).
    const oldOwner = [0, 1, 2, 3, 4].find((i) => peer(i) === oldStamp.owner)!;
    const newOwner = [0, 1, 2, 3, 4].find((i) => peer(i) === final.owner)!;
    for (let i = 0; i < 5; i++) {
      const to = peer(i);
      const stale = await fleet.clients[oldOwner]!.post<{ accepted: boolean; reason?: string; current?: { epoch: number } }>('/api/v1/faults/order', { to, singleton: SENSOR, ...oldStamp });
      expect(stale).toMatchObject({ accepted: false, reason: 'superseded', current: { epoch: final.epoch } });
      const current = await fleet.clients[newOwner]!.post<{ accepted: boolean; reason?: string; detail?: string }>('/api/v1/faults/order', { to, singleton: SENSOR, epoch: final.epoch, owner: final.owner });
      expect(current).toMatchObject({ accepted: true });
    }
    // Another member sending in the owner's name is refused.
    const other = [0, 1, 2, 3, 4].find((i) => i !== newOwner)!;
    const forged = await fleet.clients[other]!.post<{ accepted: boolean; detail?: string }>('/api/v1/faults/order', { to: peer((other + 1) % 5 === newOwner ? (other + 2) % 5 : (other + 1) % 5), singleton: SENSOR, epoch: final.epoch, owner: final.owner });
    expect(forged).toMatchObject({ accepted: false, detail: expect.stringMatching(/as its sender but came from/) });
    const events = (await fleet.clients[0]!.get<{ events: FleetEvent[] }>('/api/v1/events?kind=placement.duplicate_activation')).events;
    expect(events).toEqual([]);
  }, 90_000);

  it('reports each kill -9 exactly once, across a failover of the sensor itself, and turns orders to the dead into prompt dead letters', async () => {
    const owner = indexOf((await sensorOf(fleet.clients[0]!)).owner);
    const victim = [0, 1, 2, 3, 4].find((i) => i !== owner)!;
    const killedAt = Date.now();
    await fleet.nodes[victim]!.kill9();
    const watchers = () => [0, 1, 2, 3, 4].filter((i) => fleet.nodes[i]!.running);
    await explained(fleet, async () => ((await Promise.all(watchers().map((i) => silentEvents(fleet.clients[i]!)))).every((e) => e.some((x) => x.subject === peer(victim) && x.at >= killedAt)) ? true : undefined), 15_000, 'the victim reported');

    // An order to the dead node fails at once: it is a dead letter, not a hang.
    const from = watchers()[0]!;
    const started = Date.now();
    const error = await fleet.clients[from]!.post('/api/v1/faults/order', { to: peer(victim), singleton: SENSOR, epoch: 1, owner: peer(from) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(String(error)).toMatch(/DeadLetterError/);
    expect(Date.now() - started).toBeLessThan(1_000);

    const ownerKilledAt = Date.now();
    await fleet.nodes[owner]!.kill9();
    await explained(fleet, async () => {
      const views = await Promise.all(watchers().map((i) => sensorOf(fleet.clients[i]!)));
      return views.every((v) => v.active && v.owner !== peer(owner) && v.owner === views[0]!.owner) ? true : undefined;
    }, 15_000, 'the sensor failed over');
    await explained(fleet, async () => ((await Promise.all(watchers().map((i) => silentEvents(fleet.clients[i]!)))).every((e) => e.some((x) => x.subject === peer(owner) && x.at >= ownerKilledAt)) ? true : undefined), 15_000, 'the old owner reported');
    await new Promise((r) => setTimeout(r, 2_000));
    for (const i of watchers()) {
      // (The partition above made members silent too: only what followed the kill counts here.)
      const events = (await silentEvents(fleet.clients[i]!)).filter((e) => e.severity === 'high' && e.at >= killedAt);
      expect(events.filter((e) => e.subject === peer(victim))).toHaveLength(1);
      expect(events.filter((e) => e.subject === peer(owner))).toHaveLength(1);
    }
  }, 90_000);
});
