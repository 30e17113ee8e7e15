import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InProcessVerifier, type SignatureCheck, type SignatureVerifier } from '../../mesh/index.ts';

/** Batches smaller than this are checked on the calling thread: a worker round trip costs more. */
const MIN_PARALLEL_BATCH = 64;
/** Workers exit after this long without work, so an idle node carries none (each is a V8 isolate). */
const IDLE_EXIT_MS = 5_000;

interface PendingBatch {
  resolve: (results: boolean[]) => void;
  reject: (error: Error) => void;
}

/**
 * Checks large batches of signatures on all cores: the calling thread takes one share and
 * `cores - 1` worker threads the others. Workers start on demand and stop when idle.
 */
export class WorkerPoolVerifier implements SignatureVerifier {
  readonly #inline = new InProcessVerifier();
  readonly #size: number;
  #workers: Worker[] = [];
  readonly #pending = new Map<number, PendingBatch>();
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(workers = Math.max(1, availableParallelism() - 1)) {
    this.#size = workers;
  }

  async verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    if (this.#closed || checks.length < MIN_PARALLEL_BATCH) return this.#inline.verifyBatch(checks);
    const shares = this.#size + 1;
    const chunk = Math.ceil(checks.length / shares);
    const workers = this.#ensureWorkers();
    const parts = workers.map((worker, i) => this.#send(worker, checks.slice((i + 1) * chunk, (i + 2) * chunk)));
    const own = await this.#inline.verifyBatch(checks.slice(0, chunk));
    const results = [own, ...(await Promise.all(parts))].flat();
    this.#armIdleTimer();
    return results;
  }

  /** Starts the workers now, so their start-up overlaps the transfer instead of delaying its first batch. */
  prepare(): void {
    if (this.#closed) return;
    this.#ensureWorkers();
    this.#armIdleTimer();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    await this.#stopWorkers();
  }

  #ensureWorkers(): Worker[] {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    while (this.#workers.length < this.#size) {
      const worker = new Worker(new URL('./verify-worker.mjs', import.meta.url));
      worker.unref();
      worker.on('message', ({ id, results }: { id: number; results: boolean[] }) => {
        this.#pending.get(id)?.resolve(results);
        this.#pending.delete(id);
      });
      worker.on('error', (error) => this.#failAll(error));
      worker.on('exit', () => {
        this.#workers = this.#workers.filter((w) => w !== worker);
      });
      this.#workers.push(worker);
    }
    return this.#workers;
  }

  #send(worker: Worker, checks: readonly SignatureCheck[]): Promise<boolean[]> {
    if (checks.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise<boolean[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, checks });
    });
  }

  #failAll(error: Error): void {
    // A crashed worker fails its batches; the next batch starts a fresh one.
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #armIdleTimer(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.#stopWorkers(), IDLE_EXIT_MS);
    this.#idleTimer.unref();
  }

  async #stopWorkers(): Promise<void> {
    const workers = this.#workers;
    this.#workers = [];
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
