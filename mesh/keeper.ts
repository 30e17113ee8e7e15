import type { Logger } from './logger.ts';
import type { Clock, TimerId } from './ports/clock.ts';
import { type Random, shuffled } from './ports/random.ts';
import type { PeerId, Transport } from './ports/transport.ts';

export interface ConnectionKeeperInit {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /**
   * The members to stay connected to (self excluded), and the addresses known for each. A new map
   * whenever they change: the keeper keeps the ids of each map it is given sorted, by identity.
   */
  readonly candidates: () => ReadonlyMap<PeerId, readonly string[]>;
  /**
   * Whether `peer` is one of the candidates, answered without building them all: lets a tick that
   * has enough connections cost O(connections), not O(members).
   */
  readonly isCandidate?: (peer: PeerId) => boolean;
  readonly targetPeers?: number;
  /** How often it looks while it has fewer connections than its target. */
  readonly tickMs?: number;
  /** How often it looks while it has enough (a lost connection makes it look at once). */
  readonly idleTickMs?: number;
  /** Called when a dial to a candidate fails (failure detection takes it as a hint). */
  readonly onDialFailed?: (peer: PeerId) => void;
}

export const DEFAULT_TARGET_PEERS = 32;
export const DEFAULT_KEEPER_TICK_MS = 1_000;
export const DEFAULT_KEEPER_IDLE_TICK_MS = 5_000;
const MAX_CONCURRENT_DIALS = 4;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

interface Backoff {
  failures: number;
  nextAttemptMs: number;
}

/**
 * Keeps this node connected to up to `targetPeers` members: every tick it dials members it is
 * not connected to, at most four at a time, backing off per peer (1 s doubling to 60 s, with
 * jitter) after each failure. A restarted node reconnects from what its documents remember.
 * While it has its target it looks only every `idleTickMs`, and at once when a connection closes
 * (at 1,000 simulated nodes the 1 s tick of a keeper with nothing to do was a tenth of all timers).
 */
export class ConnectionKeeper {
  readonly #init: ConnectionKeeperInit;
  readonly #backoff = new Map<PeerId, Backoff>();
  readonly #dialing = new Set<PeerId>();
  #sorted: { readonly of: ReadonlyMap<PeerId, readonly string[]>; readonly peers: readonly PeerId[] } | undefined;
  #timer: TimerId | undefined;
  #timerDueMs = Number.POSITIVE_INFINITY;
  #stopped = true;
  #unsubscribe: (() => void) | undefined;

  constructor(init: ConnectionKeeperInit) {
    this.#init = init;
  }

  start(): void {
    this.#stopped = false;
    const { transport } = this.#init;
    const unsubscribe = [transport.on('peer:connect', (peer) => this.#backoff.delete(peer)), transport.on('peer:disconnect', () => this.#lookSoon())];
    this.#unsubscribe = () => {
      for (const off of unsubscribe) off();
    };
    this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
  }

  /** A connection closed: the next tick comes now, unless one comes sooner than the short period anyway. */
  #lookSoon(): void {
    if (this.#stopped || this.#timerDueMs <= this.#init.clock.now() + (this.#init.tickMs ?? DEFAULT_KEEPER_TICK_MS)) return;
    this.#schedule(0);
  }

  /** Dials now instead of at the next tick (e.g. after the member list changed). */
  poke(): void {
    if (!this.#stopped) this.#dialSome();
  }

  #tick(): void {
    if (this.#stopped) return;
    const enough = this.#dialSome();
    this.#schedule(enough ? (this.#init.idleTickMs ?? DEFAULT_KEEPER_IDLE_TICK_MS) : (this.#init.tickMs ?? DEFAULT_KEEPER_TICK_MS));
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined) this.#init.clock.clearTimeout(this.#timer);
    this.#timerDueMs = this.#init.clock.now() + delayMs;
    this.#timer = this.#init.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
    }, delayMs);
  }

  /** Dials what it lacks; true when it has its target of member connections (nothing to dial). */
  #dialSome(): boolean {
    const { transport, clock, random, isCandidate } = this.#init;
    const target = this.#init.targetPeers ?? DEFAULT_TARGET_PEERS;
    if (this.#dialing.size >= MAX_CONCURRENT_DIALS) return false;
    const peers = transport.connectedPeers();
    if (isCandidate !== undefined && atLeast(peers, isCandidate, target)) return true;
    const candidates = this.#init.candidates();
    const connected = new Set(peers);
    const connectedMembers = peers.filter((peer) => candidates.has(peer)).length;
    if (connectedMembers >= target) return true;
    let wanted = Math.min(target - connectedMembers, MAX_CONCURRENT_DIALS - this.#dialing.size);
    if (wanted <= 0) return false;
    const now = clock.now();
    // Sorted once per candidate map (the node hands back the same map until members or their
    // addresses change): a fleet's start dials on every tick and poke, a thousand ids each time.
    if (this.#sorted?.of !== candidates) this.#sorted = { of: candidates, peers: [...candidates.keys()].sort() };
    const due = this.#sorted.peers
      .filter((peer) => !connected.has(peer) && !this.#dialing.has(peer) && (this.#backoff.get(peer)?.nextAttemptMs ?? 0) <= now);
    // Members with known addresses first; the others can only be found through peer routing,
    // which needs connections, and a fleet of stale entries must not starve the live ones.
    const withAddresses = shuffled(random, due.filter((peer) => (candidates.get(peer)?.length ?? 0) > 0));
    const without = connected.size === 0 ? [] : shuffled(random, due.filter((peer) => (candidates.get(peer)?.length ?? 0) === 0));
    for (const peer of [...withAddresses, ...without]) {
      if (wanted-- <= 0) break;
      void this.#dial(peer, candidates.get(peer) ?? []);
    }
    return false;
  }

  async #dial(peer: PeerId, addresses: readonly string[]): Promise<void> {
    const { transport, clock, random, log } = this.#init;
    this.#dialing.add(peer);
    try {
      await transport.dial(peer, addresses);
      this.#backoff.delete(peer);
    } catch (error) {
      const failures = (this.#backoff.get(peer)?.failures ?? 0) + 1;
      const delayMs = Math.min(BACKOFF_BASE_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
      const jitteredMs = delayMs * (0.75 + 0.5 * random.float());
      this.#backoff.set(peer, { failures, nextAttemptMs: clock.now() + jitteredMs });
      log.debug('dial failed; backing off', { peer, failures, retryInMs: Math.round(jitteredMs), error: String(error) });
      this.#init.onDialFailed?.(peer);
    } finally {
      this.#dialing.delete(peer);
    }
  }

  /** Peers currently backing off, with their failure counts (for status). */
  backoffs(): Record<string, number> {
    return Object.fromEntries([...this.#backoff].map(([peer, b]) => [peer, b.failures]));
  }
}

/**
 * Whether at least `count` of `peers` pass `test`, asking no more of them than it takes: a node
 * with enough connections says so at every tick, and each test reads that peer's admission.
 */
function atLeast(peers: readonly PeerId[], test: (peer: PeerId) => boolean, count: number): boolean {
  if (count <= 0) return true;
  let passed = 0;
  for (const peer of peers) if (test(peer) && ++passed >= count) return true;
  return false;
}
