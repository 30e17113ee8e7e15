import { StreamResetError } from './transport.ts';

/**
 * An async queue of frames with a byte budget: the reading side of an in-memory stream. Writers
 * wait (backpressure) while more than `highWaterBytes` are unread.
 */
export class FrameQueue implements AsyncIterable<Uint8Array> {
  readonly #frames: Uint8Array[] = [];
  #queuedBytes = 0;
  #ended = false;
  #error: Error | undefined;
  #wakeReader: (() => void) | undefined;
  #wakeWriters: Array<() => void> = [];

  readonly highWaterBytes: number;

  constructor(highWaterBytes = 4 * 1024 * 1024) {
    this.highWaterBytes = highWaterBytes;
  }

  get ended(): boolean {
    return this.#ended || this.#error !== undefined;
  }

  /** Adds a frame; resolves when the queue is below its byte budget again. */
  async push(frame: Uint8Array): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#ended) throw new StreamResetError('stream closed for writing');
    this.#frames.push(frame);
    this.#queuedBytes += frame.length;
    this.#wake();
    while (this.#queuedBytes > this.highWaterBytes && this.#error === undefined) {
      await new Promise<void>((resolve) => this.#wakeWriters.push(resolve));
    }
    if (this.#error !== undefined) throw this.#error;
  }

  /** No more frames will come; the reader ends after draining. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** Fails the reader (and waiting writers) with `error`. */
  fail(error: Error): void {
    if (this.#error !== undefined) return;
    this.#error = error;
    this.#frames.length = 0;
    this.#queuedBytes = 0;
    this.#wake();
    this.#releaseWriters();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      const frame = this.#frames.shift();
      if (frame !== undefined) {
        this.#queuedBytes -= frame.length;
        if (this.#queuedBytes <= this.highWaterBytes) this.#releaseWriters();
        yield frame;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wakeReader = resolve;
      });
    }
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  #releaseWriters(): void {
    const writers = this.#wakeWriters;
    this.#wakeWriters = [];
    for (const wake of writers) wake();
  }
}
