import { describe, expect, it } from 'vitest';
import { type PeerId, SeededRandom } from '../../mesh/index.ts';
import { NodeClock, SimClock } from '../../sim/clock.ts';
import { SimNetwork } from '../../sim/network.ts';
import { SimStorage } from '../../sim/storage.ts';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function runFor(sim: SimClock, ms: number): Promise<void> {
  const until = sim.now() + ms;
  while (sim.step(until) > 0) await settle();
  await settle();
}

describe('simulated clock', () => {
  it('fires timers in due order, ties in creation order, and holds a paused node until it resumes', async () => {
    const sim = new SimClock(0);
    const fired: string[] = [];
    const a = new NodeClock(sim, 0);
    const b = new NodeClock(sim, 1, { ms: 5_000 });
    a.setTimeout(() => fired.push('a30'), 30);
    b.setTimeout(() => fired.push('b10'), 10);
    a.setTimeout(() => fired.push('a10'), 10);
    const cancelled = a.setTimeout(() => fired.push('never'), 5);
    a.clearTimeout(cancelled);
    sim.pause(1);
    b.setTimeout(() => fired.push('b20'), 20);
    await runFor(sim, 25);
    expect(fired).toEqual(['a10']);
    expect(b.now()).toBe(sim.now() + 5_000);
    sim.resume(1);
    await runFor(sim, 10);
    expect(fired).toEqual(['a10', 'b10', 'b20', 'a30']);
    b.setTimeout(() => fired.push('lost'), 1);
    sim.cancelAll(1);
    await runFor(sim, 10);
    expect(fired).not.toContain('lost');
  });
});

describe('simulated storage', () => {
  it('keeps resolved writes across a process crash, loses recent unsynced ones on power loss, and keeps synced ones', async () => {
    let now = 0;
    const storage = new SimStorage(() => now);
    const v = (s: string) => new TextEncoder().encode(s);
    await storage.put(['old'], v('1'));
    now = 10_000;
    await storage.batch([{ type: 'put', key: ['synced'], value: v('2') }], { sync: true });
    await storage.put(['recent'], v('3'));
    await storage.put(['old'], v('changed'));
    storage.crash();
    storage.reopen();
    expect(new TextDecoder().decode(await storage.get(['recent']))).toBe('3');
    storage.crash({ powerLoss: true });
    storage.reopen();
    expect(await storage.get(['recent'])).toBeUndefined();
    expect(new TextDecoder().decode(await storage.get(['old']))).toBe('1');
    expect(new TextDecoder().decode(await storage.get(['synced']))).toBe('2');
    storage.corruptReads(new SeededRandom(1), 1);
    expect(new TextDecoder().decode(await storage.get(['synced']))).not.toBe('2');
  });
});

describe('simulated network', () => {
  it('delivers frames after the link delay, in order, and resets streams that lose a frame or cross a partition', async () => {
    const sim = new SimClock(0);
    const network = new SimNetwork(sim, new SeededRandom(3), { minDelayMs: 10, meanDelayMs: 10, jitterMs: 0, loss: 0 });
    const [a, b] = [network.createTransport('a' as PeerId, 0), network.createTransport('b' as PeerId, 1)];
    const received: Array<{ at: number; frame: string }> = [];
    b.handle('/t', (stream) => void (async () => {
      try {
        for await (const frame of stream) received.push({ at: sim.now(), frame: new TextDecoder().decode(frame) });
      } catch {
        received.push({ at: sim.now(), frame: 'reset' });
      }
    })(), { maxFrameBytes: 1024 });
    const dialing = a.openStream('b' as PeerId, '/t', { maxFrameBytes: 1024 });
    await runFor(sim, 30);
    const stream = await dialing;
    const sentAt = sim.now();
    for (const text of ['1', '2', '3']) await stream.send(new TextEncoder().encode(text));
    await runFor(sim, 30);
    expect(received.map((r) => r.frame)).toEqual(['1', '2', '3']);
    expect(received[0]!.at - sentAt).toBe(10);

    network.setDefaults({ minDelayMs: 10, meanDelayMs: 10, jitterMs: 0, loss: 1 });
    await stream.send(new TextEncoder().encode('lost'));
    await runFor(sim, 30);
    expect(received.at(-1)!.frame).toBe('reset');

    network.setDefaults({ minDelayMs: 10, meanDelayMs: 10, jitterMs: 0, loss: 0 });
    network.partition(['a' as PeerId], ['b' as PeerId]);
    expect(a.connectedPeers()).toEqual([]);
    const blocked = a.dial('b' as PeerId, []).catch((error: unknown) => error);
    await runFor(sim, 2_500);
    expect(String(await blocked)).toContain('not reachable');
    network.healAll();
    const again = a.dial('b' as PeerId, []);
    await runFor(sim, 50);
    await again;
    expect(a.connectedPeers()).toEqual(['b']);
  });
});
