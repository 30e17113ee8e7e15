/** Opaque handle for a timer created through a {@link Clock}. */
export type TimerId = { readonly __timer: unique symbol } | number | object;

/**
 * Time as the core sees it. The core never reads the system clock or schedules timers directly,
 * so the simulator can run it on virtual time.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `callback` once after `delayMs`; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(callback: () => void, delayMs: number): TimerId;
  /**
   * Runs `callback` as soon as the current work yields, without the minimum delay a zero-delay
   * timer has (Node's is 1 ms). Optional: callers fall back to `setTimeout(callback, 0)`.
   */
  defer?(callback: () => void): void;
  clearTimeout(id: TimerId): void;
  /**
   * Milliseconds on a clock that moves forward with real time and nothing else (an NTP step moves
   * `now()`, never this); the origin is arbitrary. For durations that bound safety, such as a
   * lease. Optional: callers fall back to `now()` ({@link monotonicNow}).
   */
  monotonicNow?(): number;
}

/** `clock`'s monotonic reading, or its wall clock when it has none. */
export function monotonicNow(clock: Clock): number {
  return clock.monotonicNow?.() ?? clock.now();
}

/** Thrown by {@link sleep} when its signal aborts. */
export class AbortedError extends Error {
  override name = 'AbortedError';
  constructor(message = 'the operation was aborted') {
    super(message);
  }
}

/** Resolves after `delayMs` of clock time, or rejects with {@link AbortedError} when `signal` aborts. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new AbortedError());
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Thrown by {@link withTimeout} when the clock passes the deadline first. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Races `promise` against `timeoutMs` of clock time; the timer is always cleared. */
export async function withTimeout<T>(clock: Clock, promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: TimerId | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new TimeoutError(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
  }
}
