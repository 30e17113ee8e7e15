import type { SignatureCheck, SignatureVerifier } from '../ports/signature-verifier.ts';
import { type Seal, sealCheck, sealId } from './seals.ts';
import { setBounded } from '../bounded-map.ts';

const DEFAULT_CACHE_SIZE = 100_000;
/** Prefetched checks are sent as one batch once this many wait, even before anyone asks. */
const MAX_QUEUED = 512;

interface Queued {
  readonly check: SignatureCheck;
  /** `undefined`: the check could not be made (not remembered; asked again next time). */
  readonly resolve: (verdict: boolean | undefined) => void;
}

/**
 * Verifies seals through a {@link SignatureVerifier}, remembering verdicts so each seal is checked
 * once however often it is relayed or reloaded. The cache is bounded (oldest verdicts go first).
 *
 * A reader that sees seals arrive before it can handle them calls {@link prefetch}: their checks
 * wait in a queue, and the next {@link verify} sends everything queued as one batch (which the
 * verifier can spread over cores) instead of one small check per message. No timer is involved,
 * so the order of work is the same in the simulator and on a real node.
 */
export class SealVerifier {
  readonly #verifier: SignatureVerifier;
  readonly #fleetId: string;
  readonly #cache = new Map<string, boolean>();
  readonly #inflight = new Map<string, Promise<boolean | undefined>>();
  #queue: Queued[] = [];
  readonly #cacheSize: number;
  #checked = 0;

  constructor(verifier: SignatureVerifier, fleetId: string, cacheSize = DEFAULT_CACHE_SIZE) {
    this.#verifier = verifier;
    this.#fleetId = fleetId;
    this.#cacheSize = cacheSize;
  }

  /** Many seals are about to arrive: lets the verifier get ready (start its workers). */
  prepare(): void {
    this.#verifier.prepare?.();
  }

  /** Queues the checks of seals that will be asked about soon; returns at once. */
  prefetch(seals: readonly Seal[]): void {
    for (const seal of seals) this.#pending(sealId(this.#fleetId, seal), seal);
    if (this.#queue.length >= MAX_QUEUED) this.#flush();
  }

  /** One verdict per seal, in order. Malformed seals are `false`. */
  async verify(seals: readonly Seal[]): Promise<boolean[]> {
    const verdicts = seals.map((seal) => {
      const id = sealId(this.#fleetId, seal);
      return this.#cache.get(id) ?? this.#pending(id, seal);
    });
    this.#flush();
    return (await Promise.all(verdicts)).map((v) => v === true);
  }

  /** Signatures actually checked (not answered from the cache), for observability and tests. */
  get signaturesChecked(): number {
    return this.#checked;
  }

  /** The verdict to come for a seal not in the cache: already asked for, or queued now. */
  #pending(id: string, seal: Seal): boolean | Promise<boolean | undefined> {
    const cached = this.#cache.get(id);
    if (cached !== undefined) return cached;
    const inflight = this.#inflight.get(id);
    if (inflight !== undefined) return inflight;
    const check = sealCheck(this.#fleetId, seal);
    if (check === undefined) return false;
    const verdict = new Promise<boolean | undefined>((resolve) => this.#queue.push({ check, resolve }));
    this.#inflight.set(id, verdict);
    void verdict.then((v) => {
      this.#inflight.delete(id);
      if (v !== undefined) this.#remember(id, v);
    });
    return verdict;
  }

  #flush(): void {
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#checked += batch.length;
    this.#verifier.verifyBatch(batch.map((q) => q.check)).then(
      (results) => batch.forEach((q, i) => q.resolve(results[i] === true)),
      // The port never throws for bad input; if it fails anyway (a crashed worker), nothing is
      // trusted and the seals are checked again when next seen.
      () => batch.forEach((q) => q.resolve(undefined)),
    );
  }

  #remember(id: string, verdict: boolean): void {
    setBounded(this.#cache, id, verdict, this.#cacheSize);
  }
}
