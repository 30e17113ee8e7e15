import { FrameQueue } from './frame-queue.ts';
import {
  type AccessPolicy,
  type FrameStream,
  FrameTooLargeError,
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
} from './transport.ts';

const MEMORY_PREFIX = '/memory/';

/**
 * A set of in-memory transports that can connect to each other. Tests can cut links to see
 * how the core copes with a partition.
 */
export class MemoryNetwork {
  readonly #transports = new Map<PeerId, MemoryTransport>();
  readonly #blocked = new Set<string>();

  /** Creates and registers a transport for `peer`. */
  createTransport(peer: PeerId): MemoryTransport {
    if (this.#transports.has(peer)) throw new Error(`peer ${peer} is already on this network`);
    const transport = new MemoryTransport(this, peer);
    this.#transports.set(peer, transport);
    return transport;
  }

  /** @internal */
  lookup(peer: PeerId): MemoryTransport | undefined {
    return this.#transports.get(peer);
  }

  /** @internal */
  remove(peer: PeerId): void {
    this.#transports.delete(peer);
  }

  /** Cuts (and keeps cut) the link between two peers, closing their connection. */
  block(a: PeerId, b: PeerId): void {
    this.#blocked.add(linkKey(a, b));
    this.#transports.get(a)?.dropConnection(b);
  }

  unblock(a: PeerId, b: PeerId): void {
    this.#blocked.delete(linkKey(a, b));
  }

  isBlocked(a: PeerId, b: PeerId): boolean {
    return this.#blocked.has(linkKey(a, b));
  }
}

function linkKey(a: PeerId, b: PeerId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

interface Registration {
  readonly handler: StreamHandler;
  readonly options: ProtocolOptions;
}

/** A transport on a {@link MemoryNetwork}. Connections are symmetric; streams deliver frames in order. */
export class MemoryTransport implements Transport {
  readonly localPeer: PeerId;
  readonly #network: MemoryNetwork;
  readonly #handlers = new Map<string, Registration>();
  readonly #connections = new Map<PeerId, Set<MemoryStream>>();
  readonly #events = { 'peer:connect': new Listeners<PeerId>(), 'peer:disconnect': new Listeners<PeerId>() };
  #stopped = false;
  #policy: AccessPolicy | undefined;

  constructor(network: MemoryNetwork, peer: PeerId) {
    this.#network = network;
    this.localPeer = peer;
  }

  listenAddresses(): string[] {
    return this.#stopped ? [] : [`${MEMORY_PREFIX}${this.localPeer}/p2p/${this.localPeer}`];
  }

  handle(protocol: string, handler: StreamHandler, options: ProtocolOptions): void {
    this.#handlers.set(protocol, { handler, options });
  }

  unhandle(protocol: string): void {
    this.#handlers.delete(protocol);
  }

  async dial(peer: PeerId, _addresses: readonly string[], options?: { readonly signal?: AbortSignal }): Promise<void> {
    await Promise.resolve();
    options?.signal?.throwIfAborted();
    if (this.#connections.has(peer)) return;
    const remote = this.#reachable(peer);
    if (this.#policy?.isDenied(peer) === true || remote.#policy?.isDenied(this.localPeer) === true) {
      throw new PeerUnreachableError(`the connection to ${peer} was refused`);
    }
    this.#connections.set(peer, new Set());
    remote.#connections.set(this.localPeer, new Set());
    this.#events['peer:connect'].emit(peer);
    remote.#events['peer:connect'].emit(this.localPeer);
  }

  async openStream(peer: PeerId, protocol: string, options: OpenStreamOptions): Promise<FrameStream> {
    await this.dial(peer, [], options);
    const remote = this.#reachable(peer);
    const registration = remote.#handlers.get(protocol);
    if (registration === undefined) throw new ProtocolNotSupportedError(`peer ${peer} does not handle ${protocol}`);
    const local = new MemoryStream(peer, protocol, options.maxFrameBytes);
    const far = new MemoryStream(this.localPeer, protocol, registration.options.maxFrameBytes);
    local.link(far);
    far.link(local);
    this.#track(peer, local);
    remote.#track(this.localPeer, far);
    queueMicrotask(() => registration.handler(far));
    return local;
  }

  async hangUp(peer: PeerId): Promise<void> {
    this.dropConnection(peer);
  }

  setAccessPolicy(policy: AccessPolicy): void {
    this.#policy = policy;
  }

  /** @internal Closes the connection on both ends and resets its streams. */
  dropConnection(peer: PeerId): void {
    const streams = this.#connections.get(peer);
    if (streams === undefined) return;
    this.#connections.delete(peer);
    for (const stream of streams) stream.abort(new StreamResetError('connection closed'));
    this.#events['peer:disconnect'].emit(peer);
    this.#network.lookup(peer)?.dropConnection(this.localPeer);
  }

  connectedPeers(): PeerId[] {
    return [...this.#connections.keys()].sort();
  }

  isConnected(peer: PeerId): boolean {
    return this.#connections.has(peer);
  }

  remoteAddresses(peer: PeerId): string[] {
    return this.#connections.has(peer) ? [`${MEMORY_PREFIX}${peer}`] : [];
  }

  on(event: TransportEvent, listener: (peer: PeerId) => void): () => void {
    return this.#events[event].add(listener);
  }

  async stop(): Promise<void> {
    for (const peer of this.connectedPeers()) this.dropConnection(peer);
    this.#stopped = true;
    this.#network.remove(this.localPeer);
  }

  #reachable(peer: PeerId): MemoryTransport {
    const remote = this.#network.lookup(peer);
    if (this.#stopped || remote === undefined || remote === this || this.#network.isBlocked(this.localPeer, peer)) {
      throw new PeerUnreachableError(`peer ${peer} is not reachable`);
    }
    return remote;
  }

  #track(peer: PeerId, stream: MemoryStream): void {
    const streams = this.#connections.get(peer);
    if (streams === undefined) {
      stream.abort(new StreamResetError('connection closed'));
      return;
    }
    streams.add(stream);
    stream.onDone(() => streams.delete(stream));
  }
}

/** One end of an in-memory stream: reads from its own queue, writes into the far end's. */
class MemoryStream implements FrameStream {
  readonly remotePeer: PeerId;
  readonly protocol: string;
  readonly #maxFrameBytes: number;
  readonly #inbox = new FrameQueue();
  #far: MemoryStream | undefined;
  #writeClosed = false;
  #done: Array<() => void> = [];

  constructor(remotePeer: PeerId, protocol: string, maxFrameBytes: number) {
    this.remotePeer = remotePeer;
    this.protocol = protocol;
    this.#maxFrameBytes = maxFrameBytes;
  }

  link(far: MemoryStream): void {
    this.#far = far;
  }

  onDone(callback: () => void): void {
    this.#done.push(callback);
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.#writeClosed) throw new StreamResetError('stream is closed for writing');
    const far = this.#far!;
    // The reader enforces its own cap, as a length-prefix decoder would on a real connection.
    if (frame.length > far.#maxFrameBytes) {
      far.#inbox.fail(new FrameTooLargeError(frame.length, far.#maxFrameBytes));
      this.abort(new StreamResetError('the remote reset the stream'));
      return;
    }
    await far.#inbox.push(frame.slice());
  }

  async close(): Promise<void> {
    if (this.#writeClosed) return;
    this.#writeClosed = true;
    const far = this.#far;
    if (far !== undefined) far.#inbox.end();
    if (this.#inbox.ended) this.#finish();
  }

  abort(reason: Error): void {
    this.#writeClosed = true;
    this.#inbox.fail(reason);
    const far = this.#far;
    if (far !== undefined && !far.#inbox.ended) {
      far.#writeClosed = true;
      far.#inbox.fail(new StreamResetError('the remote reset the stream'));
      far.#finish();
    }
    this.#finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.#inbox[Symbol.asyncIterator]();
  }

  #finish(): void {
    const callbacks = this.#done;
    this.#done = [];
    for (const callback of callbacks) callback();
  }
}
