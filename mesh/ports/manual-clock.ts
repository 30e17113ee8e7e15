import type { Clock, TimerId } from './clock.ts';

interface PendingTimer {
  readonly id: number;
  readonly dueMs: number;
  readonly callback: () => void;
}

/**
 * Virtual time for tests and the simulator. Time moves only when {@link ManualClock.advance} or
 * {@link ManualClock.runNext} is called; timers fire in due order (ties in creation order).
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #nextId = 1;
  #timers: PendingTimer[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const timer = { id, dueMs: this.#nowMs + Math.max(0, delayMs), callback };
    // Keep the list sorted by due time, then id, so firing order is deterministic.
    let index = this.#timers.length;
    while (index > 0 && this.#timers[index - 1]!.dueMs > timer.dueMs) index--;
    this.#timers.splice(index, 0, timer);
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== id);
  }

  /** Number of timers waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Due time of the next timer, if any. */
  nextDueMs(): number | undefined {
    return this.#timers[0]?.dueMs;
  }

  /** Sets the time forward to `targetMs` without firing timers (a clock jump). Refuses to go back. */
  jumpTo(targetMs: number): void {
    if (targetMs < this.#nowMs) throw new RangeError(`ManualClock cannot go back from ${this.#nowMs} to ${targetMs}`);
    this.#nowMs = targetMs;
  }

  /** Fires the next due timer, moving time to its due time. Returns false when none is pending. */
  runNext(): boolean {
    const timer = this.#timers.shift();
    if (timer === undefined) return false;
    if (timer.dueMs > this.#nowMs) this.#nowMs = timer.dueMs;
    timer.callback();
    return true;
  }

  /** Moves time forward by `deltaMs`, firing every timer that falls due on the way, in order. */
  advance(deltaMs: number): void {
    if (deltaMs < 0) throw new RangeError('ManualClock cannot go back in time');
    const targetMs = this.#nowMs + deltaMs;
    while (this.#timers.length > 0 && this.#timers[0]!.dueMs <= targetMs) this.runNext();
    this.#nowMs = targetMs;
  }

  /**
   * Like {@link advance}, but yields to the microtask queue between timers so async work that a
   * timer starts can schedule its own timers before time moves on.
   */
  async advanceAsync(deltaMs: number, settle: () => Promise<void> = flushMicrotasks): Promise<void> {
    if (deltaMs < 0) throw new RangeError('ManualClock cannot go back in time');
    const targetMs = this.#nowMs + deltaMs;
    await settle();
    while (this.#timers.length > 0 && this.#timers[0]!.dueMs <= targetMs) {
      this.runNext();
      await settle();
    }
    this.#nowMs = targetMs;
  }
}

/** Lets pending promise callbacks run (several rounds, since async functions chain). */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
