import type { Clock, TimerId } from '../mesh/index.ts';

/** A timer on the simulation's heap. */
export interface SimTimer {
  readonly id: number;
  dueMs: number;
  readonly seq: number;
  readonly owner: number;
  /** Let go of once cancelled (see {@link SimClock.cancelTimer}). */
  callback: () => void;
  /** The process that set it: once it is dead, the timer fires without calling back. */
  readonly gate: { readonly dead: boolean } | undefined;
  cancelled: boolean;
}

/** Owner id of timers that belong to no node (the scenario's own). */
export const SCENARIO_OWNER = -1;

/**
 * Virtual time for a whole simulated fleet: one clock, one binary heap of timers ordered by due
 * time and then creation order, so the same seed always runs callbacks in the same order. Each
 * node sees it through a {@link NodeClock}.
 *
 * Timers set with {@link SimClock.schedule} are cancelled by id; those set with
 * {@link SimClock.timer} (network deliveries, the nodes' own timers) are their own handle and
 * never enter the id map: a 100-node fleet sets a few thousand timers a simulated second.
 */
export class SimClock {
  #nowMs: number;
  #seq = 0;
  #heap: SimTimer[] = [];
  /**
   * The due time of the timer at each heap slot: comparisons read these numbers, kept side by
   * side, instead of each timer object (scattered over a large simulation's heap, each a cache
   * miss: the heap was 7 % of a 1,000-node simulated second).
   */
  #keys: number[] = [];
  readonly #byId = new Map<number, SimTimer>();
  /** Nodes whose timers are held (paused); their due timers wait here until resumed. */
  readonly #held = new Map<number, SimTimer[]>();
  readonly #paused = new Set<number>();
  #fired = 0;
  #pending = 0;

  constructor(startMs = 1_800_000_000_000) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  /** Timers fired so far. */
  get fired(): number {
    return this.#fired;
  }

  get pending(): number {
    return this.#pending;
  }

  /** Entries on the heap, cancelled ones not yet dropped included. */
  get heapSize(): number {
    return this.#heap.length;
  }

  schedule(owner: number, callback: () => void, delayMs: number): number {
    const timer = this.timer(owner, callback, delayMs);
    this.#byId.set(timer.id, timer);
    return timer.id;
  }

  /**
   * Sets a timer whose handle is the timer itself (cancel it with {@link SimClock.cancelTimer}).
   * With `gate`, it calls back only while `gate.dead` is false.
   */
  timer(owner: number, callback: () => void, delayMs: number, gate?: { readonly dead: boolean }): SimTimer {
    const id = ++this.#seq;
    const timer: SimTimer = { id, dueMs: this.#nowMs + Math.max(0, delayMs), seq: id, owner, callback, gate, cancelled: false };
    this.#pending++;
    this.#push(timer);
    return timer;
  }

  cancel(id: number): void {
    const timer = this.#byId.get(id);
    if (timer === undefined) return;
    this.#byId.delete(id);
    this.cancelTimer(timer);
  }

  /** Cancels a timer set with {@link SimClock.timer} (nothing if it fired or was cancelled). */
  cancelTimer(timer: SimTimer): void {
    if (!this.#isPending(timer)) return;
    timer.cancelled = true;
    // It stays on the heap until its due time, but what it would have called need not: a request's
    // timeout, cancelled as nearly every answer arrives, held the whole request (its frames, its
    // promise) for the 200 ms of an ack timeout, long enough to be promoted to the old generation
    // and collected there — half of what a 1,000-node simulation allocated.
    timer.callback = NOOP;
    this.#pending--;
  }

  /** Drops every timer of `owner` (a crash: nothing it scheduled will run). */
  cancelAll(owner: number): void {
    const drop = (timer: SimTimer): void => {
      if (timer.owner !== owner || !this.#isPending(timer)) return;
      this.cancelTimer(timer);
      this.#byId.delete(timer.id);
    };
    for (const timer of this.#heap) drop(timer);
    for (const timer of this.#held.get(owner) ?? []) drop(timer);
    this.#held.delete(owner);
  }

  /** Holds `owner`'s timers (a stalled event loop) until {@link SimClock.resume}. */
  pause(owner: number): void {
    this.#paused.add(owner);
  }

  /** Runs what fell due while paused, at the time of the resume, in order. */
  resume(owner: number): void {
    this.#paused.delete(owner);
    for (const timer of this.#held.get(owner) ?? []) {
      timer.dueMs = this.#nowMs;
      this.#push(timer);
    }
    this.#held.delete(owner);
  }

  isPaused(owner: number): boolean {
    return this.#paused.has(owner);
  }

  /** Due time of the next timer, or undefined when none is pending. */
  nextDueMs(): number | undefined {
    this.#dropCancelled();
    return this.#heap[0]?.dueMs;
  }

  /**
   * Moves time to the next due time (not past `untilMs`) and fires every timer due then, in
   * order. Returns how many fired; 0 when nothing is due by `untilMs` (time is then `untilMs`).
   */
  step(untilMs: number): number {
    for (;;) {
      const fired = this.#stepOnce(untilMs);
      // Every timer due at that instant belonged to a paused node (they are held now): on to the
      // next instant, so that 0 keeps meaning "nothing more is due by `untilMs`".
      if (fired >= 0) return fired;
    }
  }

  /** One instant of {@link SimClock.step}: how many timers fired, or −1 when all of them were held. */
  #stepOnce(untilMs: number): number {
    const next = this.nextDueMs();
    if (next === undefined || next > untilMs) {
      this.#nowMs = Math.max(this.#nowMs, untilMs);
      return 0;
    }
    this.#nowMs = Math.max(this.#nowMs, next);
    let fired = 0;
    let heldCount = 0;
    const heap = this.#heap;
    while (heap.length > 0) {
      const top = heap[0]!;
      if (top.cancelled) {
        this.#pop();
        continue;
      }
      if (this.#keys[0]! > this.#nowMs) break;
      this.#pop();
      if (this.#paused.size > 0 && this.#paused.has(top.owner)) {
        const held = this.#held.get(top.owner) ?? [];
        held.push(top);
        this.#held.set(top.owner, held);
        heldCount++;
        continue;
      }
      if (this.#byId.size > 0) this.#byId.delete(top.id);
      top.dueMs = FIRED;
      this.#pending--;
      fired++;
      this.#fired++;
      if (top.gate === undefined || !top.gate.dead) top.callback();
    }
    return fired === 0 && heldCount > 0 ? -1 : fired;
  }

  /** Whether `timer` is still to fire (on the heap or held, not cancelled). */
  #isPending(timer: SimTimer): boolean {
    return !timer.cancelled && timer.dueMs !== FIRED;
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
  }

  #push(timer: SimTimer): void {
    const heap = this.#heap;
    const keys = this.#keys;
    const due = timer.dueMs;
    let i = heap.length;
    heap.push(timer);
    keys.push(due);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = keys[parent]!;
      if (!(due < above || (due === above && timer.seq < heap[parent]!.seq))) break;
      heap[i] = heap[parent]!;
      keys[i] = above;
      i = parent;
    }
    heap[i] = timer;
    keys[i] = due;
  }

  #pop(): SimTimer | undefined {
    const heap = this.#heap;
    const keys = this.#keys;
    const top = heap[0];
    const last = heap.pop();
    const lastDue = keys.pop()!;
    const n = heap.length;
    if (n > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        let child = left;
        if (right < n && before(keys[right]!, heap[right]!, keys[left]!, heap[left]!)) child = right;
        if (!before(keys[child]!, heap[child]!, lastDue, last)) break;
        heap[i] = heap[child]!;
        keys[i] = keys[child]!;
        i = child;
      }
      heap[i] = last;
      keys[i] = lastDue;
    }
    return top;
  }
}

/** What a cancelled timer holds instead of its callback. */
const NOOP = (): void => {};

/** `dueMs` of a timer that fired. */
const FIRED = Number.NEGATIVE_INFINITY;

/** Heap order: due time, then creation order (`a` due at `aDue` comes before `b` due at `bDue`). */
function before(aDue: number, a: SimTimer, bDue: number, b: SimTimer): boolean {
  return aDue < bDue || (aDue === bDue && a.seq < b.seq);
}

/** A machine's wall-clock offset from true time; it outlives the processes that run on it. */
export interface Skew {
  ms: number;
}

/**
 * One process's view of simulated time: the simulation's clock plus its machine's skew. A jump
 * moves the skew (an NTP step); timers count durations, so they fire after their delay whatever
 * the skew does, as a monotonic timer would. Once its process is killed, nothing it schedules
 * runs: code of a dead process that is still on the promise queue cannot act.
 */
export class NodeClock implements Clock {
  readonly #sim: SimClock;
  readonly #owner: number;
  readonly #skew: Skew;
  /** Dead once the process is killed: its timers then fire without calling back. */
  readonly #gate = { dead: false };

  constructor(sim: SimClock, owner: number, skew: Skew = { ms: 0 }) {
    this.#sim = sim;
    this.#owner = owner;
    this.#skew = skew;
  }

  get skewMs(): number {
    return this.#skew.ms;
  }

  now(): number {
    return this.#sim.now() + this.#skew.ms;
  }

  /** The simulation's time: skew and jumps move the wall clock only, as NTP moves a real one. */
  monotonicNow(): number {
    return this.#sim.now();
  }

  setTimeout(callback: () => void, delayMs: number): TimerId {
    if (this.#gate.dead) return -1;
    return this.#sim.timer(this.#owner, callback, delayMs, this.#gate);
  }

  defer(callback: () => void): void {
    this.setTimeout(callback, 0);
  }

  clearTimeout(id: TimerId): void {
    if (typeof id === 'number') this.#sim.cancel(id);
    else this.#sim.cancelTimer(id as SimTimer);
  }

  /** Steps the machine's wall clock by `deltaMs` (negative: back). */
  jump(deltaMs: number): void {
    this.#skew.ms += deltaMs;
  }

  /** The process died: its timers never fire, and it can set no more. */
  kill(): void {
    this.#gate.dead = true;
  }
}
