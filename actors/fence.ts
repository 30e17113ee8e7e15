/** An activation's place in a singleton's history: higher epochs win; equal epochs by owner. */
export interface EpochStamp {
  readonly epoch: number;
  readonly owner: string;
}

/** Orders compare by epoch, then by owner (two activations of one epoch can only come from lagging views). */
export function compareStamps(a: EpochStamp, b: EpochStamp): number {
  return a.epoch - b.epoch || (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0);
}

/** What an executor answers to an order from a superseded activation. */
export interface FenceRefusal {
  readonly reason: 'superseded';
  readonly current: EpochStamp;
}

/**
 * Epoch fencing on the executing side (docs/PLACEMENT.md §Placement): the newest activation seen
 * of each singleton, from activation records and from orders; an order stamped older than that is
 * refused. Bounded by the number of singletons it knows.
 */
export class EpochFence {
  readonly #newest = new Map<string, EpochStamp>();
  readonly #known: (singleton: string) => boolean;
  #refused = 0;
  #admitted = 0;

  /**
   * `known`: the singletons it keeps stamps of (by default all). Activation records come from
   * members' documents; without it, a member recording made-up singletons would grow the map.
   */
  constructor(known: (singleton: string) => boolean = () => true) {
    this.#known = known;
  }

  /** Learns of an activation (from a record or an order); one of a singleton it does not know is ignored. */
  observe(singleton: string, stamp: EpochStamp): void {
    if (!this.#known(singleton)) return;
    const current = this.#newest.get(singleton);
    if (current === undefined || compareStamps(stamp, current) > 0) this.#newest.set(singleton, { epoch: stamp.epoch, owner: stamp.owner });
  }

  /** Admits an order from `stamp` (and learns of it), or refuses it as superseded. */
  admit(singleton: string, stamp: EpochStamp): FenceRefusal | undefined {
    const current = this.#newest.get(singleton);
    if (current !== undefined && compareStamps(stamp, current) < 0) {
      this.#refused++;
      return { reason: 'superseded', current };
    }
    this.observe(singleton, stamp);
    this.#admitted++;
    return undefined;
  }

  newest(singleton: string): EpochStamp | undefined {
    return this.#newest.get(singleton);
  }

  stats(): { admitted: number; refused: number; newest: Record<string, EpochStamp> } {
    return { admitted: this.#admitted, refused: this.#refused, newest: Object.fromEntries([...this.#newest].sort(([a], [b]) => (a < b ? -1 : 1))) };
  }
}
