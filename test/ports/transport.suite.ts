import { afterEach, describe, expect, it } from 'vitest';
import {
  FrameTooLargeError,
  type FrameStream,
  type PeerId,
  PeerUnreachableError,
  ProtocolNotSupportedError,
  StreamResetError,
  type Transport,
} from '../../mesh/index.ts';

export interface TransportPair {
  readonly a: Transport;
  readonly b: Transport;
  /** A peer id that no transport in the pair can reach. */
  readonly stranger: PeerId;
  stop(): Promise<void>;
}

const PROTOCOL = '/powernode/test/1';
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array): string => new TextDecoder().decode(value);

async function collect(stream: FrameStream): Promise<string[]> {
  const frames: string[] = [];
  for await (const frame of stream) frames.push(text(frame));
  return frames;
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The Transport contract, run against the in-memory network and real libp2p. */
export function runTransportSuite(name: string, createPair: () => Promise<TransportPair>): void {
  describe(`Transport contract: ${name}`, () => {
    let pair: TransportPair | undefined;
    afterEach(async () => {
      await pair?.stop();
      pair = undefined;
    });

    it('connects, reports the connection on both sides, and exchanges frames in order', async () => {
      pair = await createPair();
      const { a, b } = pair;
      const connectedOnB: PeerId[] = [];
      b.on('peer:connect', (peer) => connectedOnB.push(peer));
      const received: Promise<string[]>[] = [];
      b.handle(
        PROTOCOL,
        (stream) => {
          expect(stream.remotePeer).toBe(a.localPeer);
          received.push(
            (async () => {
              const frames: string[] = [];
              for await (const frame of stream) {
                frames.push(text(frame));
                await stream.send(bytes(`echo:${text(frame)}`));
              }
              await stream.close();
              return frames;
            })(),
          );
        },
        { maxFrameBytes: 1024 },
      );
      await a.dial(b.localPeer, b.listenAddresses());
      await waitFor(() => connectedOnB.includes(a.localPeer));
      expect(a.connectedPeers()).toContain(b.localPeer);
      const stream = await a.openStream(b.localPeer, PROTOCOL, { maxFrameBytes: 1024 });
      for (const word of ['one', 'two', 'three']) await stream.send(bytes(word));
      await stream.close();
      expect(await collect(stream)).toEqual(['echo:one', 'echo:two', 'echo:three']);
      await waitFor(() => received.length === 1);
      expect(await received[0]).toEqual(['one', 'two', 'three']);
    });

    it('carries a frame of exactly the cap, and a frame of 1 MiB when the cap allows', async () => {
      pair = await createPair();
      const { a, b } = pair;
      const sizes: number[] = [];
      b.handle(
        PROTOCOL,
        (stream) =>
          void (async () => {
            for await (const frame of stream) sizes.push(frame.length);
          })().catch(() => {}),
        { maxFrameBytes: 1024 * 1024 },
      );
      await a.dial(b.localPeer, b.listenAddresses());
      const stream = await a.openStream(b.localPeer, PROTOCOL, { maxFrameBytes: 1024 * 1024 });
      await stream.send(new Uint8Array(1024 * 1024).fill(7));
      await stream.send(new Uint8Array(3).fill(1));
      await waitFor(() => sizes.length === 2);
      expect(sizes).toEqual([1024 * 1024, 3]);
    });

    it('refuses a frame over the reader cap with FrameTooLargeError, and keeps the connection for other streams', async () => {
      pair = await createPair();
      const { a, b } = pair;
      const errors: Error[] = [];
      const frames: string[] = [];
      b.handle(
        PROTOCOL,
        (stream) =>
          void (async () => {
            try {
              for await (const frame of stream) frames.push(text(frame));
            } catch (error) {
              errors.push(error as Error);
            }
          })(),
        { maxFrameBytes: 16 },
      );
      await a.dial(b.localPeer, b.listenAddresses());
      const big = await a.openStream(b.localPeer, PROTOCOL, { maxFrameBytes: 1 << 20 });
      await big.send(new Uint8Array(100));
      await waitFor(() => errors.length === 1);
      expect(errors[0]).toBeInstanceOf(FrameTooLargeError);
      const small = await a.openStream(b.localPeer, PROTOCOL, { maxFrameBytes: 16 });
      await small.send(bytes('still here'));
      await waitFor(() => frames.includes('still here'));
      expect(a.connectedPeers()).toContain(b.localPeer);
    });

    it('fails to open an unhandled protocol with ProtocolNotSupportedError', async () => {
      pair = await createPair();
      const { a, b } = pair;
      await a.dial(b.localPeer, b.listenAddresses());
      await expect(a.openStream(b.localPeer, '/powernode/nobody/1', { maxFrameBytes: 16 })).rejects.toBeInstanceOf(
        ProtocolNotSupportedError,
      );
    });

    it('fails to reach an unknown peer with PeerUnreachableError', async () => {
      pair = await createPair();
      const signal = AbortSignal.timeout(3_000);
      await expect(pair.a.dial(pair.stranger, [], { signal })).rejects.toBeInstanceOf(PeerUnreachableError);
    });

    it('hangUp ends open streams on both sides (cleanly or by reset) and reports the disconnect', async () => {
      pair = await createPair();
      const { a, b } = pair;
      const disconnectedOnB: PeerId[] = [];
      b.on('peer:disconnect', (peer) => disconnectedOnB.push(peer));
      let remoteEnd: string | undefined;
      b.handle(
        PROTOCOL,
        (stream) =>
          void (async () => {
            try {
              for await (const _ of stream) {
                // Read until the stream ends or resets.
              }
              remoteEnd = 'clean';
            } catch (error) {
              remoteEnd = (error as Error).name;
            }
          })(),
        { maxFrameBytes: 64 },
      );
      await a.dial(b.localPeer, b.listenAddresses());
      const stream = await a.openStream(b.localPeer, PROTOCOL, { maxFrameBytes: 64 });
      await stream.send(bytes('hello'));
      const reading = collect(stream).then(
        () => 'clean',
        (error: Error) => (error instanceof StreamResetError ? error.name : `unexpected ${error.name}`),
      );
      await a.hangUp(b.localPeer);
      // Checked at once: a real peer may dial back in later (libp2p's DHT does).
      expect(a.connectedPeers()).not.toContain(b.localPeer);
      expect(['clean', 'StreamResetError']).toContain(await reading);
      await waitFor(() => disconnectedOnB.includes(a.localPeer));
      await waitFor(() => remoteEnd !== undefined);
      expect(['clean', 'StreamResetError']).toContain(remoteEnd);
    });
  });
}
