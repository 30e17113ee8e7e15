import { describe, expect, it } from 'vitest';
import { ExchangeAbortedError, FrameTooLargeError, headsDigest, type PeerId, type ProcessResult, type ProcessRunner, type RequestHandler, SeededRandom, WireError, firstFrame } from '../../mesh/index.ts';
import * as A from '@automerge/automerge';
import { NodeClock, SimClock } from '../../sim/clock.ts';
import { SharedDocuments } from '../../sim/fleet.ts';
import { SimNetwork } from '../../sim/network.ts';
import { SimProcesses } from '../../sim/processes.ts';
import { SimStorage } from '../../sim/storage.ts';
import { copiesOf } from '../../sim/bytes.ts';
import { runProcessRunnerSuite } from '../ports/process-runner.suite.ts';

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
    // An instant whose only timers are a paused node's is not the end of the run: time went on to 25.
    expect(sim.now()).toBe(25);
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

  it('hands out each value a range reads as a copy of its own, large, small or empty, founding or written', async () => {
    const storage = new SimStorage(() => 0);
    const big = new Uint8Array(5_000).fill(7);
    storage.load([{ key: ['r', 'a'], value: Uint8Array.of(1, 2) }]);
    // A Buffer's slice is a view: what was written must not change with the writer's Buffer.
    const written = Buffer.from([3]);
    await storage.put(['r', 'b'], written);
    written[0] = 99;
    await storage.put(['r', 'c'], big);
    await storage.put(['r', 'd'], new Uint8Array(0));
    await storage.put(['r', 'e'], Uint8Array.of(4, 5));
    const first = await storage.range(['r']);
    expect(first.map((e) => [...e.value.subarray(0, 2)])).toEqual([[1, 2], [3], [7, 7], [], [4, 5]]);
    for (const entry of first) entry.value.fill(0);
    const again = await storage.range(['r']);
    expect(again.map((e) => [...e.value.subarray(0, 2)])).toEqual([[1, 2], [3], [7, 7], [], [4, 5]]);
    expect(again[2]!.value.length).toBe(5_000);
    // Side by side in one buffer, yet none reaches into another's bytes, either way.
    again[1]!.value.set([9]);
    expect([...again[0]!.value, ...again[4]!.value]).toEqual([1, 2, 4, 5]);
    again[0]!.value.set([8, 8]);
    again[4]!.value.set([8, 8]);
    expect([...again[1]!.value]).toEqual([9]);
  });

  it('copies many small values into bounded buffers, and corrupts a range read the same way for the same seed', async () => {
    const values = Array.from({ length: 300 }, (_, i) => new Uint8Array(1_000).fill(i % 251));
    const copies = copiesOf(values);
    expect(copies.every((copy, i) => copy !== values[i] && copy.length === 1_000 && copy[999] === i % 251)).toBe(true);
    expect(Math.max(...copies.map((copy) => copy.buffer.byteLength))).toBeLessThanOrEqual(64 * 1024);
    const read = async (): Promise<{ bytes: number[][]; corrupted: number }> => {
      const storage = new SimStorage(() => 0);
      storage.load(values.slice(0, 50).map((value, i) => ({ key: ['v', String(i).padStart(3, '0')], value })));
      storage.corruptReads(new SeededRandom(7), 0.3);
      const entries = await storage.range(['v'], { limit: 40 });
      return { bytes: entries.map((e) => [...e.value]), corrupted: storage.corruptedReads };
    };
    const one = await read();
    expect(one.bytes).toHaveLength(40);
    expect(one.corrupted).toBeGreaterThan(0);
    expect(one.corrupted).toBeLessThan(40);
    expect(one.bytes.filter((bytes, i) => bytes.some((b) => b !== i % 251)).length).toBe(one.corrupted);
    expect(await read()).toEqual(one);
  });

  it('founds storages on shared entries: each one writes and deletes above them on its own, in order, through crashes', async () => {
    let now = 0;
    const v = (s: string) => new TextEncoder().encode(s);
    const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));
    const listing = async (storage: SimStorage, prefix: string[] = ['d']) => (await storage.range(prefix)).map((e) => `${e.key.join('/')}=${text(e.value)}`);
    const founded = [{ key: ['d', 'b'], value: v('B') }, { key: ['d', 'd'], value: v('D') }, { key: ['d', 'a'], value: v('A') }, { key: ['e', 'x'], value: v('X') }];
    const [one, two] = [new SimStorage(() => now), new SimStorage(() => now)];
    await one.put(['d', 'a'], v('written before'));
    await one.put(['d', 'c'], v('own'));
    one.load(founded);
    two.load(founded);
    // The founding entry replaces what was written at its key; the rest stays.
    expect(await listing(one)).toEqual(['d/a=A', 'd/b=B', 'd/c=own', 'd/d=D']);
    expect(await listing(two)).toEqual(['d/a=A', 'd/b=B', 'd/d=D']);
    expect([one.size, two.size]).toEqual([5, 4]);
    now = 10_000;
    await one.put(['d', 'b'], v('B2'));
    await one.delete(['d', 'd']);
    await one.put(['d', 'e'], v('E'));
    expect(await listing(one)).toEqual(['d/a=A', 'd/b=B2', 'd/c=own', 'd/e=E']);
    expect(await one.range(['d'], { limit: 2 })).toHaveLength(2);
    expect(text(await one.get(['d', 'd']))).toBeUndefined();
    expect(one.size).toBe(5);
    // The other storage, founded on the same entries, saw none of it.
    expect(await listing(two)).toEqual(['d/a=A', 'd/b=B', 'd/d=D']);
    expect(text(await two.get(['d', 'b']))).toBe('B');
    // A power loss undoes the recent unsynced writes: the founding entries are back.
    one.crash({ powerLoss: true });
    one.reopen();
    expect(await listing(one)).toEqual(['d/a=A', 'd/b=B', 'd/c=own', 'd/d=D']);
    expect(await listing(one, ['e'])).toEqual(['e/x=X']);
    // Reads are copies: changing one changes nothing stored, here or in the other storage.
    (await one.get(['d', 'a']))![0] = 0;
    expect(text(await two.get(['d', 'a']))).toBe('A');
    expect(text(await one.get(['d', 'a']))).toBe('A');
    await one.deleteRange(['d']);
    expect(await listing(one)).toEqual([]);
    expect(await listing(two)).toEqual(['d/a=A', 'd/b=B', 'd/d=D']);
  });
});

describe('shared documents of a simulated fleet', () => {
  it('gives stores the one instance loaded from equal records while it is held, a fresh one for other bytes', () => {
    const shared = new SharedDocuments();
    const one = A.save(A.change(A.init<{ n?: number }>(), (d) => (d.n = 1)));
    const two = A.save(A.change(A.init<{ n?: number }>(), (d) => (d.n = 2)));
    const docId = 'node/a' as never;
    let fresh = 0;
    // What a store does: load the records, then hold the instance at its digest.
    const open = (bytes: Uint8Array) => {
      const doc = shared.load(docId, [bytes], () => (fresh++, A.load(bytes)));
      return { doc: shared.hold(docId, headsDigest(A.getHeads(doc)), doc), digest: headsDigest(A.getHeads(doc)) };
    };
    const first = open(one);
    // Equal bytes in another array (each store reads its own copy) give the same instance.
    expect(open(Uint8Array.from(one)).doc).toBe(first.doc);
    expect(fresh).toBe(1);
    // Other bytes of the same document are not taken for them.
    const second = open(two);
    expect(second.doc).not.toBe(first.doc);
    expect(A.toJS(second.doc)).toEqual({ n: 2 });
    expect(fresh).toBe(2);
    expect(shared.size).toBe(2);
    // Two holders of the first version: it stays until both let go.
    shared.release(docId, first.digest);
    expect(shared.size).toBe(2);
    shared.release(docId, first.digest);
    expect(shared.size).toBe(1);
    // Nothing holds that instance any more: the same bytes load afresh.
    expect(open(Uint8Array.from(one)).doc).not.toBe(first.doc);
    expect(fresh).toBe(3);
    // The bytes are kept as a copy: a Buffer given, then changed, is not what is matched later.
    const three = A.save(A.change(A.init<{ n?: number }>(), (d) => (d.n = 3)));
    const given = Buffer.from(three);
    const third = open(given);
    given.fill(0);
    expect(open(Uint8Array.from(three)).doc).toBe(third.doc);
    expect(fresh).toBe(4);
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

describe('simulated network streams', () => {
  it('releases both ends of a stream once both closed, whichever closed first, and both ends of one reset', async () => {
    const sim = new SimClock(0);
    const network = new SimNetwork(sim, new SeededRandom(3), { minDelayMs: 1, meanDelayMs: 1, jitterMs: 0, loss: 0 });
    const [a] = [network.createTransport('a' as PeerId, 0), network.createTransport('b' as PeerId, 1)];
    const b = network.lookup('b' as PeerId)!;
    // The far end answers and closes at once (as SWIM and the lease do), before the asker closes.
    b.handle('/echo', (stream) => void (async () => {
      for await (const frame of stream) {
        await stream.send(frame);
        await stream.close();
        break;
      }
    })().catch(() => undefined), { maxFrameBytes: 1024 });
    for (let i = 0; i < 20; i++) {
      const opening = a.openStream('b' as PeerId, '/echo', { maxFrameBytes: 1024 });
      await runFor(sim, 5);
      const stream = await opening;
      await stream.send(new Uint8Array([i]));
      const reading = (async () => {
        for await (const frame of stream) return frame[0];
        return undefined;
      })();
      await runFor(sim, 5);
      expect(await reading).toBe(i);
      await stream.close();
      await runFor(sim, 5);
    }
    expect(network.openStreams).toBe(0);
    const opening = a.openStream('b' as PeerId, '/echo', { maxFrameBytes: 1024 });
    await runFor(sim, 5);
    const stream = await opening;
    expect(network.openStreams).toBe(2);
    stream.abort(new Error('given up'));
    expect(network.openStreams).toBe(0);
  });
});

describe('simulated network requests', () => {
  const text = (bytes: Uint8Array | undefined): string => (bytes === undefined ? 'no answer' : new TextDecoder().decode(bytes));
  const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);
  const LINK = { minDelayMs: 10, meanDelayMs: 10, jitterMs: 0, loss: 0 };

  /** Two transports, connected, with `b` serving `/r` through `handler`. */
  async function pair(handler: RequestHandler) {
    const sim = new SimClock(0);
    const network = new SimNetwork(sim, new SeededRandom(3), LINK);
    const a = network.createTransport('a' as PeerId, 0);
    const b = network.createTransport('b' as PeerId, 1);
    const errors: string[] = [];
    b.handleRequests('/r', handler, { maxFrameBytes: 100, onError: (peer, error) => errors.push(`${peer} ${error.name}`) });
    const dialing = a.dial('b' as PeerId, []);
    await runFor(sim, 50);
    await dialing;
    /** Asks `b` and runs the clock for `wait` ms; the answer, or the error. */
    const ask = async (value: string | Uint8Array, wait = 30, timeoutMs = 1_000): Promise<unknown> => {
      const asking = a.request('b' as PeerId, '/r', typeof value === 'string' ? bytes(value) : value, { maxFrameBytes: 1024, timeoutMs }).then(text, (error: Error) => error);
      // The request leaves once the (open) connection is looked up, before time moves.
      await settle();
      await runFor(sim, wait);
      return asking;
    };
    return { sim, network, a, b, errors, ask };
  }

  it('answers a request in a round trip without streams, and fails it as a stream would fail', async () => {
    const { sim, network, errors, ask } = await pair(async (peer, frame) => {
      const asked = text(frame);
      if (asked === 'nothing') return undefined;
      if (asked === 'bad') throw new WireError('malformed', 'bad request');
      if (asked === 'quiet') throw new ExchangeAbortedError('not admitted');
      if (asked === 'huge') return new Uint8Array(2_000);
      return bytes(`${peer}:${asked}`);
    });
    const sentAt = sim.now();
    expect(await ask('x', 20)).toBe('a:x');
    expect(sim.now() - sentAt).toBe(20);
    expect(String(await ask('nothing'))).toMatch(/ended before a message arrived/);
    expect(String(await ask('bad'))).toMatch(/reset the stream/);
    expect(String(await ask('quiet'))).toMatch(/reset the stream/);
    expect(errors).toEqual(['a WireError']);
    expect(String(await ask(new Uint8Array(500)))).toMatch(/reset the stream/);
    expect(errors).toEqual(['a WireError', 'a FrameTooLargeError']);
    expect(await ask('huge')).toBeInstanceOf(FrameTooLargeError);
    network.setDefaults({ ...LINK, loss: 1 });
    expect(String(await ask('x'))).toMatch(/lost data/);
    expect(network.requestsInFlight).toBe(0);
  });

  it('loses the answer alone on a lossy return link, and times out with nothing left in flight', async () => {
    let served = 0;
    let release = (): void => {};
    let hold: Promise<void> | undefined;
    const { network, errors, ask } = await pair(async () => {
      served++;
      if (hold !== undefined) await hold;
      return bytes('ok');
    });
    network.setLink('b' as PeerId, 'a' as PeerId, { ...LINK, loss: 1 });
    expect(String(await ask('x'))).toMatch(/lost data/);
    expect(served).toBe(1);
    network.setLink('b' as PeerId, 'a' as PeerId, LINK);
    // The server is slower than the asker's patience: no answer, nothing in flight, and the late answer cannot be sent.
    hold = new Promise((resolve) => (release = resolve));
    expect(await ask('slow', 60, 50)).toBe('no answer');
    expect(network.requestsInFlight).toBe(0);
    release();
    await ask('after', 30);
    expect(errors).toEqual(['a StreamResetError']);
  });

  it('holds a request for a paused server; one the asker gave up on is never served', async () => {
    let served = 0;
    const { sim, ask } = await pair(async () => {
      served++;
      return bytes('ok');
    });
    sim.pause(1);
    const waited = ask('x', 100, 1_000);
    const gaveUp = ask('y', 0, 50);
    expect(await gaveUp).toBe('no answer');
    sim.resume(1);
    await runFor(sim, 100);
    expect(await waited).toBe('ok');
    expect(served).toBe(1);
  });

  it('ends a request when the connection closes, and serves a stream opened to the protocol as one request', async () => {
    let release = (): void => {};
    let hold: Promise<void> | undefined;
    const { sim, network, a, b } = await pair(async (peer, frame) => {
      if (hold !== undefined) await hold;
      return bytes(`${peer}:${text(frame)}`);
    });
    hold = new Promise((resolve) => (release = resolve));
    const pending = a.request('b' as PeerId, '/r', bytes('slow'), { maxFrameBytes: 1024, timeoutMs: 1_000 }).catch((error: Error) => error);
    await settle();
    await runFor(sim, 15);
    await b.hangUp('a' as PeerId);
    expect(String(await pending)).toMatch(/connection closed/);
    expect(network.requestsInFlight).toBe(0);
    release();
    hold = undefined;
    const opening = a.openStream('b' as PeerId, '/r', { maxFrameBytes: 1024 });
    await settle();
    await runFor(sim, 30);
    const stream = await opening;
    await stream.send(bytes('s'));
    const reading = firstFrame(stream);
    await runFor(sim, 30);
    expect(text(await reading)).toBe('a:s');
    // A request to a peer that serves the protocol on streams goes on a stream.
    a.handle('/echo', (echo) => void (async () => {
      const frame = await firstFrame(echo);
      await echo.send(frame);
      await echo.close();
    })(), { maxFrameBytes: 100 });
    const echoed = b.request('a' as PeerId, '/echo', bytes('e'), { maxFrameBytes: 100, timeoutMs: 1_000 });
    await settle();
    await runFor(sim, 60);
    expect(text(await echoed)).toBe('e');
  });


  it('lets go of each request as it ends, beside a stream that stays open (a sync session) and one ended out of order', async () => {
    const { sim, a, b, ask } = await pair(async (peer, frame) => bytes(`${peer}:${text(frame)}`));
    b.handle('/long', () => {}, { maxFrameBytes: 100 });
    const opening = a.openStream('b' as PeerId, '/long', { maxFrameBytes: 100 });
    await settle();
    await runFor(sim, 30);
    const stream = await opening;
    expect([a.held, b.held]).toEqual([1, 1]);
    for (let i = 0; i < 30; i++) expect(await ask(`q${i}`)).toBe(`a:q${i}`);
    // Held while in flight, and only then (the stream's ends stay, one each).
    const slow = a.request('b' as PeerId, '/r', bytes('x'), { maxFrameBytes: 1024, timeoutMs: 1_000 });
    await settle();
    expect([a.held, b.held]).toEqual([2, 2]);
    await runFor(sim, 30);
    expect(text(await slow)).toBe('a:x');
    expect([a.held, b.held]).toEqual([1, 1]);
    // The stream, added first, ends before a request added after it.
    const after = a.request('b' as PeerId, '/r', bytes('y'), { maxFrameBytes: 1024, timeoutMs: 1_000 });
    await settle();
    stream.abort(new Error('closed'));
    expect([a.held, b.held]).toEqual([1, 1]);
    await runFor(sim, 30);
    expect(text(await after)).toBe('a:y');
    expect([a.held, b.held]).toEqual([0, 0]);
  });
  it('runs what follows an answer once it arrives (a refusal reaches the peer before the hang-up)', async () => {
    const { sim, a, b, ask } = await pair(async () => ({ frame: bytes('refused'), afterSent: () => void b.hangUp('a' as PeerId) }));
    expect(await ask('x', 30)).toBe('refused');
    await runFor(sim, 5);
    expect(a.connectedPeers()).toEqual([]);
  });

  it('serves a request twice when the link duplicates it, not after the connection closed', async () => {
    let served = 0;
    const { sim, network, a, b, ask } = await pair(async () => new Uint8Array([++served]));
    network.setDefaults({ ...LINK, duplicate: 1 });
    expect(await ask('c', 100)).toBe('\u0001');
    expect(served).toBe(2);
    expect(network.duplicated).toBe(1);
    // The retry is still on its way when the connection closes: it is not served.
    const asking = a.request('b' as PeerId, '/r', bytes('c'), { maxFrameBytes: 1024, timeoutMs: 1_000 });
    await settle();
    await runFor(sim, 10);
    await runFor(sim, 10);
    await asking;
    await b.hangUp('a' as PeerId);
    await runFor(sim, 100);
    expect(served).toBe(3);
  });
});

/** A simulated runner whose `run` moves virtual time on until the command ends, so the port's contract suite can await it. */
function selfDriving(sim: SimClock, runner: ProcessRunner): ProcessRunner {
  return {
    run: async (request) => {
      let done = false;
      const running = runner.run(request).finally(() => (done = true));
      // Awaited below, after the clock has moved: marked handled now.
      running.catch(() => undefined);
      for (let i = 0; i < 10_000 && !done; i++) {
        await settle();
        const next = sim.nextDueMs();
        if (!done && next !== undefined) sim.step(next);
      }
      return running;
    },
  };
}

// The contract the real runner passes; `sh -c …` is a recorded answer, as the scripted runner has it.
runProcessRunnerSuite('SimProcessRunner', () => {
  const sim = new SimClock(0);
  const processes = new SimProcesses(sim, new SeededRandom(1), { programs: { sh: () => ({ durationMs: 5, exitCode: 3, stderr: 'oops\n' }) } });
  return selfDriving(sim, processes.runnerFor(0));
});

describe('simulated processes', () => {
  it('runs commands for their time on the virtual clock, honours timeouts and aborts, and logs every start with its pid', async () => {
    const sim = new SimClock(0);
    const processes = new SimProcesses(sim, new SeededRandom(2));
    const runner = processes.runnerFor(0);
    const results: Array<{ at: number; name: string; result: ProcessResult }> = [];
    const pids: number[] = [];
    const track = (name: string, running: Promise<ProcessResult>): void => void running.then((result) => results.push({ at: sim.now(), name, result }));
    track('sleep', runner.run({ command: 'sleep', args: ['2'], onStart: (pid) => pids.push(pid) }));
    track('task', runner.run({ command: 'sim-task', args: ['t-1', '500', '4'] }));
    track('timeout', runner.run({ command: 'sleep', args: ['10'], timeoutMs: 1_000 }));
    const abort = new AbortController();
    track('aborted', runner.run({ command: 'sleep', args: ['10'], signal: abort.signal }));
    await runFor(sim, 300);
    abort.abort();
    await runFor(sim, 0);
    await runFor(sim, 3_000);
    expect(results.map((r) => [r.name, r.at, r.result.exitCode, r.result.killed])).toEqual([
      ['aborted', 300, -1, true],
      ['task', 500, 4, false],
      ['timeout', 1_000, -1, true],
      ['sleep', 2_000, 0, false],
    ]);
    expect(results.find((r) => r.name === 'task')!.result.stdout).toBe('task t-1 ran 500 ms\n');
    expect(pids).toEqual([1_000]);
    expect(processes.starts.map((s) => [s.command, s.args[0], s.pid, s.atMs])).toEqual([
      ['sleep', '2', 1_000, 0],
      ['sim-task', 't-1', 1_001, 0],
      ['sleep', '10', 1_002, 0],
      ['sleep', '10', 1_003, 0],
    ]);
  });

  it('draws a seeded duration for sim-task without one: the same seed, the same duration', async () => {
    const durations = async (seed: number): Promise<number[]> => {
      const sim = new SimClock(0);
      const runner = new SimProcesses(sim, new SeededRandom(seed)).runnerFor(0);
      const ended: number[] = [];
      for (const id of ['a', 'b', 'c']) void runner.run({ command: 'sim-task', args: [id, '-'] }).then(() => ended.push(sim.now()));
      await runFor(sim, 6_000);
      return ended;
    };
    const [first, again, other] = [await durations(5), await durations(5), await durations(6)];
    expect(first).toHaveLength(3);
    for (const ms of first) expect(ms).toBeGreaterThanOrEqual(200);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('keeps a command running after its node process dies (nobody hears its end), stops it by its environment or as an orphan, and ends all on power loss', async () => {
    const sim = new SimClock(0);
    const processes = new SimProcesses(sim, new SeededRandom(3));
    const first = processes.runnerFor(0, 1);
    let heard = false;
    let pid = 0;
    void first.run({ command: 'sleep', args: ['5'], onStart: (p) => (pid = p) }).then(() => (heard = true));
    void first.run({ command: 'sleep', args: ['9'], env: { RUN: 't-1' } }).then(() => (heard = true));
    void first.run({ command: 'sleep', args: ['1'] }).then(() => (heard = true));
    first.kill();
    sim.cancelAll(0);
    await runFor(sim, 2_000);
    // The 1 s command ended unheard; the 5 s and 9 s ones still run on the machine.
    expect(heard).toBe(false);
    expect(processes.running(0)).toEqual([pid, pid + 1]);
    // The dead process starts nothing more.
    void first.run({ command: 'true', args: [] });
    expect(processes.starts).toHaveLength(3);
    const next = processes.runnerFor(0, 2);
    expect(await next.stopByEnv('RUN', 't-2')).toBe(0);
    expect(await next.stopByEnv('RUN', 't-1')).toBe(1);
    expect(processes.running(0)).toEqual([pid]);
    expect(await next.stopOrphan(pid, ['sleep', '6'])).toBe(false);
    expect(await next.stopOrphan(pid, ['sleep', '5'])).toBe(true);
    expect(processes.running(0)).toEqual([]);
    void next.run({ command: 'sleep', args: ['5'] }).then(() => (heard = true));
    processes.powerOff(0);
    await runFor(sim, 6_000);
    expect(heard).toBe(false);
    expect(processes.running(0)).toEqual([]);
    expect(processes.starts.map((s) => s.processStart)).toEqual([1, 1, 1, 2]);
  });
});
