import * as childProcess from 'node:child_process';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterAll, describe, expect, it } from 'vitest';
import { CryptoRandom } from '../../agent/adapters/crypto-random.ts';
import { ExecaProcessRunner } from '../../agent/adapters/execa-process-runner.ts';
import { LevelStorage } from '../../agent/adapters/level-storage.ts';
import { Libp2pTransport } from '../../agent/adapters/libp2p-transport.ts';
import { SystemClock } from '../../agent/adapters/system-clock.ts';
import { WorkerPoolVerifier } from '../../agent/adapters/worker-pool-verifier.ts';
import {
  InProcessVerifier,
  ManualClock,
  MemoryNetwork,
  MemoryStorage,
  type PeerId,
  ScriptedProcessRunner,
  SeededRandom,
  monotonicNow,
} from '../../mesh/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { NodeClock, SimClock } from '../../sim/clock.ts';
import { SimStorage } from '../../sim/storage.ts';
import { SimNetwork } from '../../sim/network.ts';
import { runClockSuite } from './clock.suite.ts';
import { runProcessRunnerSuite } from './process-runner.suite.ts';
import { runRandomSuite } from './random.suite.ts';
import { runSignatureVerifierSuite } from './signature-verifier.suite.ts';
import { runStorageSuite } from './storage.suite.ts';
import { runTransportSuite } from './transport.suite.ts';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

runStorageSuite('MemoryStorage', async () => new MemoryStorage());
runStorageSuite('SimStorage', async () => new SimStorage(() => 0));
runStorageSuite('LevelStorage', async () => {
  const dir = await tempDir();
  cleanups.push(dir.remove);
  return LevelStorage.open(dir.path);
});

runClockSuite('ManualClock', () => {
  const clock = new ManualClock();
  return { clock, advance: (ms) => clock.advanceAsync(ms) };
});
runClockSuite('NodeClock (simulator)', () => {
  const sim = new SimClock();
  const advance = async (ms: number): Promise<void> => {
    const until = sim.now() + ms;
    while (sim.step(until) > 0) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  };
  return { clock: new NodeClock(sim, 0), advance };
});
runClockSuite('SystemClock', () => ({ clock: new SystemClock(), advance: (ms) => new Promise((r) => setTimeout(r, ms)) }));

describe('NodeClock (simulator) wall-clock steps', () => {
  it('moves now() by a jump, and neither its monotonic reading nor its timers', () => {
    const sim = new SimClock();
    const clock = new NodeClock(sim, 0);
    const [wall, mono] = [clock.now(), monotonicNow(clock)];
    let fired = false;
    clock.setTimeout(() => (fired = true), 100);
    clock.jump(-30_000);
    expect(clock.now()).toBe(wall - 30_000);
    expect(monotonicNow(clock)).toBe(mono);
    sim.step(sim.now() + 99);
    expect(fired).toBe(false);
    sim.step(sim.now() + 1);
    expect(fired).toBe(true);
    expect(monotonicNow(clock)).toBe(mono + 100);
  });
});

runRandomSuite('SeededRandom', () => new SeededRandom(42));
runRandomSuite('CryptoRandom', () => new CryptoRandom());

describe('SeededRandom determinism', () => {
  it('repeats its sequence for the same seed and differs for another', () => {
    const a = new SeededRandom(7).bytes(64);
    const b = new SeededRandom(7).bytes(64);
    const c = new SeededRandom(8).bytes(64);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('ManualClock', () => {
  it('refuses to jump back in time', () => {
    const clock = new ManualClock(1000);
    expect(() => clock.jumpTo(999)).toThrow(RangeError);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });
});

/** Steps a simulation's clock as fast as the event loop allows, for suites that wait in real time. */
function autoPump(sim: SimClock): () => void {
  let running = true;
  const pump = (): void => {
    if (!running) return;
    const next = sim.nextDueMs();
    if (next !== undefined) sim.step(next);
    setImmediate(pump);
  };
  setImmediate(pump);
  return () => {
    running = false;
  };
}

let simPeerCounter = 0;
runTransportSuite('SimTransport', async () => {
  const sim = new SimClock();
  const network = new SimNetwork(sim, new SeededRandom(5));
  const n = simPeerCounter++;
  const a = network.createTransport(`sim-a-${n}` as PeerId, 0);
  const b = network.createTransport(`sim-b-${n}` as PeerId, 1);
  const stopPump = autoPump(sim);
  return {
    a,
    b,
    stranger: `sim-nobody-${n}` as PeerId,
    stop: async () => {
      await a.stop();
      await b.stop();
      stopPump();
    },
  };
});

let memoryPeerCounter = 0;
runTransportSuite('MemoryTransport', async () => {
  const network = new MemoryNetwork();
  const n = memoryPeerCounter++;
  const a = network.createTransport(`memory-a-${n}` as PeerId);
  const b = network.createTransport(`memory-b-${n}` as PeerId);
  return { a, b, stranger: 'memory-stranger' as PeerId, stop: async () => Promise.all([a.stop(), b.stop()]).then(() => {}) };
});

runTransportSuite('Libp2pTransport', async () => {
  const create = async () =>
    Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], fleetId: 'test' });
  const [a, b] = await Promise.all([create(), create()]);
  const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString() as PeerId;
  return { a, b, stranger, stop: async () => Promise.all([a.stop(), b.stop()]).then(() => {}) };
});

describe('Libp2pTransport: Yamux flow control', () => {
  it('sends window updates once half a stream\'s window is used, not one per frame, and still carries more than a window', async () => {
    const { YamuxStream } = await import('@chainsafe/libp2p-yamux/stream');
    const prototype = YamuxStream.prototype as unknown as { handleWindowUpdate(frame: { header: { length: number; flag: number } }): void };
    const handle = prototype.handleWindowUpdate;
    let updates = 0;
    prototype.handleWindowUpdate = function (this: unknown, frame) {
      if (frame.header.flag === 0 && frame.header.length > 0) updates++;
      return handle.call(this, frame);
    };
    const create = async () => Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], fleetId: 'test' });
    const [a, b] = await Promise.all([create(), create()]);
    try {
      let received = 0;
      let bytesIn = 0;
      b.handle('/test/window/1', (stream) => void (async () => {
        for await (const frame of stream) {
          received++;
          bytesIn += frame.length;
        }
      })(), { maxFrameBytes: 1024 * 1024 });
      await a.dial(b.localPeer, b.listenAddresses());
      const stream = await a.openStream(b.localPeer, '/test/window/1', { maxFrameBytes: 1024 * 1024 });
      // 300 small messages (60 KB, under half of the 256 KiB window): no update needed.
      for (let i = 0; i < 300; i++) await stream.send(new Uint8Array(200).fill(i % 256));
      const deadline = Date.now() + 5_000;
      while (received < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received).toBe(300);
      expect(updates).toBe(0);
      // Then 4 MB in 64 KiB messages: far past the window, so updates come, and everything arrives.
      for (let i = 0; i < 64; i++) await stream.send(new Uint8Array(64 * 1024).fill(i));
      while (received < 364 && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 10));
      expect(received).toBe(364);
      expect(bytesIn).toBe(300 * 200 + 64 * 64 * 1024);
      expect(updates).toBeGreaterThan(0);
      expect(updates).toBeLessThan(64);
    } finally {
      prototype.handleWindowUpdate = handle;
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('Libp2pTransport: socket writes', () => {
  it('writes each message in one socket write (not one per Noise chunk), and what one tick sends in one', async () => {
    const { Socket } = await import('node:net');
    const prototype = Socket.prototype as unknown as { _write(...args: unknown[]): unknown; _writev(...args: unknown[]): unknown };
    const [write, writev] = [prototype._write, prototype._writev];
    let writes = 0;
    prototype._write = function (this: unknown, ...args: unknown[]) {
      writes++;
      return write.apply(this, args);
    };
    prototype._writev = function (this: unknown, ...args: unknown[]) {
      writes++;
      return writev.apply(this, args);
    };
    const create = async () => Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], fleetId: 'test' });
    const [a, b] = await Promise.all([create(), create()]);
    try {
      const received: number[] = [];
      b.handle('/test/writes/1', (stream) => void (async () => {
        for await (const frame of stream) received.push(frame[0]!);
      })(), { maxFrameBytes: 1024 * 1024 });
      await a.dial(b.localPeer, b.listenAddresses());
      const stream = await a.openStream(b.localPeer, '/test/writes/1', { maxFrameBytes: 1024 * 1024 });
      await stream.send(new Uint8Array(1_500).fill(255));
      const arrived = async (count: number): Promise<void> => {
        const deadline = Date.now() + 5_000;
        while (received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      };
      await arrived(1);
      // 100 messages, each sent on its own tick: a Noise message is 3-4 buffers, once a write each.
      writes = 0;
      for (let i = 0; i < 100; i++) {
        await stream.send(new Uint8Array(1_500).fill(i));
        await new Promise((r) => setImmediate(r));
      }
      await arrived(101);
      const spaced = writes;
      // 100 more in one tick.
      writes = 0;
      await Promise.all(Array.from({ length: 100 }, (_, i) => stream.send(new Uint8Array(1_500).fill(100 + i))));
      await arrived(201);
      const together = writes;
      expect(received).toEqual([255, ...Array.from({ length: 200 }, (_, i) => i)]);
      // Both sides' writes are counted (the receiver's own frames, e.g. window updates, are few).
      expect(spaced).toBeLessThan(150);
      expect(together).toBeLessThan(30);
    } finally {
      prototype._write = write;
      prototype._writev = writev;
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('Libp2pTransport: a reader that waits pushes back on the peer', () => {
  it('takes at most a window more off the connection while the reader holds a frame, and the rest once it reads on', async () => {
    const { YamuxStream } = await import('@chainsafe/libp2p-yamux/stream');
    const prototype = YamuxStream.prototype as unknown as { handleData(frame: { header: { length: number } }): void };
    const handleData = prototype.handleData;
    let arrived = 0;
    prototype.handleData = function (this: unknown, frame) {
      arrived += frame.header.length;
      return handleData.call(this, frame);
    };
    const create = async () => Libp2pTransport.create({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], fleetId: 'test' });
    const [a, b] = await Promise.all([create(), create()]);
    try {
      const read: number[] = [];
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      b.handle('/test/hold/1', (stream) => void (async () => {
        for await (const frame of stream) {
          read.push(frame[0]!);
          if (read.length === 1) await held;
        }
      })(), { maxFrameBytes: 2 * 1024 * 1024 });
      await a.dial(b.localPeer, b.listenAddresses());
      const stream = await a.openStream(b.localPeer, '/test/hold/1', { maxFrameBytes: 2 * 1024 * 1024 });
      const sent = (async () => {
        for (let i = 0; i < 32; i++) await stream.send(new Uint8Array(1024 * 1024).fill(i));
      })();
      await new Promise((r) => setTimeout(r, 1_000));
      // 32 MiB sent; without the pause all of it reached the receiver's muxer and its memory.
      expect(read).toEqual([0]);
      expect(arrived).toBeLessThan(8 * 1024 * 1024);
      release();
      await sent;
      const deadline = Date.now() + 10_000;
      while (read.length < 32 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(read).toEqual(Array.from({ length: 32 }, (_, i) => i));
    } finally {
      prototype.handleData = handleData;
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

runProcessRunnerSuite('ExecaProcessRunner', () => new ExecaProcessRunner());

describe('ExecaProcessRunner: stopping what a command started', () => {
  const { execFileSync, spawn } = childProcess;
  /** The pids whose command line is exactly `sleep SECONDS` (a number no other test uses). */
  const sleeping = (seconds: number): number[] => {
    try {
      return execFileSync('pgrep', ['-x', '-f', `sleep ${seconds}`], { encoding: 'utf8' }).trim().split('\n').map(Number);
    } catch {
      return [];
    }
  };
  const gone = async (seconds: number): Promise<boolean> => {
    for (let i = 0; i < 50 && sleeping(seconds).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    return sleeping(seconds).length === 0;
  };

  it('stops a command\'s children with it on a timeout and on an abort', async () => {
    const runner = new ExecaProcessRunner();
    const timedOut = await runner.run({ command: 'sh', args: ['-c', 'sleep 4721 & sleep 4721; wait'], timeoutMs: 300 });
    expect(timedOut.killed).toBe(true);
    expect(await gone(4721)).toBe(true);
    const abort = new AbortController();
    const running = runner.run({ command: 'sh', args: ['-c', 'sleep 4722 & sleep 4722; wait'], signal: abort.signal });
    for (let i = 0; i < 50 && sleeping(4722).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(sleeping(4722)).toHaveLength(2);
    abort.abort();
    expect((await running).killed).toBe(true);
    expect(await gone(4722)).toBe(true);
  });

  it('finds and stops, by an environment variable, processes a dead caller left behind, and leaves others alone', async () => {
    const left = spawn('sh', ['-c', 'sleep 4723 & sleep 4723; wait'], { env: { ...process.env, POWERNODE_TEST_TAG: 'run-1' }, detached: true, stdio: 'ignore' });
    const other = spawn('sleep', ['4724'], { env: { ...process.env, POWERNODE_TEST_TAG: 'run-2' }, detached: true, stdio: 'ignore' });
    left.unref();
    other.unref();
    for (let i = 0; i < 50 && sleeping(4723).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    try {
      expect(await new ExecaProcessRunner().stopByEnv('POWERNODE_TEST_TAG', 'run-1')).toBe(3);
      expect(await gone(4723)).toBe(true);
      expect(sleeping(4724)).toHaveLength(1);
      expect(await new ExecaProcessRunner().stopByEnv('POWERNODE_TEST_TAG', 'run-0')).toBe(0);
    } finally {
      other.kill('SIGKILL');
    }
  });
});
runProcessRunnerSuite(
  'ScriptedProcessRunner',
  () =>
    new ScriptedProcessRunner([
      { command: 'echo', args: ['hello', 'fleet'], result: { exitCode: 0, stdout: 'hello fleet\n', stderr: '' } },
      { command: 'sh', result: { exitCode: 3, stdout: '', stderr: 'oops\n' } },
      { command: 'cat', result: { exitCode: 0, stdout: 'from stdin', stderr: '' } },
      { command: 'sleep', result: { exitCode: -1, stdout: '', stderr: '', killed: true } },
    ]),
);

runSignatureVerifierSuite('InProcessVerifier', () => new InProcessVerifier());
runSignatureVerifierSuite('WorkerPoolVerifier', () => new WorkerPoolVerifier());
