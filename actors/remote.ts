import {
  AbortedError,
  type Clock,
  type FrameStream,
  type Logger,
  type MessageOf,
  type PeerId,
  type PeerPenalties,
  type TimerId,
  type Transport,
  WireError,
  decodeCbor,
  decodeMessage,
  defineProtocol,
  encodeCbor,
  encodeMessage,
  s,
} from '../mesh/index.ts';
import { type ActorHost, type ActorRef, AskTimeoutError, DeadLetterError } from './host.ts';

/** A message body, CBOR-encoded, is at most this large. */
export const MAX_ACTOR_MESSAGE_BYTES = 512 * 1024;
const MAX_FRAME_BYTES = 1024 * 1024;
/** Items per frame at most; a sender batches what queued while the last frame was being written. */
const MAX_ITEMS_PER_FRAME = 1_024;
/** Items waiting to be written to one peer at most; beyond, a tell is a dead letter (never blocks). */
const MAX_QUEUED_ITEMS = 10_000;
/** Asks waiting for answers from one peer at most. */
const MAX_PENDING_ASKS = 10_000;
const OPEN_TIMEOUT_MS = 2_000;
const DEFAULT_ASK_TIMEOUT_MS = 5_000;

const item = s.object({
  /** tell, ask, reply (to an ask) or fail (an ask that could not be answered, with why). */
  t: s.oneOf(['tell', 'ask', 'reply', 'fail'] as const),
  id: s.optional(s.uint()),
  to: s.optional(s.string({ min: 1, max: 200 })),
  body: s.optional(s.bytes({ max: MAX_ACTOR_MESSAGE_BYTES })),
  error: s.optional(s.string({ max: 500 })),
});
type Item = ReturnType<typeof item.check>;

/**
 * The actor protocol: each node opens one long-lived stream to a peer for what it sends (tells
 * and asks) and reads the answers to its asks on the same stream; frames carry batches.
 */
export const actorProtocol = defineProtocol({
  id: '/powernode/actor/1',
  version: 1,
  maxFrameBytes: MAX_FRAME_BYTES,
  messages: { batch: s.object({ items: s.array(item, { max: MAX_ITEMS_PER_FRAME }) }) },
});
type ActorFrame = MessageOf<typeof actorProtocol>;

/** Thrown by `ask` when the remote node answered that it could not deliver the message. */
export class RemoteRefusedError extends DeadLetterError {
  override name = 'RemoteRefusedError';
}

export interface RemoteActorsInit {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly log: Logger;
  readonly penalties: PeerPenalties;
  readonly host: ActorHost;
  /** Whether `peer` may use the actor protocol (admitted on its connection). */
  isAdmitted(peer: PeerId): boolean;
  /** Whether messages to `peer` can go out now: a member that failure detection does not hold dead or gone. */
  isReachable(peer: PeerId): boolean;
}

interface PendingAsk {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerId;
}

/**
 * Writes items to one stream in batches: whatever queued while the previous frame was written goes
 * in the next one, so a burst of a thousand tells costs a few frames, not a thousand.
 */
class BatchWriter {
  readonly #queue: Item[] = [];
  #writing = false;
  #failed: Error | undefined;
  readonly #stream: () => Promise<FrameStream>;
  readonly #onFail: (error: Error) => void;

  constructor(stream: () => Promise<FrameStream>, onFail: (error: Error) => void) {
    this.#stream = stream;
    this.#onFail = onFail;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Queues one item; false when the queue is full or the stream has failed. */
  push(entry: Item): boolean {
    if (this.#failed !== undefined || this.#queue.length >= MAX_QUEUED_ITEMS) return false;
    this.#queue.push(entry);
    if (!this.#writing) void this.#drain();
    return true;
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const stream = await this.#stream();
        const items = this.#take();
        await stream.send(encodeMessage(actorProtocol, { type: 'batch', body: { items } }));
      }
    } catch (error) {
      this.#failed = error as Error;
      this.#queue.length = 0;
      this.#onFail(error as Error);
    } finally {
      this.#writing = false;
    }
  }

  /** The next batch: up to the item cap, and within the frame cap by the bodies' sizes. */
  #take(): Item[] {
    let bytes = 0;
    let count = 0;
    while (count < this.#queue.length && count < MAX_ITEMS_PER_FRAME) {
      const size = (this.#queue[count]!.body?.length ?? 0) + 64;
      if (count > 0 && bytes + size > MAX_FRAME_BYTES - 4_096) break;
      bytes += size;
      count++;
    }
    return this.#queue.splice(0, count);
  }
}

/** This node's side of the conversation with one peer: its outbound stream and the asks on it. */
class Channel {
  readonly writer: BatchWriter;
  readonly pending = new Map<number, PendingAsk>();
  #stream: Promise<FrameStream> | undefined;
  /** The stream once open. */
  #current: FrameStream | undefined;
  #closed = false;
  readonly peer: PeerId;
  readonly owner: RemoteActors;
  readonly init: RemoteActorsInit;

  constructor(peer: PeerId, owner: RemoteActors, init: RemoteActorsInit) {
    this.peer = peer;
    this.owner = owner;
    this.init = init;
    this.writer = new BatchWriter(
      () => this.#open(),
      (error) => owner.channelFailed(this, error),
    );
  }

  #open(): Promise<FrameStream> {
    if (this.#stream !== undefined) return this.#stream;
    const controller = new AbortController();
    const timer = this.init.clock.setTimeout(() => controller.abort(new Error(`could not open the actor stream within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
    this.#stream = this.init.transport
      .openStream(this.peer, actorProtocol.id, { maxFrameBytes: actorProtocol.maxFrameBytes, signal: controller.signal })
      .finally(() => this.init.clock.clearTimeout(timer));
    void this.#stream.then(
      (stream) => {
        this.#current = stream;
        void this.#readAnswers(stream);
      },
      () => {},
    );
    return this.#stream;
  }

  /** Whether its stream is known to be unwritable (its connection went away) while no read has told so yet. */
  get stale(): boolean {
    return this.#current?.writable === false;
  }

  /** Answers to this node's asks come back on its own stream. */
  async #readAnswers(stream: FrameStream): Promise<void> {
    try {
      for await (const frame of stream) {
        const message = this.owner.decode(this.peer, frame);
        if (message === undefined) continue;
        for (const entry of message.body.items) this.owner.answer(this, entry);
      }
      this.owner.channelFailed(this, new DeadLetterError(`the actor stream to ${this.peer} closed`));
    } catch (error) {
      this.owner.channelFailed(this, error as Error);
    }
  }

  close(reason: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    void this.#stream?.then(
      (stream) => stream.abort(reason),
      () => {},
    );
    for (const ask of this.pending.values()) {
      this.init.clock.clearTimeout(ask.timer);
      ask.reject(reason);
    }
    this.pending.clear();
  }
}

/** Counters for status. */
export interface RemoteActorStats {
  readonly sent: number;
  readonly received: number;
  readonly pendingAsks: number;
  readonly deadLetters: number;
  readonly lateReplies: number;
  readonly refused: number;
}

/**
 * Location-transparent messaging between actor hosts (docs/PLACEMENT.md §Actor host): `tell` and
 * `ask` to an {@link ActorRef} on another node. A message to a node that is dead, gone, or not a
 * member is a dead letter at once; asks in flight to a node that dies or whose stream breaks fail
 * at once, never hang. What a peer sends is decoded with limits and checked against the target
 * actor's shape; bad frames are counted against the peer and never reach an actor.
 */
export class RemoteActors {
  readonly #init: RemoteActorsInit;
  readonly #channels = new Map<PeerId, Channel>();
  #nextId = 1;
  #sent = 0;
  #received = 0;
  #deadLetters = 0;
  #lateReplies = 0;
  #refused = 0;

  constructor(init: RemoteActorsInit) {
    this.#init = init;
  }

  start(): void {
    this.#init.transport.handle(actorProtocol.id, (stream) => void this.#serve(stream), { maxFrameBytes: actorProtocol.maxFrameBytes });
  }

  stop(): void {
    this.#init.transport.unhandle(actorProtocol.id);
    for (const channel of this.#channels.values()) channel.close(new DeadLetterError('this node is stopping'));
    this.#channels.clear();
  }

  /** Queues `message` for `to`; false (a dead letter) when it cannot go out. */
  tell(to: ActorRef, message: unknown): boolean {
    const body = this.#encodeBody(message);
    const channel = body === undefined ? undefined : this.#channel(to.node);
    if (channel === undefined || !channel.writer.push({ t: 'tell', to: to.path, body })) {
      this.#deadLetters++;
      return false;
    }
    this.#sent++;
    return true;
  }

  /** Sends `message` and waits for the remote actor's reply. */
  ask<T>(to: ActorRef, message: unknown, options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {}): Promise<T> {
    const { clock } = this.#init;
    return new Promise<T>((resolve, reject) => {
      if (options.signal?.aborted === true) return reject(new AbortedError());
      const body = this.#encodeBody(message);
      if (body === undefined) return reject(new DeadLetterError(`the message to ${to.path} is not encodable or over ${MAX_ACTOR_MESSAGE_BYTES} bytes`));
      const channel = this.#channel(to.node);
      if (channel === undefined || channel.pending.size >= MAX_PENDING_ASKS) {
        this.#deadLetters++;
        return reject(new DeadLetterError(`node ${to.node} is not reachable (dead, gone, or not a member)`));
      }
      const id = this.#nextId++;
      const timeoutMs = options.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
      const settle = (): void => {
        clock.clearTimeout(pending.timer);
        channel.pending.delete(id);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        settle();
        reject(new AbortedError());
      };
      const pending: PendingAsk = {
        resolve: (value) => {
          settle();
          resolve(value as T);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
        timer: clock.setTimeout(() => pending.reject(new AskTimeoutError(`${to.path} on ${to.node} did not answer within ${timeoutMs} ms`)), timeoutMs),
      };
      channel.pending.set(id, pending);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (!channel.writer.push({ t: 'ask', id, to: to.path, body })) {
        this.#deadLetters++;
        pending.reject(new DeadLetterError(`too many messages queued for ${to.node}`));
        return;
      }
      this.#sent++;
    });
  }

  /** A node failure detection holds dead (or that left): its asks fail now, its stream goes. */
  peerDown(peer: PeerId): void {
    const channel = this.#channels.get(peer);
    if (channel === undefined) return;
    this.#channels.delete(peer);
    channel.close(new DeadLetterError(`node ${peer} is dead or left the fleet`));
  }

  stats(): RemoteActorStats {
    let pendingAsks = 0;
    for (const channel of this.#channels.values()) pendingAsks += channel.pending.size;
    return { sent: this.#sent, received: this.#received, pendingAsks, deadLetters: this.#deadLetters, lateReplies: this.#lateReplies, refused: this.#refused };
  }

  /** @internal A channel's stream failed or closed: its asks fail; the next send opens a new one. */
  channelFailed(channel: Channel, error: Error): void {
    if (this.#channels.get(channel.peer) === channel) this.#channels.delete(channel.peer);
    channel.close(error instanceof DeadLetterError ? error : new DeadLetterError(`the actor stream to ${channel.peer} failed: ${error.message}`));
  }

  /** @internal Decodes a frame from `peer`; undefined (counted) when it is bad. */
  decode(peer: PeerId, frame: Uint8Array): ActorFrame | undefined {
    try {
      return decodeMessage(actorProtocol, frame);
    } catch (error) {
      this.#init.penalties.record(peer, `actor:${error instanceof WireError ? error.code : 'malformed'}`);
      return undefined;
    }
  }

  /** @internal An answer to one of this node's asks. */
  answer(channel: Channel, entry: Item): void {
    const pending = entry.id === undefined ? undefined : channel.pending.get(entry.id);
    if (entry.t !== 'reply' && entry.t !== 'fail') {
      this.#init.penalties.record(channel.peer, 'actor:protocol');
      return;
    }
    if (pending === undefined) {
      this.#lateReplies++;
      return;
    }
    if (entry.t === 'fail') {
      pending.reject(new RemoteRefusedError(entry.error ?? 'the remote node could not deliver the message'));
      return;
    }
    try {
      pending.resolve(entry.body === undefined ? undefined : decodeCbor(entry.body));
    } catch (error) {
      this.#init.penalties.record(channel.peer, 'actor:malformed');
      pending.reject(error as Error);
    }
  }

  #channel(peer: PeerId): Channel | undefined {
    if (peer === this.#init.transport.localPeer || !this.#init.isReachable(peer)) return undefined;
    let channel = this.#channels.get(peer);
    // A stream its connection's end already closed (a partition, a restart) fails what is sent on
    // it; what comes now goes on a new one (found after a heal: the first order after it failed).
    if (channel?.stale === true) {
      this.channelFailed(channel, new DeadLetterError(`the actor stream to ${peer} closed`));
      channel = undefined;
    }
    if (channel === undefined) {
      channel = new Channel(peer, this, this.#init);
      this.#channels.set(peer, channel);
    }
    return channel;
  }

  #encodeBody(message: unknown): Uint8Array | undefined {
    try {
      const body = encodeCbor(message);
      return body.length <= MAX_ACTOR_MESSAGE_BYTES ? body : undefined;
    } catch {
      return undefined;
    }
  }

  /** A peer's stream of tells and asks; answers go back on it, batched. */
  async #serve(stream: FrameStream): Promise<void> {
    const peer = stream.remotePeer;
    if (!this.#init.isAdmitted(peer)) {
      stream.abort(new Error('not admitted to this fleet'));
      return;
    }
    const answers = new BatchWriter(
      async () => stream,
      () => {},
    );
    try {
      for await (const frame of stream) {
        const message = this.decode(peer, frame);
        if (message === undefined) continue;
        for (const entry of message.body.items) this.#take(peer, entry, answers);
      }
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'FrameTooLargeError') this.#init.penalties.record(peer, 'actor:oversized');
      stream.abort(error as Error);
    }
  }

  /** One tell or ask from `peer`, handed to the local actor it names. */
  #take(peer: PeerId, entry: Item, answers: BatchWriter): void {
    if ((entry.t !== 'tell' && entry.t !== 'ask') || entry.to === undefined || (entry.t === 'ask' && entry.id === undefined)) {
      this.#init.penalties.record(peer, 'actor:protocol');
      return;
    }
    this.#received++;
    const id = entry.id;
    let message: unknown;
    try {
      message = entry.body === undefined ? undefined : decodeCbor(entry.body);
    } catch {
      this.#init.penalties.record(peer, 'actor:malformed');
      if (entry.t === 'ask') answers.push({ t: 'fail', id: id!, error: 'the message is not CBOR' });
      return;
    }
    let replied = false;
    const replyTo =
      entry.t === 'ask'
        ? (value: unknown) => {
            if (replied) return;
            replied = true;
            const body = this.#encodeBody(value);
            answers.push(body === undefined ? { t: 'fail', id: id!, error: 'the reply is not encodable or too large' } : { t: 'reply', id: id!, body });
          }
        : undefined;
    // Control-plane orders and lease pings say who sent them; that is the authenticated peer,
    // whatever the message claims (docs/PLACEMENT.md §Fencing).
    if (typeof message === 'object' && message !== null && !Array.isArray(message)) {
      const kind = (message as { type?: unknown }).type;
      if (kind === 'order' || kind === 'ping') message = { ...message, from: peer };
    }
    const problem = this.#init.host.deliverRemote(entry.to, message, replyTo);
    if (problem === undefined) return;
    this.#refused++;
    if (problem === 'bad-message') this.#init.penalties.record(peer, 'actor:bad-shape');
    if (entry.t === 'ask') answers.push({ t: 'fail', id: id!, error: `${entry.to} on ${this.#init.transport.localPeer}: ${problem}` });
  }
}
