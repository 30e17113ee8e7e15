import { AbortedError, type Clock, type Logger, type PeerId, type Shape, type TimerId } from '../mesh/index.ts';

/**
 * Where an actor lives: a node and a path on it. The same ref reaches a local actor or one on
 * another node (over the actor protocol, actors/remote.ts).
 */
export interface ActorRef {
  readonly node: PeerId;
  readonly path: string;
}

/** What a step asks the host to do after it returns (the step itself does no I/O). */
export type Effect =
  | { readonly type: 'tell'; readonly to: string | ActorRef; readonly message: unknown }
  | { readonly type: 'reply'; readonly value: unknown }
  | { readonly type: 'schedule'; readonly delayMs: number; readonly message: unknown }
  | { readonly type: 'stop' }
  /**
   * Asks one of the host's ports (I/O the host was given: the event log, storage) to do
   * something; `then` turns the outcome into a message for this actor.
   */
  | {
      readonly type: 'perform';
      readonly port: string;
      readonly request: unknown;
      readonly then?: (outcome: PortOutcome) => unknown;
      /**
       * The message `then` makes carries the asker of the message this step handled, so a later
       * step's `reply` answers that ask (an answer that must wait for I/O, such as a durable write).
       */
      readonly carryReply?: boolean;
    };

/** What a port answered to a `perform` effect. */
export type PortOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

/** A port the host performs effects on: does I/O, resolves with a plain value. */
export type EffectPort = (request: unknown) => Promise<unknown>;

/** A typed behaviour: a pure step from state and message to the next state and its effects. */
export interface Behavior<S, M> {
  initial(): S;
  step(state: S, message: M): { readonly state: S; readonly effects?: readonly Effect[] };
}

export interface ActorOptions {
  /** Messages waiting at most; beyond, {@link ActorOptions.overflow} applies. Default 1,000. */
  readonly mailbox?: number;
  /**
   * `drop-newest` (default): the new message is refused (`tell` returns false) and counted as a
   * dead letter. `drop-oldest`: the oldest waiting message goes instead (for state updates where
   * only the latest matters). The host never blocks a sender.
   */
  readonly overflow?: 'drop-newest' | 'drop-oldest';
  /** Restarts allowed within {@link ActorOptions.restartWindowMs} before escalating. Default 5 in 60 s. */
  readonly maxRestarts?: number;
  readonly restartWindowMs?: number;
  /**
   * Messages from other nodes are checked against this shape before they reach the mailbox. An
   * actor without one cannot be reached from other nodes: what they send it is a dead letter.
   */
  readonly remote?: Shape<unknown>;
}

/** Thrown by `ask` when no reply came in time. */
export class AskTimeoutError extends Error {
  override name = 'AskTimeoutError';
}

/** Thrown by `ask` when the message could not be delivered (no such actor, mailbox full, stopped). */
export class DeadLetterError extends Error {
  override name = 'DeadLetterError';
}

export interface ActorHostInit {
  readonly clock: Clock;
  readonly log: Logger;
  /** This node, so that refs naming it are delivered here. */
  readonly self?: PeerId;
  /** Sends to an actor on another node; false when it cannot be sent (a dead letter there). */
  sendRemote?(to: ActorRef, message: unknown): boolean;
  /** Ports that `perform` effects name. */
  readonly ports?: Readonly<Record<string, EffectPort>>;
  /** An actor failed more often than its restart budget allows: it is stopped; its owner decides. */
  onEscalate?(name: string, error: unknown): void;
}

const RESTART_BACKOFF_MS = 100;
const RESTART_BACKOFF_MAX_MS = 10_000;

interface Envelope {
  readonly message: unknown;
  readonly replyTo?: (value: unknown) => void;
}

interface Cell {
  readonly name: string;
  readonly behavior: Behavior<unknown, unknown>;
  readonly options: Required<Omit<ActorOptions, 'remote'>>;
  readonly remote: Shape<unknown> | undefined;
  state: unknown;
  mailbox: Envelope[];
  running: boolean;
  restartingUntil: number;
  restarts: number[];
  processed: number;
  stopped: boolean;
}

/**
 * Runs actors on one node: each has a bounded mailbox and handles one message at a time; a step
 * that throws restarts the actor from its initial state after a backoff (100 ms doubling to 10 s),
 * and too many restarts in a window escalate (the actor stops and `onEscalate` is called).
 * Messages that cannot be delivered are dead letters, counted and observable.
 */
export class ActorHost {
  readonly #init: ActorHostInit;
  readonly #cells = new Map<string, Cell>();
  #deadLetters = 0;

  constructor(init: ActorHostInit) {
    this.#init = init;
  }

  spawn<S, M>(name: string, behavior: Behavior<S, M>, options: ActorOptions = {}): void {
    if (this.#cells.has(name)) throw new Error(`an actor named ${name} already runs here`);
    this.#cells.set(name, {
      name,
      behavior: behavior as Behavior<unknown, unknown>,
      options: { mailbox: options.mailbox ?? 1_000, overflow: options.overflow ?? 'drop-newest', maxRestarts: options.maxRestarts ?? 5, restartWindowMs: options.restartWindowMs ?? 60_000 },
      remote: options.remote,
      state: behavior.initial(),
      mailbox: [],
      running: false,
      restartingUntil: 0,
      restarts: [],
      processed: 0,
      stopped: false,
    });
  }

  stop(name: string): void {
    const cell = this.#cells.get(name);
    if (cell === undefined) return;
    cell.stopped = true;
    this.#cells.delete(name);
    this.#deadLetters += cell.mailbox.length;
  }

  /** Whether an actor of that name runs here. */
  has(name: string): boolean {
    return this.#cells.has(name);
  }

  /** Queues `message` for `name`; false (and a dead letter) when it cannot be delivered. */
  tell(name: string, message: unknown): boolean {
    return this.#deliver(name, { message });
  }

  /** Sends to a ref: here when it names this node (or no node is set), else through `sendRemote`. */
  send(to: string | ActorRef, message: unknown): boolean {
    if (typeof to === 'string' || to.node === this.#init.self || this.#init.self === undefined) return this.tell(typeof to === 'string' ? to : to.path, message);
    if (this.#init.sendRemote?.(to, message) === true) return true;
    this.#deadLetters++;
    return false;
  }

  /**
   * Delivers a message that came from another node: checked against the actor's `remote` shape
   * first. Returns why it was not delivered, or undefined when it was queued. `replyTo` receives
   * the actor's reply, for an ask.
   */
  deliverRemote(name: string, message: unknown, replyTo?: (value: unknown) => void): 'no-such-actor' | 'not-remote' | 'bad-message' | 'mailbox-full' | undefined {
    const cell = this.#cells.get(name);
    if (cell === undefined || cell.stopped) {
      this.#deadLetters++;
      return 'no-such-actor';
    }
    if (cell.remote === undefined) {
      this.#deadLetters++;
      return 'not-remote';
    }
    let checked: unknown;
    try {
      checked = cell.remote.check(message, name);
    } catch {
      this.#deadLetters++;
      return 'bad-message';
    }
    return this.#deliver(name, replyTo === undefined ? { message: checked } : { message: checked, replyTo }) ? undefined : 'mailbox-full';
  }

  /** Counts a message that could not be delivered anywhere (e.g. to a dead node). */
  countDeadLetter(): void {
    this.#deadLetters++;
  }

  /** Sends `message` and waits for the actor's `reply` effect. */
  ask<T>(name: string, message: unknown, options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {}): Promise<T> {
    const { clock } = this.#init;
    return new Promise<T>((resolve, reject) => {
      if (options.signal?.aborted === true) {
        reject(new AbortedError());
        return;
      }
      let settled = false;
      const finish = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        settle();
      };
      const onAbort = (): void => finish(() => reject(new AbortedError()));
      const timer: TimerId = clock.setTimeout(() => finish(() => reject(new AskTimeoutError(`${name} did not answer within ${options.timeoutMs ?? 5_000} ms`))), options.timeoutMs ?? 5_000);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (!this.#deliver(name, { message, replyTo: (value) => finish(() => resolve(value as T)) })) {
        finish(() => reject(new DeadLetterError(`${name} cannot take the message (not running here, or its mailbox is full)`)));
      }
    });
  }

  /** Counts for status: dead letters, and per actor its mailbox depth, messages handled and restarts. */
  stats(): { deadLetters: number; actors: Array<{ name: string; mailbox: number; processed: number; restarts: number }> } {
    return {
      deadLetters: this.#deadLetters,
      actors: [...this.#cells.values()].map((c) => ({ name: c.name, mailbox: c.mailbox.length, processed: c.processed, restarts: c.restarts.length })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    };
  }

  #deliver(name: string, envelope: Envelope): boolean {
    const cell = this.#cells.get(name);
    if (cell === undefined || cell.stopped) {
      this.#deadLetters++;
      return false;
    }
    if (cell.mailbox.length >= cell.options.mailbox) {
      this.#deadLetters++;
      if (cell.options.overflow === 'drop-newest') return false;
      cell.mailbox.shift();
    }
    cell.mailbox.push(envelope);
    this.#schedule(cell);
    return true;
  }

  #schedule(cell: Cell): void {
    if (cell.running || cell.stopped) return;
    cell.running = true;
    const { clock } = this.#init;
    const delay = Math.max(0, cell.restartingUntil - clock.now());
    if (delay === 0 && clock.defer !== undefined) clock.defer(() => this.#drain(cell));
    else clock.setTimeout(() => this.#drain(cell), delay);
  }

  /** Handles waiting messages one at a time, yielding between batches so other actors run. */
  #drain(cell: Cell): void {
    let handled = 0;
    while (cell.mailbox.length > 0 && !cell.stopped && handled < 100) {
      const envelope = cell.mailbox.shift()!;
      handled++;
      let result: { readonly state: unknown; readonly effects?: readonly Effect[] };
      try {
        result = cell.behavior.step(cell.state, envelope.message);
      } catch (error) {
        this.#fail(cell, error);
        return;
      }
      cell.state = result.state;
      cell.processed++;
      for (const effect of result.effects ?? []) this.#apply(cell, effect, envelope);
    }
    cell.running = false;
    if (cell.mailbox.length > 0) this.#schedule(cell);
  }

  #apply(cell: Cell, effect: Effect, envelope: Envelope): void {
    switch (effect.type) {
      case 'tell':
        this.send(effect.to, effect.message);
        return;
      case 'reply':
        envelope.replyTo?.(effect.value);
        return;
      case 'schedule':
        this.#init.clock.setTimeout(() => this.tell(cell.name, effect.message), effect.delayMs);
        return;
      case 'stop':
        this.stop(cell.name);
        return;
      case 'perform':
        this.#perform(cell, effect, effect.carryReply === true ? envelope.replyTo : undefined);
        return;
    }
  }

  #perform(cell: Cell, effect: Extract<Effect, { type: 'perform' }>, replyTo: ((value: unknown) => void) | undefined): void {
    const port = this.#init.ports?.[effect.port];
    const answer = (outcome: PortOutcome): void => {
      if (effect.then === undefined || cell.stopped) return;
      const message = effect.then(outcome);
      this.#deliver(cell.name, replyTo === undefined ? { message } : { message, replyTo });
    };
    if (port === undefined) {
      answer({ ok: false, error: `this host has no port ${effect.port}` });
      return;
    }
    port(effect.request).then(
      (value) => answer({ ok: true, value }),
      (error: unknown) => answer({ ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
  }

  /** One-for-one restart from the initial state after a backoff; too many in the window escalate. */
  #fail(cell: Cell, error: unknown): void {
    const now = this.#init.clock.now();
    cell.restarts = cell.restarts.filter((at) => now - at < cell.options.restartWindowMs);
    cell.restarts.push(now);
    cell.running = false;
    if (cell.restarts.length > cell.options.maxRestarts) {
      this.#init.log.error('an actor failed too often; stopping it and escalating', { actor: cell.name, error: String(error) });
      this.stop(cell.name);
      this.#init.onEscalate?.(cell.name, error);
      return;
    }
    const backoff = Math.min(RESTART_BACKOFF_MS * 2 ** (cell.restarts.length - 1), RESTART_BACKOFF_MAX_MS);
    this.#init.log.warn('an actor failed; restarting it', { actor: cell.name, error: String(error), backoffMs: backoff });
    cell.state = cell.behavior.initial();
    cell.restartingUntil = now + backoff;
    if (cell.mailbox.length > 0) this.#schedule(cell);
  }
}
