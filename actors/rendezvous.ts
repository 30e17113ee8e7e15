import { createHash } from 'node:crypto';

/** Scores by name, then peer: lookups by the strings callers hold (whose hashes V8 keeps), with no key to build. */
const scores = new Map<string, Map<string, string>>();
const MAX_CACHED_SCORES = 100_000;
let cachedScores = 0;

/** The rendezvous score of `peer` for `name`: the first 8 bytes of SHA-256 over both, as hex. */
function score(name: string, peer: string): string {
  let byPeer = scores.get(name);
  if (byPeer === undefined) {
    byPeer = new Map();
    scores.set(name, byPeer);
  }
  let value = byPeer.get(peer);
  if (value === undefined) {
    if (cachedScores >= MAX_CACHED_SCORES) {
      scores.clear();
      cachedScores = 0;
      byPeer = new Map();
      scores.set(name, byPeer);
    }
    value = createHash('sha256').update(`${name}\u0000${peer}`).digest('hex').slice(0, 16);
    byPeer.set(peer, value);
    cachedScores++;
  }
  return value;
}

/**
 * Rendezvous (highest random weight) hashing: the candidate with the highest score for `name`
 * owns it. Every node that sees the same candidates picks the same owner, and a candidate that
 * leaves moves only what it owned.
 */
export function rendezvousOwner(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = '';
  for (const peer of candidates) {
    const s = score(name, peer);
    if (best === undefined || s > bestScore || (s === bestScore && peer > best)) {
      best = peer;
      bestScore = s;
    }
  }
  return best;
}
