import { describe, expect, it } from 'vitest';
import { ConnectionKeeper, ManualClock, MemoryLogger, MemoryNetwork, type PeerId, SeededRandom } from '../../mesh/index.ts';
import { fakePeerId, settle } from '../helpers/mini-fleet.ts';

describe('ConnectionKeeper', () => {
  it('reconnects to members, backing off while one is unreachable and connecting once it is back', async () => {
    const clock = new ManualClock();
    const network = new MemoryNetwork();
    const self = network.createTransport(fakePeerId(0));
    const reachable = network.createTransport(fakePeerId(1));
    const down = fakePeerId(2);
    const attempts: number[] = [];
    const dial = self.dial.bind(self);
    self.dial = async (peer, addresses, options) => {
      if (peer === down) attempts.push(clock.now());
      return dial(peer, addresses, options);
    };
    const members = new Map<PeerId, readonly string[]>([
      [reachable.localPeer, ['/memory/a']],
      [down, ['/memory/b']],
    ]);
    const keeper = new ConnectionKeeper({ transport: self, clock, random: new SeededRandom(3), log: new MemoryLogger(), candidates: () => members });
    keeper.start();
    for (let i = 0; i < 200; i++) await clock.advanceAsync(100, settle); // 20 s
    expect(self.connectedPeers()).toEqual([reachable.localPeer]);
    // 1 s doubling with ±25 % jitter, on 1 s ticks: a handful of attempts in 20 s, spreading out.
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(attempts.length).toBeLessThanOrEqual(7);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
    expect(gaps.at(-1)!).toBeGreaterThanOrEqual(4_000);

    network.createTransport(down);
    for (let i = 0; i < 400 && !self.connectedPeers().includes(down); i++) await clock.advanceAsync(100, settle);
    expect(self.connectedPeers()).toContain(down);
    keeper.stop();
  });

  it('dials at most its target number of members', async () => {
    const clock = new ManualClock();
    const network = new MemoryNetwork();
    const self = network.createTransport(fakePeerId(0));
    const members = new Map<PeerId, readonly string[]>();
    for (let i = 1; i <= 12; i++) members.set(network.createTransport(fakePeerId(i)).localPeer, ['/memory/x']);
    const keeper = new ConnectionKeeper({ transport: self, clock, random: new SeededRandom(4), log: new MemoryLogger(), candidates: () => members, targetPeers: 5 });
    keeper.start();
    for (let i = 0; i < 50; i++) await clock.advanceAsync(100, settle);
    expect(self.connectedPeers().length).toBe(5);
    keeper.stop();
  });

  it('tells failure detection of each failed dial, and reads the candidates only while it has fewer connections than its target', async () => {
    const clock = new ManualClock();
    const network = new MemoryNetwork();
    const self = network.createTransport(fakePeerId(0));
    const members = new Map<PeerId, readonly string[]>();
    for (let i = 1; i <= 3; i++) members.set(network.createTransport(fakePeerId(i)).localPeer, ['/memory/x']);
    const down = fakePeerId(9);
    members.set(down, ['/memory/y']);
    const failed: PeerId[] = [];
    let reads = 0;
    const keeper = new ConnectionKeeper({
      transport: self,
      clock,
      random: new SeededRandom(5),
      log: new MemoryLogger(),
      candidates: () => {
        reads++;
        return members;
      },
      isCandidate: (peer) => members.has(peer),
      targetPeers: 3,
      onDialFailed: (peer) => failed.push(peer),
    });
    keeper.start();
    for (let i = 0; i < 30; i++) await clock.advanceAsync(100, settle);
    expect(self.connectedPeers()).toHaveLength(3);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((peer) => peer === down)).toBe(true);
    // Three connections are its target: ticks after that do not build the candidate list.
    const readsThen = reads;
    for (let i = 0; i < 50; i++) await clock.advanceAsync(100, settle);
    expect(reads).toBe(readsThen);
    // One goes: it reads the candidates again and dials.
    await self.hangUp(fakePeerId(1));
    for (let i = 0; i < 20; i++) await clock.advanceAsync(100, settle);
    expect(reads).toBeGreaterThan(readsThen);
    expect(self.connectedPeers()).toHaveLength(3);
    keeper.stop();
  });

  it('looks every 5 s while it has its target, and redials at once when a connection closes', async () => {
    const clock = new ManualClock();
    const network = new MemoryNetwork();
    const self = network.createTransport(fakePeerId(0));
    const members = new Map<PeerId, readonly string[]>();
    for (let i = 1; i <= 4; i++) members.set(network.createTransport(fakePeerId(i)).localPeer, ['/memory/x']);
    const keeper = new ConnectionKeeper({ transport: self, clock, random: new SeededRandom(6), log: new MemoryLogger(), candidates: () => members, isCandidate: (peer) => members.has(peer), targetPeers: 3 });
    keeper.start();
    for (let i = 0; i < 30; i++) await clock.advanceAsync(100, settle);
    expect(self.connectedPeers()).toHaveLength(3);
    // Satisfied: two looks in 10 s (each reads the connections once), not ten.
    let looks = 0;
    const connectedPeers = self.connectedPeers.bind(self);
    self.connectedPeers = () => {
      looks++;
      return connectedPeers();
    };
    for (let i = 0; i < 100; i++) await clock.advanceAsync(100, settle);
    expect(looks).toBe(2);
    // A connection closes: it dials another member within the instant, not at its next look.
    const [gone] = self.connectedPeers();
    await self.hangUp(gone!);
    expect(self.connectedPeers()).toHaveLength(2);
    await clock.advanceAsync(0, settle);
    await clock.advanceAsync(1, settle);
    expect(self.connectedPeers()).toHaveLength(3);
    keeper.stop();
  });
});
