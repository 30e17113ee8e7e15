import type { Clock, TimerId } from '../../mesh/index.ts';

/** Node's timers hold at most 2^31 - 1 ms (~24.8 days); longer delays are waited out in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer that may span several Node timers; `current` is the one pending now. */
interface LongTimer {
  current: ReturnType<typeof setTimeout>;
}

/** The machine's clock and Node's timers. Timers are unref'd so they never keep a process alive. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  monotonicNow(): number {
    return performance.now();
  }

  setTimeout(callback: () => void, delayMs: number): TimerId {
    const dueMs = Date.now() + Math.max(0, delayMs);
    const timer: LongTimer = { current: undefined as unknown as ReturnType<typeof setTimeout> };
    const arm = (): void => {
      const remaining = dueMs - Date.now();
      timer.current = setTimeout(remaining > MAX_TIMER_MS ? arm : callback, Math.min(Math.max(0, remaining), MAX_TIMER_MS));
      timer.current.unref();
    };
    arm();
    return timer;
  }

  defer(callback: () => void): void {
    setImmediate(callback);
  }

  clearTimeout(id: TimerId): void {
    clearTimeout((id as LongTimer).current);
  }
}
