import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { identify } from '@libp2p/identify';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { Socket } from 'node:net';
import { type Libp2p, createLibp2p } from 'libp2p';
import {
  type AccessPolicy,
  FrameDecoder,
  type FrameStream,
  Listeners,
  type OpenStreamOptions,
  type PeerId,
  PeerUnreachableError,
  type ProtocolOptions,
  ProtocolNotSupportedError,
  type StreamHandler,
  StreamResetError,
  type Transport,
  type TransportEvent,
  encodeFrame,
} from '../../mesh/index.ts';

export interface Libp2pTransportInit {
  readonly privateKey: PrivateKey;
  readonly listen: readonly string[];
  /** Scopes the DHT to one fleet, so fleets never mix routing tables. */
  readonly fleetId: string;
  /** Highest number of open connections. */
  readonly maxConnections?: number;
}

/**
 * Yamux window updates once half of a stream's receive window is used, as go-yamux and rust-yamux
 * send them (libp2p/rust-yamux#109), instead of one after every data frame received, which
 * @chainsafe/libp2p-yamux 8 does: on streams of small messages (sync, actor asks, SWIM) every
 * message was answered by a window-update frame, each Noise-encrypted and written on its own —
 * about a third of all frames. A sender still never waits with credit left: it may send the whole
 * window, and the update comes when less than half of it is left. Only steady states are held back
 * (flags to send, a paused stream or any other state go through as before). Applied once per process.
 */
export function sendYamuxWindowUpdatesAtHalf(): void {
  type Window = { state: StreamState; recvWindow: number; recvWindowCapacity: number; sendWindowUpdate(): void; powernodeHalfWindow?: true };
  const prototype = YamuxStream.prototype as unknown as Window;
  if (prototype.powernodeHalfWindow === true) return;
  const original = prototype.sendWindowUpdate;
  prototype.sendWindowUpdate = function (this: Window): void {
    if ((this.state === StreamState.Established || this.state === StreamState.SYNSent) && this.recvWindowCapacity * 2 >= this.recvWindow) return;
    original.call(this);
  };
  prototype.powernodeHalfWindow = true;
}

/**
 * One socket write per tick instead of one per buffer: @libp2p/tcp 11 writes each chunk of what a
 * connection sends on its own (`socket.write` per buffer), and a Noise message is three or four
 * of them (length, encrypted header, body, tag) — every sync or actor message was three or four
 * write syscalls, each a TCP segment that wakes the reader (on a loaded machine each wake-up
 * often preempted the writer). The socket is corked for the rest of the tick and uncorked on the
 * next one, so everything a node sends a peer in one tick leaves in one `writev`. Back-pressure is
 * unchanged: `write` still answers false past the high-water mark and 'drain' follows the flush.
 * Patched on the class of the first TCP connection seen (it is not exported), once per process;
 * test/ports/ports.test.ts counts the writes. Check it when upgrading @libp2p/tcp.
 */
export function coalesceSocketWrites(connection: Connection): void {
  type SocketConnection = { socket?: unknown; sendData(data: Iterable<Uint8Array>): unknown; powernodeCorked?: true };
  const maConn = (connection as unknown as { maConn?: SocketConnection }).maConn;
  if (maConn === undefined || !(maConn.socket instanceof Socket)) return;
  const prototype = Object.getPrototypeOf(maConn) as SocketConnection;
  if (prototype.powernodeCorked === true || typeof prototype.sendData !== 'function') return;
  const original = prototype.sendData;
  prototype.sendData = function (this: SocketConnection, data: Iterable<Uint8Array>): unknown {
    const socket = this.socket as Socket;
    if (!socket.writableCorked && !socket.destroyed) {
      socket.cork();
      process.nextTick(() => socket.uncork());
    }
    return original.call(this, data);
  };
  prototype.powernodeCorked = true;
}

const DEFAULT_MAX_CONNECTIONS = 128;
const DIAL_TIMEOUT_MS = 5_000;

/**
 * Access decisions the libp2p node consults. Until the core sets a policy, nothing is denied and
 * the gated services (DHT, identify) serve no one: a node starts closed.
 */
class PolicyHolder {
  policy: AccessPolicy | undefined;

  isDenied(peer: string): boolean {
    return this.policy?.isDenied(peer as PeerId) === true;
  }

  async admitted(peer: string): Promise<boolean> {
    return this.policy === undefined ? false : this.policy.whenAdmitted(peer as PeerId);
  }
}

/**
 * libp2p's components with a registrar that admits only admitted peers to the handlers and
 * topologies a service registers. Used for the DHT and identify, whose handlers live in libp2p.
 * (libp2p 3's stream middleware is not used: in 3.3 the registrar keeps appending the handler
 * to a protocol's middleware list on every incoming stream; js-libp2p PR #3534.)
 */
function withGatedRegistrar<C extends object>(components: C, gate: PolicyHolder): C {
  const registrar = (components as unknown as { registrar: Record<string | symbol, unknown> }).registrar;
  const gated = new Proxy(registrar, {
    get(target, property) {
      if (property === 'handle') {
        return (protocol: string, handler: (stream: Stream, connection: Connection) => unknown, options?: unknown) =>
          (target['handle'] as (...args: unknown[]) => unknown).call(
            target,
            protocol,
            async (stream: Stream, connection: Connection) => {
              if (await gate.admitted(connection.remotePeer.toString())) return handler(stream, connection);
              stream.abort(new Error('not admitted to this fleet'));
            },
            options,
          );
      }
      if (property === 'register') {
        return (protocol: string, topology: { onConnect?: (peer: unknown, connection: Connection) => void }) =>
          (target['register'] as (...args: unknown[]) => unknown).call(target, protocol, {
            ...topology,
            onConnect:
              topology.onConnect === undefined
                ? undefined
                : (peer: { toString(): string }, connection: Connection) => {
                    void gate.admitted(peer.toString()).then((ok) => ok && topology.onConnect!(peer, connection));
                  },
          });
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return new Proxy(components, {
    get: (target, property) => (property === 'registrar' ? gated : Reflect.get(target, property, target)),
  });
}

/** The Transport port on libp2p 3: TCP, Noise, Yamux, identify, ping and a fleet-scoped kad-dht. */
export class Libp2pTransport implements Transport {
  readonly localPeer: PeerId;
  readonly #node: Libp2p;
  readonly #gate: PolicyHolder;
  readonly #events = { 'peer:connect': new Listeners<PeerId>(), 'peer:disconnect': new Listeners<PeerId>() };

  private constructor(node: Libp2p, gate: PolicyHolder) {
    this.#node = node;
    this.#gate = gate;
    this.localPeer = node.peerId.toString() as PeerId;
    node.addEventListener('peer:connect', (event) => this.#events['peer:connect'].emit(event.detail.toString() as PeerId));
    node.addEventListener('peer:disconnect', (event) => this.#events['peer:disconnect'].emit(event.detail.toString() as PeerId));
    node.addEventListener('connection:open', (event) => coalesceSocketWrites(event.detail));
  }

  static async create(init: Libp2pTransportInit): Promise<Libp2pTransport> {
    sendYamuxWindowUpdatesAtHalf();
    const gate = new PolicyHolder();
    const dht = kadDHT({
      protocol: `/powernode/${init.fleetId}/kad/1.0.0`,
      clientMode: false,
      // Fleets run on private networks and loopback too; keep every address a peer reports.
      peerInfoMapper: passthroughMapper,
    });
    const identifyService = identify();
    const node = await createLibp2p({
      privateKey: init.privateKey,
      addresses: { listen: [...init.listen] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS, dialTimeout: DIAL_TIMEOUT_MS },
      // Revoked peers are refused at the dial and right after the Noise handshake.
      connectionGater: {
        denyDialPeer: (peer) => gate.isDenied(peer.toString()),
        denyInboundEncryptedConnection: (peer) => gate.isDenied(peer.toString()),
        denyOutboundEncryptedConnection: (peer) => gate.isDenied(peer.toString()),
      },
      services: {
        identify: (components: Parameters<typeof identifyService>[0]) => identifyService(withGatedRegistrar(components, gate)),
        ping: ping(),
        dht: (components: Parameters<typeof dht>[0]) => dht(withGatedRegistrar(components, gate)),
      },
    });
    return new Libp2pTransport(node, gate);
  }

  listenAddresses(): string[] {
    return this.#node.getMultiaddrs().map((address) => address.toString());
  }

  handle(protocol: string, handler: StreamHandler, options: ProtocolOptions): void {
    void this.#node.handle(
      protocol,
      (stream: Stream, connection: Connection) => {
        handler(new Libp2pFrameStream(stream, connection.remotePeer.toString() as PeerId, protocol, options.maxFrameBytes));
      },
      { maxInboundStreams: 64 },
    );
  }

  unhandle(protocol: string): void {
    void this.#node.unhandle(protocol);
  }

  async openStream(peer: PeerId, protocol: string, options: OpenStreamOptions): Promise<FrameStream> {
    let stream: Stream;
    try {
      stream = await this.#node.dialProtocol(peerIdFromString(peer), protocol, { signal: options.signal });
    } catch (error) {
      throw translateDialError(error, peer, protocol);
    }
    return new Libp2pFrameStream(stream, peer, protocol, options.maxFrameBytes);
  }

  async dial(peer: PeerId, addresses: readonly string[], options?: { readonly signal?: AbortSignal }): Promise<void> {
    let id: ReturnType<typeof peerIdFromString>;
    try {
      id = peerIdFromString(peer);
    } catch {
      throw new PeerUnreachableError(`${peer} is not a valid peer id`);
    }
    const multiaddrs = addresses.flatMap((address) => {
      try {
        return [multiaddr(address)];
      } catch {
        return [];
      }
    });
    if (multiaddrs.length > 0) await this.#node.peerStore.merge(id, { multiaddrs });
    try {
      await this.#node.dial(id, { signal: options?.signal });
    } catch (error) {
      throw translateDialError(error, peer, undefined);
    }
  }

  async hangUp(peer: PeerId): Promise<void> {
    await this.#node.hangUp(peerIdFromString(peer));
  }

  connectedPeers(): PeerId[] {
    return [...new Set(this.#node.getConnections().map((c) => c.remotePeer.toString() as PeerId))].sort();
  }

  isConnected(peer: PeerId): boolean {
    return this.#node.getConnections(peerIdFromString(peer)).length > 0;
  }

  remoteAddresses(peer: PeerId): string[] {
    return this.#node.getConnections(peerIdFromString(peer)).map((c) => c.remoteAddr.toString());
  }

  on(event: TransportEvent, listener: (peer: PeerId) => void): () => void {
    return this.#events[event].add(listener);
  }

  setAccessPolicy(policy: AccessPolicy): void {
    this.#gate.policy = policy;
  }

  async stop(): Promise<void> {
    await this.#node.stop();
  }
}

function translateDialError(error: unknown, peer: PeerId, protocol: string | undefined): Error {
  const name = (error as Error).name;
  if (name === 'UnsupportedProtocolError') return new ProtocolNotSupportedError(`peer ${peer} does not handle ${protocol}`);
  if (name === 'AbortError') return error as Error;
  return new PeerUnreachableError(`cannot reach peer ${peer}: ${(error as Error).message}`);
}

/** Frames on a libp2p stream: varint length prefixes, capped on read, backpressure on write. */
class Libp2pFrameStream implements FrameStream {
  readonly remotePeer: PeerId;
  readonly protocol: string;
  readonly #stream: Stream;
  readonly #maxFrameBytes: number;

  constructor(stream: Stream, remotePeer: PeerId, protocol: string, maxFrameBytes: number) {
    this.#stream = stream;
    this.remotePeer = remotePeer;
    this.protocol = protocol;
    this.#maxFrameBytes = maxFrameBytes;
  }

  get writable(): boolean {
    return this.#stream.writeStatus === 'writable';
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.#stream.writeStatus !== 'writable') throw new StreamResetError(`stream is ${this.#stream.writeStatus}`);
    if (!this.#stream.send(encodeFrame(frame))) await this.#stream.onDrain();
  }

  async close(): Promise<void> {
    try {
      await this.#stream.close();
    } catch {
      // Closing a stream the remote already reset is not an error for the caller.
    }
  }

  abort(reason: Error): void {
    this.#stream.abort(reason);
  }

  #pauseReading(): void {
    if (this.#stream.readStatus === 'readable') this.#stream.pause();
  }

  #resumeReading(): void {
    if (this.#stream.readStatus === 'paused') this.#stream.resume();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const decoder = new FrameDecoder(this.#maxFrameBytes);
    try {
      for await (const chunk of this.#stream) {
        const frames = decoder.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
        for (const frame of frames) {
          // While the reader holds a frame, nothing more is taken off the connection: libp2p's
          // stream iterator buffers without bound, and Yamux grants the peer window credit as data
          // arrives. Paused, the stream sends no credit (the peer stops at the end of its window)
          // and keeps at most 4 MiB (libp2p resets it past that), so a peer cannot fill this
          // node's memory faster than it reads (a reader that waits pushes back on the peer).
          this.#pauseReading();
          try {
            yield frame;
          } finally {
            this.#resumeReading();
          }
        }
      }
    } catch (error) {
      if (error instanceof StreamResetError) throw error;
      if ((error as Error).name === 'FrameTooLargeError' || (error as Error).name === 'MalformedLengthPrefixError') {
        this.#stream.abort(error as Error);
        throw error;
      }
      throw new StreamResetError(`stream reset: ${(error as Error).message}`);
    }
    // libp2p ends the iteration quietly when the connection under the stream goes away; only a
    // remote close of its writing side is a clean end.
    const status = this.#stream.status;
    if (status === 'reset' || status === 'aborted' || this.#stream.remoteWriteStatus !== 'closed') {
      throw new StreamResetError(`stream ended without a clean close (${status})`);
    }
  }
}
