import {
  type AccessPolicy,
  FrameQueue,
  type FrameStream,
  FrameTooLargeError,
  Listeners,
  type OpenStreamOptions,
  type PeerId,
  PeerUnreachableError,
  ProtocolNotSupportedError,
  type Clock,
  type ProtocolOptions,
  type Random,
  type RequestAnswer,
  type RequestHandler,
  type RequestHandlerOptions,
  type RequestOptions,
  type StreamHandler,
  StreamResetError,
  type Transport,
  type TransportEvent,
  ExchangeAbortedError,
  WireError,
  serveStream,
  streamExchange,
} from '../mesh/index.ts';
import type { SimClock, SimTimer } from './clock.ts';
import { copyOf } from './bytes.ts';

/** How one direction of a link behaves. */
export interface LinkConfig {
  /** One-way delay: at least `minDelayMs`, on average `meanDelayMs`, plus up to `jitterMs` of noise. */
  readonly minDelayMs: number;
  readonly meanDelayMs: number;
  readonly jitterMs: number;
  /** Probability that a frame is lost; a lost frame resets its stream (docs/SIMULATION.md). */
  readonly loss: number;
  /** Bytes per millisecond, or unlimited when absent. */
  readonly bandwidthBytesPerMs?: number;
  /**
   * Probability that a request is served twice (a client that retried it on a new stream after
   * its first answer was slow): the server runs it again, a little later; the asker takes the first answer.
   */
  readonly duplicate?: number;
}

/** A LAN-like default: ~0.5 ms one way. */
export const DEFAULT_LINK: LinkConfig = { minDelayMs: 0.2, meanDelayMs: 0.5, jitterMs: 0.3, loss: 0 };

/** How long a dial into a partition waits before it fails (packets vanish; nothing answers). */
const DIAL_TIMEOUT_MS = 2_000;
/** Bytes in flight on one stream direction before `send` waits for deliveries. */
const IN_FLIGHT_HIGH_WATER_BYTES = 4 * 1024 * 1024;

/** @internal */
export interface DirectionState {
  busyUntilMs: number;
  clogUntilMs: number;
}

/**
 * The simulated network: connections and framed streams between simulated nodes, each frame
 * delivered by a timer on the simulation's clock after its link's delay. Partitions (one way or
 * both), clogged links, per-link delay, loss and bandwidth are set by scenarios; everything
 * random comes from the network's seeded source.
 */
export class SimNetwork {
  readonly clock: SimClock;
  readonly #random: Random;
  readonly #transports = new Map<PeerId, SimTransport>();
  readonly #blocked = new Set<string>();
  readonly #links = new Map<string, LinkConfig>();
  /** By sender, then receiver: no key string is built per frame (a fifth of the network's own time at 100 nodes). */
  readonly #directions = new Map<PeerId, Map<PeerId, DirectionState>>();
  #defaults: LinkConfig;
  messages = 0;
  /** Frames sent, by protocol (for the benchmark's account of where messages go). */
  readonly messagesByProtocol = new Map<string, number>();

  /** @internal Counts one frame sent on `protocol` (streams' and requests'). */
  countFrame(protocol: string): void {
    this.messagesByProtocol.set(protocol, (this.messagesByProtocol.get(protocol) ?? 0) + 1);
  }
  /** Requests served twice ({@link LinkConfig.duplicate}). */
  duplicated = 0;
  /** Requests asked and not yet answered, failed or timed out ({@link SimTransport.request}). */
  requestsInFlight = 0;
  /** Stream ends open now, on every connection: both ends of a stream that both closed or one reset are released. */
  openStreams = 0;
  bytes = 0;
  dropped = 0;

  constructor(clock: SimClock, random: Random, defaults: LinkConfig = DEFAULT_LINK) {
    this.clock = clock;
    this.#random = random;
    this.#defaults = defaults;
  }

  /** A transport for `peer`, whose timers (deliveries to it) belong to simulated node `owner`. */
  createTransport(peer: PeerId, owner: number): SimTransport {
    if (this.#transports.has(peer)) throw new Error(`peer ${peer} is already on the simulated network`);
    const transport = new SimTransport(this, peer, owner);
    this.#transports.set(peer, transport);
    return transport;
  }

  /** @internal */
  lookup(peer: PeerId): SimTransport | undefined {
    return this.#transports.get(peer);
  }

  /** @internal */
  remove(peer: PeerId): void {
    this.#transports.delete(peer);
  }

  /** Sets every link's behaviour (scenarios: lossy, slow). */
  setDefaults(config: LinkConfig): void {
    this.#defaults = config;
  }

  /** Sets the behaviour of the link from `from` to `to`. */
  setLink(from: PeerId, to: PeerId, config: LinkConfig): void {
    this.#links.set(`${from}>${to}`, config);
  }

  /** Drops everything `from` sends `to` (one way); with `both`, the other way too. Connections between them close. */
  block(from: PeerId, to: PeerId, both = true): void {
    this.#blocked.add(`${from}>${to}`);
    if (both) this.#blocked.add(`${to}>${from}`);
    if (both) this.#transports.get(from)?.dropConnection(to);
  }

  unblock(from: PeerId, to: PeerId, both = true): void {
    this.#blocked.delete(`${from}>${to}`);
    if (both) this.#blocked.delete(`${to}>${from}`);
  }

  /** Cuts every link between the two sides, both ways. */
  partition(left: readonly PeerId[], right: readonly PeerId[]): void {
    for (const a of left) for (const b of right) this.block(a, b);
  }

  /** Ends every partition and one-way block. */
  healAll(): void {
    this.#blocked.clear();
  }

  /** Holds what `from` sends `to` until `untilMs` (a clogged link), then delivers it in order. */
  clog(from: PeerId, to: PeerId, untilMs: number): void {
    this.directionOf(from, to).clogUntilMs = untilMs;
  }

  isBlocked(from: PeerId, to: PeerId): boolean {
    return this.#blocked.size > 0 && this.#blocked.has(`${from}>${to}`);
  }

  #link(from: PeerId, to: PeerId): LinkConfig {
    return this.#links.size === 0 ? this.#defaults : (this.#links.get(`${from}>${to}`) ?? this.#defaults);
  }

  /**
   * @internal When a frame of `bytes` sent now from `from` reaches `to`; undefined when it is
   * lost. `direction` is the link's state as {@link SimNetwork.directionOf} gave it (a stream
   * keeps it rather than looking it up for every frame).
   */
  deliveryTime(from: PeerId, to: PeerId, bytes: number, direction: DirectionState = this.directionOf(from, to)): number | undefined {
    const link = this.#link(from, to);
    this.messages++;
    this.bytes += bytes;
    if (this.isBlocked(from, to) || (link.loss > 0 && this.#random.float() < link.loss)) {
      this.dropped++;
      return undefined;
    }
    const now = this.clock.now();
    const spread = Math.max(0, link.meanDelayMs - link.minDelayMs);
    // An exponential tail above the minimum, with the mean the link asks for, plus jitter.
    const delay = link.minDelayMs + (spread === 0 ? 0 : -spread * Math.log(1 - this.#random.float())) + this.#random.float() * link.jitterMs;
    const sendAt = Math.max(now, direction.busyUntilMs, direction.clogUntilMs);
    const transmitMs = link.bandwidthBytesPerMs === undefined ? 0 : bytes / link.bandwidthBytesPerMs;
    direction.busyUntilMs = sendAt + transmitMs;
    return sendAt + transmitMs + delay;
  }

  /** @internal Whether a request from `from` to `to` is served twice ({@link LinkConfig.duplicate}). */
  duplicates(from: PeerId, to: PeerId): boolean {
    const chance = this.#link(from, to).duplicate ?? 0;
    if (chance <= 0 || this.#random.float() >= chance) return false;
    this.duplicated++;
    return true;
  }

  /** @internal One-way delay for control traffic (dials, stream opening). */
  controlDelay(from: PeerId, to: PeerId): number | undefined {
    if (this.isBlocked(from, to) || this.isBlocked(to, from)) return undefined;
    const link = this.#link(from, to);
    return link.minDelayMs + this.#random.float() * link.jitterMs;
  }

  /** @internal The state of the link from `from` to `to` (one object for good: entries are never dropped). */
  directionOf(from: PeerId, to: PeerId): DirectionState {
    let byReceiver = this.#directions.get(from);
    if (byReceiver === undefined) {
      byReceiver = new Map();
      this.#directions.set(from, byReceiver);
    }
    let state = byReceiver.get(to);
    if (state === undefined) {
      state = { busyUntilMs: 0, clogUntilMs: 0 };
      byReceiver.set(to, state);
    }
    return state;
  }
}

interface Registration {
  readonly handler: StreamHandler;
  readonly options: ProtocolOptions;
}

interface RequestRegistration {
  readonly handler: RequestHandler;
  readonly options: RequestHandlerOptions;
}

/** What a connection ends when it closes: its streams and its requests in flight. */
interface InFlight {
  abort(reason: Error): void;
}

/**
 * One end of a connection: what is in flight on it, and the link's state from this end to the
 * other (looked up once, not for every frame). What is in flight is kept in order, each item
 * removed as it ends: nearly always the last one added (a probe's request), else found in a list
 * as short as what is in flight (a set's insertion and deletion were 5 % of a 1,000-node simulated
 * second). Finished items left for later compaction were 50,000 at 1,000 nodes — requests with
 * their frames and promises, held long enough to be promoted to the old generation and collected
 * there: the simulation ran 4 % faster without them.
 */
class SimConnection {
  readonly out: DirectionState;
  #items: InFlight[] = [];

  constructor(out: DirectionState) {
    this.out = out;
  }

  add(item: InFlight): void {
    this.#items.push(item);
  }

  /** `item`, added before, is over (call once per item). */
  ended(item: InFlight): void {
    const items = this.#items;
    const last = items.length - 1;
    if (items[last] === item) {
      items.pop();
      return;
    }
    const at = items.indexOf(item);
    if (at >= 0) items.splice(at, 1);
  }

  /** What is still in flight, in the order it started. */
  inFlight(): InFlight[] {
    return this.#items.slice();
  }

  /** Items held: exactly those in flight. */
  get size(): number {
    return this.#items.length;
  }
}

/** A node's transport on the {@link SimNetwork}. */
export class SimTransport implements Transport {
  readonly localPeer: PeerId;
  readonly #network: SimNetwork;
  readonly #handlers = new Map<string, Registration>();
  readonly #requestHandlers = new Map<string, RequestRegistration>();
  readonly #connections = new Map<PeerId, SimConnection>();
  /** The simulated node whose event loop runs this transport's timers (deliveries to it). */
  readonly owner: number;
  /** `connectedPeers()` as last sorted; dropped when a connection opens or closes. */
  #sortedPeers: PeerId[] | undefined;
  readonly #events = { 'peer:connect': new Listeners<PeerId>(), 'peer:disconnect': new Listeners<PeerId>() };
  #policy: AccessPolicy | undefined;
  #stopped = false;

  constructor(network: SimNetwork, peer: PeerId, owner: number) {
    this.#network = network;
    this.localPeer = peer;
    this.owner = owner;
  }

  listenAddresses(): string[] {
    return this.#stopped ? [] : [`/sim/${this.localPeer}/p2p/${this.localPeer}`];
  }

  handle(protocol: string, handler: StreamHandler, options: ProtocolOptions): void {
    this.#handlers.set(protocol, { handler, options });
  }

  /** Requests to `protocol` are answered without streams; a stream opened to it is served as one request. */
  handleRequests(protocol: string, handler: RequestHandler, options: RequestHandlerOptions): void {
    this.#requestHandlers.set(protocol, { handler, options });
    this.#handlers.set(protocol, { handler: (stream) => void serveStream(stream, handler, options), options: { maxFrameBytes: options.maxFrameBytes } });
  }

  unhandle(protocol: string): void {
    this.#handlers.delete(protocol);
    this.#requestHandlers.delete(protocol);
  }

  setAccessPolicy(policy: AccessPolicy): void {
    this.#policy = policy;
  }

  async dial(peer: PeerId, _addresses: readonly string[], options?: { readonly signal?: AbortSignal }): Promise<void> {
    if (this.#connections.has(peer)) return;
    const remote = this.#network.lookup(peer);
    const delay = remote === undefined || this.#stopped || peer === this.localPeer ? undefined : this.#network.controlDelay(this.localPeer, peer);
    // A handshake takes a round trip; into a partition, it takes the dial timeout and fails.
    await this.#wait(delay === undefined ? DIAL_TIMEOUT_MS : 2 * delay, options?.signal);
    if (this.#connections.has(peer)) return;
    // A process killed while it dialled connects nothing (the far end would hold a connection to no one).
    if (this.#stopped) throw new PeerUnreachableError(`peer ${peer} is not reachable: this transport stopped`);
    const reachable = this.#network.lookup(peer);
    if (delay === undefined || reachable === undefined || this.#network.controlDelay(this.localPeer, peer) === undefined) throw new PeerUnreachableError(`peer ${peer} is not reachable`);
    if (this.#policy?.isDenied(peer) === true || reachable.#policy?.isDenied(this.localPeer) === true) throw new PeerUnreachableError(`the connection to ${peer} was refused`);
    this.#connections.set(peer, new SimConnection(this.#network.directionOf(this.localPeer, peer)));
    this.#sortedPeers = undefined;
    reachable.#connections.set(this.localPeer, new SimConnection(this.#network.directionOf(peer, this.localPeer)));
    reachable.#sortedPeers = undefined;
    this.#events['peer:connect'].emit(peer);
    reachable.#events['peer:connect'].emit(this.localPeer);
  }

  async openStream(peer: PeerId, protocol: string, options: OpenStreamOptions): Promise<FrameStream> {
    await this.dial(peer, [], options);
    const remote = this.#network.lookup(peer);
    if (remote === undefined || !this.#connections.has(peer)) throw new PeerUnreachableError(`peer ${peer} is not reachable`);
    const registration = remote.#handlers.get(protocol);
    if (registration === undefined) throw new ProtocolNotSupportedError(`peer ${peer} does not handle ${protocol}`);
    const local = new SimStream(this.#network, this.localPeer, remote, protocol, options.maxFrameBytes);
    const far = new SimStream(this.#network, peer, this, protocol, registration.options.maxFrameBytes);
    local.link(far);
    far.link(local);
    this.#track(peer, local);
    remote.#track(this.localPeer, far);
    // The far side learns of the stream with its first frame's delay, before that frame.
    const at = this.#network.controlDelay(this.localPeer, peer);
    this.#network.clock.timer(remote.owner, () => registration.handler(far), at ?? 0);
    return local;
  }

  /**
   * One request and its answer as two frames, each delivered like a stream's (delay, loss, a
   * partition), with no streams: what a SWIM probe costs most of a large simulated fleet's time.
   * A lost frame fails the exchange as it would reset a stream; a connection that closes ends it;
   * past `timeoutMs` it is over (a frame still on its way is dropped). A peer that serves the
   * protocol on streams only is asked on a stream.
   */
  request(peer: PeerId, protocol: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array | undefined> {
    // Connected already (nearly always): no dial to wait for, and no promise but the request's.
    if (this.#connections.has(peer)) {
      try {
        return this.#requestConnected(peer, protocol, frame, options, options.timeoutMs);
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    return this.#dialThenRequest(peer, protocol, frame, options);
  }

  async #dialThenRequest(peer: PeerId, protocol: string, frame: Uint8Array, options: RequestOptions): Promise<Uint8Array | undefined> {
    const startedAt = this.#network.clock.now();
    if (!(await this.#dialWithin(peer, options.timeoutMs))) return undefined;
    return this.#requestConnected(peer, protocol, frame, options, options.timeoutMs - (this.#network.clock.now() - startedAt));
  }

  /** {@link SimTransport.request} once connected, with `remainingMs` of its time left. */
  #requestConnected(peer: PeerId, protocol: string, frame: Uint8Array, options: RequestOptions, remainingMs: number): Promise<Uint8Array | undefined> {
    const remote = this.#network.lookup(peer);
    const mine = this.#connections.get(peer);
    if (remote === undefined || mine === undefined) throw new PeerUnreachableError(`peer ${peer} is not reachable`);
    const registration = remote.#requestHandlers.get(protocol);
    // Served on streams there (or not at all: openStream says so).
    if (registration === undefined) return streamExchange(this, this.#ownClock(), peer, protocol, frame, options, remainingMs);
    const theirs = remote.#connections.get(this.localPeer);
    if (theirs === undefined) throw new PeerUnreachableError(`peer ${peer} is not reachable`);
    return new Promise((resolve, reject) => new SimRequest(this.#network, { asker: this, server: remote, protocol, frame, options, timeoutMs: remainingMs, registration, connections: [mine, theirs] }, resolve, reject));
  }

  /** Dials `peer`; false when `timeoutMs` passed first. */
  async #dialWithin(peer: PeerId, timeoutMs: number): Promise<boolean> {
    const controller = new AbortController();
    const clock = this.#ownClock();
    const timer = clock.setTimeout(() => controller.abort(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    try {
      await this.dial(peer, [], { signal: controller.signal });
      return true;
    } catch (error) {
      if (controller.signal.aborted) return false;
      throw error;
    } finally {
      clock.clearTimeout(timer);
    }
  }

  /** This node's timers on the network's clock (held while it is paused, dropped when it crashes). */
  #ownClock(): Clock {
    const network = this.#network;
    const owner = this.owner;
    return {
      now: () => network.clock.now(),
      setTimeout: (callback, delayMs) => network.clock.timer(owner, callback, delayMs),
      clearTimeout: (timer) => network.clock.cancelTimer(timer as SimTimer),
    };
  }

  async hangUp(peer: PeerId): Promise<void> {
    this.dropConnection(peer);
  }

  /** @internal Closes the connection on both ends and resets its streams. */
  dropConnection(peer: PeerId): void {
    const connection = this.#connections.get(peer);
    if (connection === undefined) return;
    this.#connections.delete(peer);
    this.#sortedPeers = undefined;
    for (const item of connection.inFlight()) item.abort(new StreamResetError('connection closed'));
    this.#events['peer:disconnect'].emit(peer);
    this.#network.lookup(peer)?.dropConnection(this.localPeer);
  }

  /** @internal Streams and requests this end's connections hold (for tests: only those in flight). */
  get held(): number {
    let held = 0;
    for (const connection of this.#connections.values()) held += connection.size;
    return held;
  }

  connectedPeers(): PeerId[] {
    // Read on every keeper tick, session check and placement pass: sorted once per change.
    this.#sortedPeers ??= [...this.#connections.keys()].sort();
    return [...this.#sortedPeers];
  }

  isConnected(peer: PeerId): boolean {
    return this.#connections.has(peer);
  }

  remoteAddresses(peer: PeerId): string[] {
    return this.#connections.has(peer) ? [`/sim/${peer}`] : [];
  }

  on(event: TransportEvent, listener: (peer: PeerId) => void): () => void {
    return this.#events[event].add(listener);
  }

  async stop(): Promise<void> {
    // Stopped first: what the disconnects below set off (a probe of the peer, a dial) must not
    // open a connection from a dead process, which its peer would keep, half-open, for ever.
    this.#stopped = true;
    for (const peer of this.connectedPeers()) this.dropConnection(peer);
    this.#network.remove(this.localPeer);
  }

  #wait(delayMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) return reject(signal.reason as Error);
      const timer = this.#network.clock.timer(this.owner, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, delayMs);
      const onAbort = (): void => {
        this.#network.clock.cancelTimer(timer);
        reject(signal!.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The request handler `protocol` has here (SimRequest serves through it). */
  requestHandler(protocol: string): RequestRegistration | undefined {
    return this.#requestHandlers.get(protocol);
  }

  #track(peer: PeerId, stream: SimStream): void {
    const connection = this.#connections.get(peer);
    if (connection === undefined) {
      stream.abort(new StreamResetError('connection closed'));
      return;
    }
    connection.add(stream);
    this.#network.openStreams++;
    stream.onDone(() => {
      connection.ended(stream);
      this.#network.openStreams--;
    });
  }
}

/** What one {@link SimRequest} carries. */
interface RequestSpec {
  readonly asker: SimTransport;
  readonly server: SimTransport;
  readonly protocol: string;
  readonly frame: Uint8Array;
  readonly options: ProtocolOptions;
  readonly timeoutMs: number;
  readonly registration: RequestRegistration;
  /** The asker's and the server's end of their connection. */
  readonly connections: readonly [SimConnection, SimConnection];
}

/**
 * One request in flight ({@link SimTransport.request}): the request frame to the server after the
 * link's delay, its handler's answer back after the return link's; held by both ends'
 * connections, so either closing ends it, and over at the asker's timeout.
 */
class SimRequest implements InFlight {
  readonly #network: SimNetwork;
  readonly #spec: RequestSpec;
  readonly #resolve: (answer: Uint8Array | undefined) => void;
  readonly #reject: (error: Error) => void;
  readonly #timeout: SimTimer;
  #done = false;

  constructor(network: SimNetwork, spec: RequestSpec, resolve: (answer: Uint8Array | undefined) => void, reject: (error: Error) => void) {
    this.#network = network;
    this.#spec = spec;
    this.#resolve = resolve;
    this.#reject = reject;
    spec.connections[0].add(this);
    spec.connections[1].add(this);
    network.requestsInFlight++;
    this.#timeout = network.clock.timer(spec.asker.owner, () => {
      if (this.#done) return;
      this.#finish();
      resolve(undefined);
    }, spec.timeoutMs);
    const { asker, server } = spec;
    const copy = this.#carry(asker, server, spec.connections[0].out, spec.frame);
    if (copy === undefined) return;
    this.#at(copy.at, server.owner, () => {
      this.#serve(copy.bytes, (answer) => this.#answer(answer));
      if (network.duplicates(asker.localPeer, server.localPeer)) this.#retry(copy.bytes);
    });
  }

  abort(reason: Error): void {
    if (this.#done) return;
    this.#finish();
    this.#reject(reason);
  }

  /** Runs the server's handler on `bytes`; what it answers goes to `answered`, what it throws resets the exchange. */
  #serve(bytes: Uint8Array, answered: (answer: Uint8Array | RequestAnswer | undefined) => void): void {
    const { registration } = this.#spec;
    const asker = this.#spec.asker.localPeer;
    if (bytes.length > registration.options.maxFrameBytes) {
      registration.options.onError?.(asker, new FrameTooLargeError(bytes.length, registration.options.maxFrameBytes));
      this.abort(new StreamResetError('the remote reset the stream'));
      return;
    }
    const failed = (error: unknown): void => {
      if (!(error instanceof ExchangeAbortedError)) registration.options.onError?.(asker, error as Error);
      this.abort(new StreamResetError('the remote reset the stream'));
    };
    try {
      registration.handler(asker, bytes).then(answered, failed);
    } catch (error) {
      failed(error);
    }
  }

  /**
   * Serves the request again, as a retry on a new stream would: its frame crosses the link again
   * (delay, loss, a closed connection); its answer is sent, and not read (the asker has one).
   */
  #retry(bytes: Uint8Array): void {
    const network = this.#network;
    const { server, protocol, registration } = this.#spec;
    const asker = this.#spec.asker.localPeer;
    network.countFrame(protocol);
    const at = network.deliveryTime(asker, server.localPeer, bytes.length, this.#spec.connections[0].out);
    // Sent a round trip after the first (the asker waited for an answer before it retried).
    const roundTrip = network.controlDelay(asker, server.localPeer);
    if (at === undefined || roundTrip === undefined) return;
    const again = copyOf(bytes);
    network.clock.timer(server.owner, () => {
      if (!server.isConnected(asker)) return;
      registration.handler(asker, again).then(
        (answer) => {
          if (answer !== undefined && !(answer instanceof Uint8Array)) answer.afterSent();
        },
        (error: unknown) => {
          if (!(error instanceof ExchangeAbortedError)) registration.options.onError?.(asker, error as Error);
        },
      );
    }, at + 2 * roundTrip - network.clock.now());
  }

  #answer(given: Uint8Array | RequestAnswer | undefined): void {
    const network = this.#network;
    const { asker, server, registration } = this.#spec;
    if (this.#done) {
      // The asker gave up or the connection closed first: the answer cannot be sent.
      registration.options.onError?.(asker.localPeer, new StreamResetError('the stream was reset before the answer was sent'));
      return;
    }
    if (given === undefined) {
      // Closed without answering: the asker reads the end of the stream (as a close, it is not delayed).
      this.#at(network.clock.now(), asker.owner, () => this.abort(new WireError('protocol', 'the stream ended before a message arrived')));
      return;
    }
    const answer = given instanceof Uint8Array ? given : given.frame;
    const sent = given instanceof Uint8Array ? undefined : () => given.afterSent();
    const copy = this.#carry(server, asker, this.#spec.connections[1].out, answer);
    if (copy !== undefined) {
      this.#at(copy.at, asker.owner, () => {
        if (copy.bytes.length > this.#spec.options.maxFrameBytes) {
          this.abort(new FrameTooLargeError(copy.bytes.length, this.#spec.options.maxFrameBytes));
          return;
        }
        this.#finish();
        this.#resolve(copy.bytes);
      });
    }
    // What the server does once it has sent the answer, when the answer arrives (after it, at the same instant) or is lost.
    if (sent !== undefined) network.clock.timer(server.owner, sent, (copy?.at ?? network.clock.now()) - network.clock.now());
  }

  /** A copy of `frame` on its way from `from` to `to` (the link `out`), and when it arrives; undefined (and the exchange failed) when it is lost. */
  #carry(from: SimTransport, to: SimTransport, out: DirectionState, frame: Uint8Array): { bytes: Uint8Array; at: number } | undefined {
    const network = this.#network;
    const bytes = copyOf(frame);
    network.countFrame(this.#spec.protocol);
    const at = network.deliveryTime(from.localPeer, to.localPeer, bytes.length, out);
    if (at !== undefined) return { bytes, at };
    // Lost on the way: a reliable stream that lost data is a broken stream, on both ends.
    this.#at(network.clock.now(), to.owner, () => this.abort(new StreamResetError('the connection lost data')));
    return undefined;
  }

  /** Runs `callback` at `atMs` on `owner`'s timers, unless the exchange is over by then. */
  #at(atMs: number, owner: number, callback: () => void): void {
    this.#network.clock.timer(owner, () => {
      if (!this.#done) callback();
    }, atMs - this.#network.clock.now());
  }

  #finish(): void {
    this.#done = true;
    this.#network.clock.cancelTimer(this.#timeout);
    this.#spec.connections[0].ended(this);
    this.#spec.connections[1].ended(this);
    this.#network.requestsInFlight--;
  }
}

/** One end of a simulated stream: reads its own inbox; what it sends reaches the far end after the link's delay. */
class SimStream implements FrameStream {
  readonly remotePeer: PeerId;
  readonly protocol: string;
  readonly #network: SimNetwork;
  readonly #local: PeerId;
  readonly #maxFrameBytes: number;
  readonly #inbox = new FrameQueue();
  #far: SimStream | undefined;
  #writeClosed = false;
  #lastDeliveryMs = 0;
  #inFlightBytes = 0;
  #waiters: Array<() => void> = [];
  #done: Array<() => void> = [];
  #aborted = false;
  /** The link's state from this end to the far one, and the node whose loop takes what arrives there. */
  readonly #direction: DirectionState;
  readonly #remoteOwner: number;

  /** `remote` is the far end's transport: its node's loop takes what arrives there. */
  constructor(network: SimNetwork, local: PeerId, remote: SimTransport, protocol: string, maxFrameBytes: number) {
    this.#network = network;
    this.#local = local;
    this.remotePeer = remote.localPeer;
    this.protocol = protocol;
    this.#maxFrameBytes = maxFrameBytes;
    this.#direction = network.directionOf(local, remote.localPeer);
    this.#remoteOwner = remote.owner;
  }

  link(far: SimStream): void {
    this.#far = far;
  }

  onDone(callback: () => void): void {
    this.#done.push(callback);
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.#writeClosed || this.#aborted) throw new StreamResetError('stream is closed for writing');
    const far = this.#far!;
    const copy = copyOf(frame);
    this.#network.countFrame(this.protocol);
    const at = this.#network.deliveryTime(this.#local, this.remotePeer, copy.length, this.#direction);
    if (at === undefined) {
      // Lost on the way: a reliable stream that lost data is a broken stream, on both ends.
      this.#schedule(this.clockNow(), () => this.abort(new StreamResetError('the connection lost data')));
      return;
    }
    // Frames of one stream arrive in the order they were sent.
    const deliverAt = Math.max(at, this.#lastDeliveryMs);
    this.#lastDeliveryMs = deliverAt;
    this.#inFlightBytes += copy.length;
    this.#schedule(deliverAt, () => {
      this.#inFlightBytes -= copy.length;
      this.#releaseWaiters();
      if (far.#aborted) return;
      if (copy.length > far.#maxFrameBytes) {
        far.#inbox.fail(new FrameTooLargeError(copy.length, far.#maxFrameBytes));
        this.abort(new StreamResetError('the remote reset the stream'));
        return;
      }
      void far.#inbox.push(copy).catch(() => {});
    });
    while (this.#inFlightBytes > IN_FLIGHT_HIGH_WATER_BYTES && !this.#aborted) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.#writeClosed || this.#aborted) return;
    this.#writeClosed = true;
    const far = this.#far!;
    this.#schedule(Math.max(this.clockNow(), this.#lastDeliveryMs), () => {
      // A stream is done once both of its ends closed: whichever closes second finishes both
      // (the first to close found the other's inbox still open). Before, the end that closed
      // first was never finished, and its connection kept it: every probe's stream, for ever.
      if (!far.#aborted) {
        far.#inbox.end();
        if (far.#writeClosed) far.#finish();
      }
      if (this.#inbox.ended) this.#finish();
    });
  }

  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#writeClosed = true;
    this.#inbox.fail(reason);
    this.#releaseWaiters();
    const far = this.#far;
    if (far !== undefined && !far.#aborted) {
      far.#aborted = true;
      far.#writeClosed = true;
      far.#inbox.fail(new StreamResetError('the remote reset the stream'));
      far.#releaseWaiters();
      far.#finish();
    }
    this.#finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.#inbox[Symbol.asyncIterator]();
  }

  clockNow(): number {
    return this.#network.clock.now();
  }

  #schedule(atMs: number, callback: () => void): void {
    this.#network.clock.timer(this.#remoteOwner, callback, atMs - this.clockNow());
  }

  #releaseWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #finish(): void {
    const callbacks = this.#done;
    this.#done = [];
    for (const callback of callbacks) callback();
  }
}
