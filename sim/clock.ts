import type { Clock, TimerId } from '../mesh/index.ts';

/** A timer on the simulation's heap. */
interface SimTimer {
  readonly id: number;
  dueMs: number;
  readonly seq: number;
  readonly owner: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/** Owner id of timers that belong to no node (the scenario's own). */
export const SCENARIO_OWNER = -1;

/**
 * Virtual time for a whole simulated fleet: one clock, one binary heap of timers ordered by due
 * time and then creation order, so the same seed always runs callbacks in the same order. Each
 * node sees it through a {@link NodeClock}.
 */
export class SimClock {
  #nowMs: number;
  #seq = 0;
  #heap: SimTimer[] = [];
  readonly #byId = new Map<number, SimTimer>();
  /** Nodes whose timers are held (paused); their due timers wait here until resumed. */
  readonly #held = new Map<number, SimTimer[]>();
  readonly #paused = new Set<number>();
  #fired = 0;

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
    return this.#byId.size;
  }

  /** Entries on the heap, cancelled ones not yet dropped included. */
  get heapSize(): number {
    return this.#heap.length;
  }

  schedule(owner: number, callback: () => void, delayMs: number): number {
    const id = ++this.#seq;
    const timer: SimTimer = { id, dueMs: this.#nowMs + Math.max(0, delayMs), seq: id, owner, callback, cancelled: false };
    this.#byId.set(id, timer);
    this.#push(timer);
    return id;
  }

  cancel(id: number): void {
    const timer = this.#byId.get(id);
    if (timer === undefined) return;
    timer.cancelled = true;
    this.#byId.delete(id);
  }

  /** Drops every timer of `owner` (a crash: nothing it scheduled will run). */
  cancelAll(owner: number): void {
    for (const timer of this.#byId.values()) {
      if (timer.owner !== owner) continue;
      timer.cancelled = true;
      this.#byId.delete(timer.id);
    }
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
    const next = this.nextDueMs();
    if (next === undefined || next > untilMs) {
      this.#nowMs = Math.max(this.#nowMs, untilMs);
      return 0;
    }
    this.#nowMs = Math.max(this.#nowMs, next);
    let fired = 0;
    while (this.#heap.length > 0) {
      this.#dropCancelled();
      const top = this.#heap[0];
      if (top === undefined || top.dueMs > this.#nowMs) break;
      this.#pop();
      if (this.#paused.has(top.owner)) {
        const held = this.#held.get(top.owner) ?? [];
        held.push(top);
        this.#held.set(top.owner, held);
        continue;
      }
      this.#byId.delete(top.id);
      fired++;
      this.#fired++;
      top.callback();
    }
    return fired;
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
  }

  #less(a: SimTimer, b: SimTimer): boolean {
    return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);
  }

  #push(timer: SimTimer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): SimTimer | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.#less(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.#less(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
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
  #dead = false;

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
    if (this.#dead) return -1;
    return this.#sim.schedule(this.#owner, () => {
      if (!this.#dead) callback();
    }, delayMs);
  }

  defer(callback: () => void): void {
    this.setTimeout(callback, 0);
  }

  clearTimeout(id: TimerId): void {
    this.#sim.cancel(id as number);
  }

  /** Steps the machine's wall clock by `deltaMs` (negative: back). */
  jump(deltaMs: number): void {
    this.#skew.ms += deltaMs;
  }

  /** The process died: its timers never fire, and it can set no more. */
  kill(): void {
    this.#dead = true;
  }
}
