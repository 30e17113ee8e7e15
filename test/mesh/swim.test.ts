import { describe, expect, it } from 'vitest';
import { ManualClock, type MemberState, MemoryLogger, MemoryNetwork, type PeerId, PeerPenalties, SeededRandom, Swim, exchange, swimProtocol } from '../../mesh/index.ts';
import { settle, testIdentity } from '../helpers/mini-fleet.ts';

/** N SWIM instances on one in-memory network and virtual clock. */
class Cluster {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly peers: PeerId[];
  readonly swims: Swim[] = [];
  readonly changes: Array<{ at: number; observer: number; peer: string; state: MemberState }> = [];

  /** Streams each node opened to each other node (SWIM opens one per exchange). */
  readonly opened = new Map<string, number>();

  /** `view`: with it, each node probes in turn only the peers it names (by index). */
  constructor(size: number, view?: (self: number) => readonly number[]) {
    this.peers = Array.from({ length: size }, (_, i) => testIdentity(i).peerId as PeerId);
    for (let i = 0; i < size; i++) {
      const transport = this.network.createTransport(this.peers[i]!);
      const openStream = transport.openStream.bind(transport);
      transport.openStream = (peer, protocol, options) => {
        const key = `${i}>${this.peers.indexOf(peer)}`;
        this.opened.set(key, (this.opened.get(key) ?? 0) + 1);
        return openStream(peer, protocol, options);
      };
      const swim = new Swim({
        transport,
        clock: this.clock,
        random: new SeededRandom(i + 1),
        log: new MemoryLogger(),
        penalties: new PeerPenalties({ clock: this.clock, onExceeded: () => {} }),
        members: () => this.peers,
        isAdmitted: () => true,
        ...(view === undefined ? {} : { view: () => view(i).map((j) => this.peers[j]!) }),
        onChange: (peer, state) => this.changes.push({ at: this.clock.now(), observer: i, peer, state }),
      });
      this.swims.push(swim);
    }
    for (const swim of this.swims) swim.start();
  }

  async run(ms: number, stepMs = 50): Promise<void> {
    for (let t = 0; t < ms; t += stepMs) await this.clock.advanceAsync(stepMs, settle);
  }

  /** When every other node first saw `peer` in `state`, as ms after `since`; undefined if one did not. */
  seenBy(peer: number, state: MemberState, since: number): number[] | undefined {
    const times: number[] = [];
    for (let i = 0; i < this.swims.length; i++) {
      if (i === peer) continue;
      const change = this.changes.find((c) => c.observer === i && c.peer === this.peers[peer] && c.state === state && c.at >= since);
      if (change === undefined) return undefined;
      times.push(change.at - since);
    }
    return times;
  }

  crash(index: number): void {
    this.swims[index]!.stop();
    void this.network.lookup(this.peers[index]!)!.stop();
  }

  isolate(index: number, on: boolean): void {
    for (let j = 0; j < this.peers.length; j++) {
      if (j === index) continue;
      if (on) this.network.block(this.peers[index]!, this.peers[j]!);
      else this.network.unblock(this.peers[index]!, this.peers[j]!);
    }
  }
}

describe('SWIM failure detection', () => {
  it('does not gossip on the first incarnation it hears of a member, and still spreads its death', async () => {
    // Node 0 and node 2 probe only node 1; node 1 probes both. Node 0 hears node 2's incarnation
    // only from node 1's gossip, and node 1 heard it first-hand: nothing to pass on (each member
    // announces its own, and at a large fleet's start relaying those N² first hearings kept
    // hundreds of updates queued everywhere).
    const cluster = new Cluster(3, (self) => (self === 1 ? [0, 2] : [1]));
    await cluster.run(10_000);
    expect(cluster.swims[1]!.heardFrom(cluster.peers[2]!)).toBe(true);
    expect(cluster.swims[0]!.heardFrom(cluster.peers[2]!)).toBe(false);
    const crashedAt = cluster.clock.now();
    cluster.crash(2);
    await cluster.run(6_000);
    expect(cluster.seenBy(2, 'dead', crashedAt)).toBeDefined();
  });

  it('keeps a healthy cluster all alive, with no suspicion at all', async () => {
    const cluster = new Cluster(6);
    await cluster.run(20_000);
    expect(cluster.changes).toEqual([]);
    for (const swim of cluster.swims) expect([...swim.states().values()].every((m) => m.state === 'alive')).toBe(true);
  });

  it('marks a crashed member dead on every other member within 3 s', async () => {
    const cluster = new Cluster(10);
    await cluster.run(2_000);
    const crashedAt = cluster.clock.now();
    cluster.crash(7);
    await cluster.run(5_000);
    const times = cluster.seenBy(7, 'dead', crashedAt);
    expect(times).toBeDefined();
    if (process.env["SHOW_FIGURES"]) process.stderr.write(`detection ms: ${times!.join(",")}\n`);
    expect(Math.max(...times!)).toBeLessThanOrEqual(3_000);
    // Nobody else was suspected on the way.
    expect(cluster.changes.filter((c) => c.peer !== cluster.peers[7])).toEqual([]);
  });

  it('finds a silently partitioned member dead, and alive again after the heal (it refutes)', async () => {
    const cluster = new Cluster(6);
    await cluster.run(2_000);
    const cutAt = cluster.clock.now();
    cluster.isolate(2, true);
    await cluster.run(6_000);
    expect(cluster.seenBy(2, 'dead', cutAt)).toBeDefined();
    const healedAt = cluster.clock.now();
    cluster.isolate(2, false);
    await cluster.run(10_000);
    const back = cluster.seenBy(2, 'alive', healedAt);
    expect(back).toBeDefined();
    for (const swim of cluster.swims) expect([...swim.states().values()].every((m) => m.state === 'alive')).toBe(true);
  });

  it('keeps when a member came up across a suspicion it refutes, and moves it when it comes back from dead', async () => {
    const cluster = new Cluster(6);
    await cluster.run(2_000);
    const upBefore = cluster.swims.map((swim) => swim.member(cluster.peers[2]!)?.upSince);
    // Cut off briefly: every other member suspects it at once (its connections closed); some hold
    // it dead before it refutes, others see it refute first.
    const cutAt = cluster.clock.now();
    cluster.isolate(2, true);
    await cluster.run(450, 10);
    cluster.isolate(2, false);
    await cluster.run(4_000);
    const seen = (i: number) => cluster.changes.filter((c) => c.observer === i && c.peer === cluster.peers[2] && c.at >= cutAt);
    let refutedOnly = 0;
    cluster.swims.forEach((swim, i) => {
      if (i === 2) return;
      const member = swim.member(cluster.peers[2]!)!;
      expect(member.state).toBe('alive');
      expect(seen(i).some((c) => c.state === 'suspect')).toBe(true);
      const dead = seen(i).filter((c) => c.state === 'dead');
      if (dead.length === 0) {
        // A refuted suspicion: still up since before.
        refutedOnly++;
        expect(member.upSince).toBe(upBefore[i]);
      } else {
        // Back from dead: up since it came back.
        expect(member.upSince).toBe(seen(i).filter((c) => c.at >= dead.at(-1)!.at && c.state === 'alive').at(-1)!.at);
      }
    });
    expect(refutedOnly).toBeGreaterThan(0);
  });

  it('does not let a member back from a partition make the others hold live members dead', async () => {
    const cluster = new Cluster(8);
    await cluster.run(2_000);
    cluster.isolate(0, true);
    await cluster.run(8_000);
    // Node 0 holds everyone dead, and its dead verdicts wait to be gossiped.
    expect([...cluster.swims[0]!.states().values()].every((m) => m.state === 'dead')).toBe(true);
    const healedAt = cluster.clock.now();
    cluster.isolate(0, false);
    await cluster.run(10_000);
    const falseDeaths = cluster.changes.filter((c) => c.at >= healedAt && c.observer !== 0 && c.state === 'dead');
    expect(falseDeaths).toEqual([]);
    for (const swim of cluster.swims) expect([...swim.states().values()].every((m) => m.state === 'alive')).toBe(true);
  });

  it('announces a graceful leave as left, not dead', async () => {
    const cluster = new Cluster(5);
    await cluster.run(2_000);
    const at = cluster.clock.now();
    await cluster.swims[3]!.leave();
    cluster.crash(3);
    await cluster.run(3_000);
    expect(cluster.seenBy(3, 'left', at)).toBeDefined();
    expect(cluster.changes.some((c) => c.peer === cluster.peers[3] && c.state === 'dead')).toBe(false);
  });

  it('probes in turn only the members in its view, and still finds a crashed one dead everywhere', async () => {
    // A ring: each node's view is its two neighbours.
    const cluster = new Cluster(8, (self) => [(self + 1) % 8, (self + 7) % 8]);
    await cluster.run(10_000);
    expect(cluster.changes).toEqual([]);
    for (const [key] of cluster.opened) {
      const [from, to] = key.split('>').map(Number) as [number, number];
      expect([(from + 1) % 8, (from + 7) % 8]).toContain(to);
    }
    const crashedAt = cluster.clock.now();
    cluster.crash(5);
    await cluster.run(8_000);
    // Its two neighbours probe it; the others hear of it and check for themselves.
    expect(cluster.seenBy(5, 'dead', crashedAt)).toBeDefined();
  });

  it('probes a member outside its view that it never heard from when a dial to it fails, and finds it dead', async () => {
    // Node 4 is cut off from the start; nobody has it in view (as nobody could connect to it).
    const cluster = new Cluster(5, (self) => [0, 1, 2, 3].filter((j) => j !== self));
    for (let j = 0; j < 4; j++) cluster.network.block(cluster.peers[4]!, cluster.peers[j]!);
    await cluster.run(6_000);
    expect(cluster.changes.filter((c) => c.peer === cluster.peers[4])).toEqual([]);
    const hintedAt = cluster.clock.now();
    // A keeper's dial to it failed (on one node), which never heard from it: it probes it.
    cluster.swims[0]!.dialFailed(cluster.peers[4]!);
    await cluster.run(6_000);
    const times = cluster.seenBy(4, 'dead', hintedAt);
    expect(times).toBeDefined();
  });

  it('answers a suspicion of an incarnation older than the one it holds alive, so a node that never heard of the member drops it', async () => {
    // Node 0 probes nodes 2 and 3 but cannot reach node 2, nor can its only helper (node 3); node
    // 1 hears node 2 directly. Nobody gossips node 2's first incarnation on, so node 0 holds it at
    // 0 and suspects it at 0 — a suspicion node 2 would not refute (it is at a higher one).
    const views: Record<number, number[]> = { 0: [2, 3], 1: [0, 2, 3], 2: [1], 3: [0] };
    const cluster = new Cluster(4, (self) => views[self]!);
    const two = cluster.peers[2]!;
    cluster.network.block(cluster.peers[0]!, two);
    cluster.network.block(cluster.peers[3]!, two);
    await cluster.run(4_000);
    const suspected = cluster.changes.find((c) => c.observer === 0 && c.peer === two && c.state === 'suspect');
    expect(suspected).toBeDefined();
    expect(cluster.swims[1]!.member(two)).toMatchObject({ state: 'alive' });
    expect(cluster.swims[1]!.heardFrom(two)).toBe(true);
    // Node 1, holding node 2 alive at its real incarnation, answers the stale suspicion with it.
    const alive = cluster.changes.find((c) => c.observer === 0 && c.peer === two && c.state === 'alive' && c.at > suspected!.at);
    expect(alive).toBeDefined();
    expect(alive!.at - suspected!.at).toBeLessThan(3_000);
    expect(cluster.changes.some((c) => c.observer === 0 && c.peer === two && c.state === 'dead' && c.at < alive!.at)).toBe(false);
    expect(cluster.swims[0]!.heardFrom(two)).toBe(true);
    expect(cluster.swims[0]!.member(two)!.incarnation).toBe(cluster.swims[1]!.member(two)!.incarnation);
    // Nobody else took node 2 for dead on node 0's word.
    expect(cluster.changes.filter((c) => c.observer !== 0 && c.state === 'dead')).toEqual([]);
  });
});

describe('SWIM and the updates a peer sends it', () => {
  /** Node 0 and node 1 probe each other; node 2 is a bare transport that speaks SWIM by hand. */
  async function pair() {
    const clock = new ManualClock();
    const network = new MemoryNetwork();
    const peers = [0, 1, 2].map((i) => testIdentity(i).peerId as PeerId);
    let members: readonly PeerId[] = peers;
    const swims = [0, 1].map(
      (i) =>
        new Swim({
          transport: network.createTransport(peers[i]!),
          clock,
          random: new SeededRandom(i + 1),
          log: new MemoryLogger(),
          penalties: new PeerPenalties({ clock, onExceeded: () => {} }),
          members: () => members,
          isAdmitted: () => true,
          view: () => [peers[1 - i]!],
        }),
    );
    const raw = network.createTransport(peers[2]!);
    for (const swim of swims) swim.start();
    for (let t = 0; t < 2_000; t += 50) await clock.advanceAsync(50, settle);
    let seq = 0;
    /** A ping from node 2 to node 0 with `updates`; the updates node 0's ack carries. */
    const ping = async (updates: Array<{ peer: string; state: MemberState; incarnation: number }>) => {
      const answer = exchange(raw, clock, peers[0]!, swimProtocol, { type: 'ping', body: { seq: ++seq, inc: 1, updates } }, 1_000);
      await clock.advanceAsync(10, settle);
      const ack = await answer;
      expect(ack?.type).toBe('ack');
      return ack!.body.updates;
    };
    return { peers, swims, ping, revoke: (peer: PeerId) => (members = members.filter((p) => p !== peer)) };
  }

  it('answers a leave older than the incarnation it holds alive with that incarnation', async () => {
    const { peers, swims, ping } = await pair();
    const one = swims[0]!.member(peers[1]!)!;
    expect(swims[0]!.heardFrom(peers[1]!)).toBe(true);
    const updates = await ping([{ peer: peers[1]!, state: 'left', incarnation: one.incarnation - 1 }]);
    expect(updates).toContainEqual({ peer: peers[1]!, state: 'alive', incarnation: one.incarnation });
    expect(swims[0]!.member(peers[1]!)!.state).toBe('alive');
  });

  it('stops gossiping about a member once it is no longer one', async () => {
    const { peers, swims, ping, revoke } = await pair();
    const incarnation = swims[0]!.member(peers[1]!)!.incarnation;
    // Node 0 suspects node 1 on node 2's word, and node 1 refutes: news about it is queued to spread.
    await ping([{ peer: peers[1]!, state: 'suspect', incarnation }]);
    expect(swims[0]!.member(peers[1]!)!.incarnation).toBeGreaterThan(incarnation);
    revoke(peers[1]!);
    swims[0]!.refreshMembers();
    expect(swims[0]!.member(peers[1]!)).toBeUndefined();
    const updates = await ping([]);
    expect(updates.filter((u) => u.peer === peers[1])).toEqual([]);
  });
});
