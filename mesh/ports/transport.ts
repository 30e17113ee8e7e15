/** A libp2p peer id in its string form (base58btc, e.g. `12D3KooW…`). */
export type PeerId = string & { readonly __brand: 'PeerId' };

/** Settings a protocol gives for each stream it handles or opens. */
export interface ProtocolOptions {
  /** Frames longer than this are refused before they are buffered. */
  readonly maxFrameBytes: number;
}

export interface OpenStreamOptions extends ProtocolOptions {
  readonly signal?: AbortSignal;
}

export interface RequestOptions extends ProtocolOptions {
  /** How long to wait for the answer (connecting included). */
  readonly timeoutMs: number;
}

/**
 * A stream of whole frames (messages) to one peer on one protocol. Iterating yields frames until
 * the remote closes its side; it throws {@link FrameTooLargeError} when the remote sends a frame
 * over the cap, and {@link StreamResetError} when the stream is reset.
 */
export interface FrameStream extends AsyncIterable<Uint8Array> {
  readonly remotePeer: PeerId;
  readonly protocol: string;
  /** Sends one frame; resolves once the transport has room for more (backpressure). */
  send(frame: Uint8Array): Promise<void>;
  /** Closes the writing side; the remote reads what was sent, then its iteration ends. */
  close(): Promise<void>;
  /** Resets the stream in both directions. */
  abort(reason: Error): void;
  /**
   * Optional: false once the stream can no longer be written to (closed or reset, perhaps by a
   * connection that went away before anyone read from it): a caller keeping it for later sends
   * opens another instead of failing a send.
   */
  readonly writable?: boolean;
}

export type StreamHandler = (stream: FrameStream) => void;

/**
 * Serves one request frame from `peer` with one answer frame; undefined closes without an answer.
 * A throw resets the exchange (see `serveRequests` in wire/exchange.ts).
 */
export type RequestHandler = (peer: PeerId, frame: Uint8Array) => Promise<Uint8Array | RequestAnswer | undefined>;

/** An answer with something to do once it is sent (hang up on a peer that was just refused). */
export interface RequestAnswer {
  readonly frame: Uint8Array;
  /** Run once the answer is on its way (sent and closed; in the simulator, when it arrives or is lost). */
  afterSent(): void;
}

export interface RequestHandlerOptions extends ProtocolOptions {
  /** Told of what went wrong serving a request (a malformed or oversized frame), to count it against the peer. */
  readonly onError?: (peer: PeerId, error: Error) => void;
}

export type TransportEvent = 'peer:connect' | 'peer:disconnect';

/** Who may connect, and who may use what the transport serves by itself (routing, identify). */
export interface AccessPolicy {
  /** Refused at the connection, both ways (revoked peers): no connection to it is kept. */
  isDenied(peer: PeerId): boolean;
  /** Whether `peer` is (or becomes, within the admission timeout) admitted to the fleet's protocols. */
  whenAdmitted(peer: PeerId): Promise<boolean>;
}

/**
 * Connections and framed streams between peers. The real adapter is libp2p (TCP, Noise, Yamux);
 * the in-memory one connects transports registered on a {@link MemoryNetwork}.
 */
export interface Transport {
  readonly localPeer: PeerId;
  /** Addresses other peers can dial, including the `/p2p/<id>` suffix. */
  listenAddresses(): string[];
  handle(protocol: string, handler: StreamHandler, options: ProtocolOptions): void;
  unhandle(protocol: string): void;
  /** Opens a stream, connecting first when needed (known addresses, then peer routing). */
  openStream(peer: PeerId, protocol: string, options: OpenStreamOptions): Promise<FrameStream>;
  /**
   * Optional: one request frame and its answer without a stream of their own, for a transport
   * where a stream costs more than the two frames (the simulator: two per SWIM probe). Resolves
   * with the answer, or undefined when none came within `timeoutMs` (the exchange is then over:
   * a request not yet delivered never is, an answer still to come is dropped, as a reset stream's
   * would be); rejects as the stream way would (reset, refused, ended without an answer,
   * oversized). `exchange` in wire/exchange.ts uses streams where this is absent.
   */
  request?(peer: PeerId, protocol: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array | undefined>;
  /**
   * Optional: serves `protocol` as requests, each answered by `handler`; with it, streams opened
   * to `protocol` are served one request each too. Without it, `serveRequests` serves them on
   * streams (`handle`).
   */
  handleRequests?(protocol: string, handler: RequestHandler, options: RequestHandlerOptions): void;
  /** Connects to `peer`, trying `addresses` (multiaddr strings) and what the transport already knows. */
  dial(peer: PeerId, addresses: readonly string[], options?: { readonly signal?: AbortSignal }): Promise<void>;
  hangUp(peer: PeerId): Promise<void>;
  connectedPeers(): PeerId[];
  /** Optional: whether a connection to `peer` is open (cheaper than {@link Transport.connectedPeers} for one peer). */
  isConnected?(peer: PeerId): boolean;
  /** Remote addresses of the current connections to `peer`. */
  remoteAddresses(peer: PeerId): string[];
  on(event: TransportEvent, listener: (peer: PeerId) => void): () => void;
  /**
   * Applies `policy` to new connections and streams: denied peers are refused, and the protocols
   * the transport runs itself (a DHT, identify) serve only admitted peers. Connections already
   * open are the caller's to close (it may first tell the peer why).
   */
  setAccessPolicy(policy: AccessPolicy): void;
  stop(): Promise<void>;
}

/** Thrown by a stream's iterator when the remote sends a frame over the protocol's cap. */
export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError';
  readonly frameBytes: number;
  readonly maxFrameBytes: number;

  constructor(frameBytes: number, maxFrameBytes: number) {
    super(`frame of ${frameBytes} bytes exceeds the ${maxFrameBytes}-byte limit`);
    this.frameBytes = frameBytes;
    this.maxFrameBytes = maxFrameBytes;
  }
}

/** Thrown when a stream is reset by either side or its connection closes. */
export class StreamResetError extends Error {
  override name = 'StreamResetError';
}

/** Thrown when a peer cannot be reached: not connected and no dial succeeded. */
export class PeerUnreachableError extends Error {
  override name = 'PeerUnreachableError';
}

/** Thrown when the remote peer does not handle the requested protocol. */
export class ProtocolNotSupportedError extends Error {
  override name = 'ProtocolNotSupportedError';
}

/** A tiny typed listener registry shared by the adapters. */
export class Listeners<T> {
  readonly #listeners = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(value: T): void {
    for (const listener of [...this.#listeners]) listener(value);
  }

  /** Calls `call` with each listener (as `emit` does, over a copy: one may unsubscribe meanwhile). */
  forEach(call: (listener: (value: T) => void) => void): void {
    for (const listener of [...this.#listeners]) call(listener);
  }
}
