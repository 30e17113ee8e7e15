import { createHash } from 'node:crypto';

const scores = new Map<string, string>();
const MAX_CACHED_SCORES = 100_000;

/** The rendezvous score of `peer` for `name`: the first 8 bytes of SHA-256 over both, as hex. */
function score(name: string, peer: string): string {
  const key = `${name}\u0000${peer}`;
  let value = scores.get(key);
  if (value === undefined) {
    if (scores.size >= MAX_CACHED_SCORES) scores.clear();
    value = createHash('sha256').update(key).digest('hex').slice(0, 16);
    scores.set(key, value);
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
