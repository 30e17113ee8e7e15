import type { Clock, PeerId } from '../ports/index.ts';

export interface PeerPenaltiesInit {
  readonly clock: Clock;
  /** Errors within `windowMs` that get a peer disconnected. */
  readonly threshold?: number;
  readonly windowMs?: number;
  /** Called once each time a peer crosses the threshold. */
  readonly onExceeded: (peer: PeerId) => void;
}

export const DEFAULT_PENALTY_THRESHOLD = 10;
export const DEFAULT_PENALTY_WINDOW_MS = 60_000;
const MAX_TRACKED_PEERS = 10_000;

/**
 * Counts bad input per peer and reason. Totals are kept for observability; a sliding window
 * decides when a peer has sent enough bad frames to be disconnected.
 */
export class PeerPenalties {
  readonly #clock: Clock;
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #onExceeded: (peer: PeerId) => void;
  readonly #totals = new Map<PeerId, Map<string, number>>();
  readonly #recent = new Map<PeerId, number[]>();
  #disconnects = 0;

  constructor(init: PeerPenaltiesInit) {
    this.#clock = init.clock;
    this.#threshold = init.threshold ?? DEFAULT_PENALTY_THRESHOLD;
    this.#windowMs = init.windowMs ?? DEFAULT_PENALTY_WINDOW_MS;
    this.#onExceeded = init.onExceeded;
  }

  /** Records one refused input from `peer`. */
  record(peer: PeerId, reason: string): void {
    if (!this.#totals.has(peer) && this.#totals.size >= MAX_TRACKED_PEERS) {
      // Forget the oldest peer rather than grow without bound under a flood of new identities.
      const oldest = this.#totals.keys().next().value!;
      this.#totals.delete(oldest);
      this.#recent.delete(oldest);
    }
    const reasons = this.#totals.get(peer) ?? new Map<string, number>();
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    this.#totals.set(peer, reasons);

    const now = this.#clock.now();
    const recent = (this.#recent.get(peer) ?? []).filter((t) => now - t < this.#windowMs);
    recent.push(now);
    if (recent.length >= this.#threshold) {
      this.#recent.set(peer, []);
      this.#disconnects++;
      this.#onExceeded(peer);
    } else {
      this.#recent.set(peer, recent);
    }
  }

  /** Totals per peer and reason, plus how many times peers were disconnected for them. */
  snapshot(): { total: number; disconnects: number; byPeer: Record<string, Record<string, number>> } {
    let total = 0;
    const byPeer: Record<string, Record<string, number>> = {};
    for (const [peer, reasons] of [...this.#totals].sort(([a], [b]) => (a < b ? -1 : 1))) {
      byPeer[peer] = Object.fromEntries(reasons);
      for (const count of reasons.values()) total += count;
    }
    return { total, disconnects: this.#disconnects, byPeer };
  }
}
