import { type Clock, type Logger, type Storage, monotonicNow } from '../mesh/index.ts';
import { type EpochStamp, compareStamps } from './fence.ts';

/** A would-be owner's claim on a singleton at an epoch, carried by its lease rounds (docs/PLACEMENT.md §Ownership promises). */
export interface OwnerClaim {
  readonly name: string;
  readonly epoch: number;
}

/** Why a member refused a claim. */
export type RefusalReason = 'promised' | 'stale' | 'restarting' | 'full';

/**
 * A member's answer to one claim. Flat, with optional fields, so that one shape checks it on the
 * wire: `granted`, or refused for a `reason` — `promised` (to `holder` within a term; whether
 * the holder said it runs the singleton), `stale` (the member has promised or seen `highest`,
 * which the claim does not beat), `restarting` (the member started less than a term ago and may
 * have forgotten a promise), `full` (too many singletons).
 */
export interface PromiseAnswer {
  readonly name: string;
  readonly epoch: number;
  readonly granted: boolean;
  readonly reason?: RefusalReason;
  readonly holder?: string;
  readonly holderRunning?: boolean;
  readonly highestEpoch?: number;
  readonly highestOwner?: string;
}

/** Where a member keeps the highest epoch it promised of each singleton, across restarts. */
export interface PromiseStore {
  load(): Promise<ReadonlyMap<string, EpochStamp>>;
  save(name: string, stamp: EpochStamp): Promise<void>;
}

const KEY_PREFIX = ['control-plane', 'promised'];
/** A stored stamp is a few dozen bytes; anything longer is not ours. */
const MAX_STORED_BYTES = 512;
/** Singletons a member keeps promises for; claims for more are refused (`full`). */
const MAX_SINGLETONS = 1_000;

/** The highest promised epochs in the node's storage, under `control-plane/promised/<singleton>`, written synced. */
export function storagePromiseStore(storage: Storage, log: Logger): PromiseStore {
  return {
    async load() {
      const out = new Map<string, EpochStamp>();
      for (const entry of await storage.range(KEY_PREFIX, { limit: MAX_SINGLETONS })) {
        const name = entry.key[KEY_PREFIX.length];
        const stamp = entry.value.length <= MAX_STORED_BYTES ? decodeStamp(entry.value) : undefined;
        if (name === undefined || stamp === undefined) {
          // A member that cannot read what it promised must not promise less: it keeps waiting
          // out a term after start (as after any restart), and learns epochs from the members.
          log.error('a stored ownership promise is unreadable; ignoring it', { key: entry.key.join('/') });
          continue;
        }
        out.set(name, stamp);
      }
      return out;
    },
    save: (name, stamp) => storage.batch([{ type: 'put', key: [...KEY_PREFIX, name], value: new TextEncoder().encode(JSON.stringify(stamp)) }], { sync: true }),
  };
}

function decodeStamp(bytes: Uint8Array): EpochStamp | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { epoch, owner } = value as Record<string, unknown>;
    if (!Number.isSafeInteger(epoch) || (epoch as number) < 0 || typeof owner !== 'string' || owner.length === 0) return undefined;
    return { epoch: epoch as number, owner };
  } catch {
    return undefined;
  }
}

/** Keeps promises in memory only: for tests and tools whose nodes never restart on the same state. */
export function memoryPromiseStore(): PromiseStore {
  const stamps = new Map<string, EpochStamp>();
  return { load: async () => new Map(stamps), save: async (name, stamp) => void stamps.set(name, stamp) };
}

export interface OwnerPromisesInit {
  readonly clock: Clock;
  readonly log: Logger;
  /** How long a promise holds after it was given (the claimant counts it from before it asked). */
  readonly termMs: number;
  readonly store: PromiseStore;
  /** The newest activation of `name` this node knows of otherwise (records, orders, lease rounds). */
  known(name: string): EpochStamp | undefined;
}

/** A promise given: to whom, for which epoch, when (this node's clock), and whether its holder said it runs the singleton. */
interface Given {
  readonly to: string;
  readonly epoch: number;
  atMs: number;
  running: boolean;
}

/**
 * The member's side of ownership promises (docs/PLACEMENT.md §Ownership promises): for each
 * singleton it promises one would-be owner at a time, for a term, and never the same epoch to two
 * owners. A claimant activates an epoch only with promises from a majority, and two majorities
 * share a member, so two nodes never hold the same singleton at once, nor one epoch each.
 *
 * The promise itself lives in memory: after a start, the member promises nothing for a term, by
 * which time whatever it promised before has lapsed. The highest epoch promised is stored
 * (synced) before the promise is answered, so a restart never lets it promise an epoch twice.
 */
export class OwnerPromises {
  readonly #init: OwnerPromisesInit;
  readonly #given = new Map<string, Given>();
  readonly #highest = new Map<string, EpochStamp>();
  /** The durable write of each singleton's highest stamp, while one is under way. */
  readonly #writing = new Map<string, Promise<void>>();
  /** Singletons whose highest stamp failed to be stored: the next grant of each tries again. */
  readonly #unsaved = new Set<string>();
  #readyAtMs = Number.POSITIVE_INFINITY;

  constructor(init: OwnerPromisesInit) {
    this.#init = init;
  }

  /** How long a member holds a promise: the term plus a margin for clocks that run at slightly different rates. */
  get holdMs(): number {
    return this.#init.termMs + HOLD_MARGIN_MS;
  }

  /** Loads the stored highest epochs; promises are given from a term after now. */
  async start(): Promise<void> {
    for (const [name, stamp] of await this.#init.store.load()) this.#highest.set(name, stamp);
    this.#readyAtMs = monotonicNow(this.#init.clock) + this.holdMs;
  }

  /** Whom this node has promised `name` to now, if anyone. */
  promisedTo(name: string): { to: string; epoch: number } | undefined {
    const given = this.#live(name, monotonicNow(this.#init.clock));
    return given === undefined ? undefined : { to: given.to, epoch: given.epoch };
  }

  /** The highest epoch of `name` this node has promised (0 when none). */
  highest(name: string): number {
    return this.#highest.get(name)?.epoch ?? 0;
  }

  /**
   * Answers `from`'s lease round: its releases first, then each claim. `running` names what the
   * claimant runs now. Synchronous unless a grant raised a stored epoch; then the answers wait for
   * that write (a grant is never answered before it is durable).
   */
  answer(from: string, claims: readonly OwnerClaim[], releases: readonly OwnerClaim[], running: ReadonlySet<string>): readonly PromiseAnswer[] | Promise<readonly PromiseAnswer[]> {
    const now = monotonicNow(this.#init.clock);
    for (const release of releases) {
      const given = this.#given.get(release.name);
      if (given !== undefined && given.to === from && given.epoch === release.epoch) this.#given.delete(release.name);
    }
    const answers = claims.map((claim) => this.#claim(from, claim, running.has(claim.name), now));
    const waits = [...new Set(claims.filter((_, i) => answers[i]!.granted).map((c) => this.#writing.get(c.name)))].filter((w) => w !== undefined);
    if (waits.length === 0) return answers;
    return Promise.all(waits).then(
      () => answers,
      // The stored epoch may not have been written: refuse rather than promise what a restart could forget.
      () => answers.map((a) => (a.granted ? { name: a.name, epoch: a.epoch, granted: false, reason: 'restarting' } : a)),
    );
  }

  #live(name: string, now: number): Given | undefined {
    const given = this.#given.get(name);
    if (given === undefined) return undefined;
    // A clock stepped back (one without a monotonic reading): the term is counted from now, so the
    // promise lasts at least as long as it was to.
    if (now < given.atMs) given.atMs = now;
    if (now - given.atMs < this.holdMs) return given;
    this.#given.delete(name);
    return undefined;
  }

  #claim(from: string, claim: OwnerClaim, running: boolean, now: number): PromiseAnswer {
    const { name, epoch } = claim;
    if (now < this.#readyAtMs) return { name, epoch, granted: false, reason: 'restarting' };
    const given = this.#live(name, now);
    if (given !== undefined && given.to !== from) return { name, epoch, granted: false, reason: 'promised', holder: given.to, holderRunning: given.running };
    if (given !== undefined && given.epoch === epoch && !this.#unsaved.has(name)) {
      // A renewal: nothing newer can have been promised meanwhile (this promise stood in its way).
      given.atMs = now;
      given.running = running;
      return { name, epoch, granted: true };
    }
    const stored = this.#highest.get(name);
    const known = this.#init.known(name);
    const highest = stored === undefined ? known : known === undefined || compareStamps(stored, known) >= 0 ? stored : known;
    if (highest !== undefined && (epoch < highest.epoch || (epoch === highest.epoch && highest.owner !== from))) {
      return { name, epoch, granted: false, reason: 'stale', highestEpoch: highest.epoch, highestOwner: highest.owner };
    }
    if (given === undefined && !this.#highest.has(name) && this.#highest.size >= MAX_SINGLETONS) return { name, epoch, granted: false, reason: 'full' };
    this.#given.set(name, { to: from, epoch, atMs: now, running });
    if (stored === undefined || epoch > stored.epoch || this.#unsaved.has(name)) this.#raise(name, { epoch, owner: from });
    return { name, epoch, granted: true };
  }

  /** Raises the stored highest stamp of `name`, after any write of it still under way. */
  #raise(name: string, stamp: EpochStamp): void {
    this.#highest.set(name, stamp);
    this.#unsaved.delete(name);
    const previous = this.#writing.get(name) ?? Promise.resolve();
    const write = previous
      .catch(() => {})
      .then(() => this.#init.store.save(name, stamp))
      .catch((error: unknown) => {
        this.#init.log.error('storing an ownership promise failed', { singleton: name, error: String(error) });
        this.#unsaved.add(name);
        throw error;
      });
    this.#writing.set(name, write);
    void write.then(
      () => this.#writing.get(name) === write && this.#writing.delete(name),
      () => this.#writing.get(name) === write && this.#writing.delete(name),
    );
  }
}

/** Beyond the term, how long a member holds a promise: covers clock rates that differ by far more than real clocks do. */
const HOLD_MARGIN_MS = 25;
