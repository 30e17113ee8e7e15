import type { Clock, TimerId } from '../../mesh/index.ts';

/** The machine's clock and Node's timers. Timers are unref'd so they never keep a process alive. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  setTimeout(callback: () => void, delayMs: number): TimerId {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return timer;
  }

  clearTimeout(id: TimerId): void {
    clearTimeout(id as ReturnType<typeof setTimeout>);
  }
}
