/**
 * Reads one thing from the node again and again while a view is open: at start, every
 * `intervalMs` (when set), and whenever `refresh()` is called (a read in flight is followed by one
 * more, never two at once). Keeps the last good value when a later read fails, and says why.
 * For the views that have no WebSocket message of their own (tasks, instances, the catalog).
 */
export class Reader<T> {
  /** The last value read; undefined until the first read answered. */
  value = $state.raw<T | undefined>(undefined);
  /** Why the latest read failed (the API client's words for the operator); undefined after a good read. */
  error = $state.raw<string | undefined>(undefined);
  /** When the shown value was read (ms since 1970). */
  readAt = $state.raw(0);

  readonly #load: (signal: AbortSignal) => Promise<T>;
  readonly #intervalMs: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = false;
  #again = false;
  #running = false;
  #abort: AbortController | undefined;

  constructor(load: (signal: AbortSignal) => Promise<T>, options: { readonly intervalMs?: number } = {}) {
    this.#load = load;
    this.#intervalMs = options.intervalMs;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.refresh();
  }

  /** Stops reading: the timer is cleared and a read in flight is abandoned. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
  }

  refresh(): void {
    if (!this.#running) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    void this.#read();
  }

  /** The next read on the interval; none while the browser tab is hidden (checked again each interval). */
  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      if (typeof document !== 'undefined' && document.visibilityState === 'hidden') this.#schedule(delayMs);
      else this.refresh();
    }, delayMs);
  }

  async #read(): Promise<void> {
    this.#inFlight = true;
    clearTimeout(this.#timer);
    const abort = new AbortController();
    this.#abort = abort;
    try {
      do {
        this.#again = false;
        try {
          const value = await this.#load(abort.signal);
          if (abort.signal.aborted) return;
          this.value = value;
          this.error = undefined;
          this.readAt = Date.now();
        } catch (error) {
          if (abort.signal.aborted) return;
          this.error = error instanceof Error ? error.message : String(error);
        }
      } while (this.#again && this.#running);
    } finally {
      this.#inFlight = false;
      if (this.#running && this.#intervalMs !== undefined) this.#schedule(this.#intervalMs);
    }
  }
}
