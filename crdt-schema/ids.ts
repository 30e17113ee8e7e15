/** A fleet id: 32 lowercase hex characters (16 random bytes). */
export type FleetId = string & { readonly __brand: 'FleetId' };

/**
 * The id of a replicated document: `fleet`, `node/<peerId>`, `events/<retention>/<day>/<peerId>`,
 * `tasks/<peerId>`, `tasks/<peerId>/<day>`, `pools/<peerId>`, `desired/catalog` or
 * `desired/tasks/<day>`.
 */
export type DocId = string & { readonly __brand: 'DocId' };

/** libp2p peer ids in base58btc (Ed25519 ids are 52 characters). */
export const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{40,64}$/;
export const FLEET_ID_PATTERN = /^[0-9a-f]{32}$/;

export const FLEET_DOC_ID = 'fleet' as DocId;

export type DocKind = 'fleet' | 'node' | 'events' | 'desired' | 'tasks' | 'pools';

/** The areas of operator-declared desired state, each its own document `desired/<area>`. */
export const DESIRED_AREAS = ['catalog', 'tasks'] as const;
export type DesiredArea = (typeof DESIRED_AREAS)[number];

/** How long an event bucket is kept: `routine` (low, medium) or `high` (high, critical). */
export type RetentionClass = 'routine' | 'high';

/** What a document id names; undefined for an id this node does not know. */
export type ParsedDocId =
  | { readonly kind: 'fleet' }
  | { readonly kind: 'desired'; readonly area: DesiredArea; readonly day?: string }
  | { readonly kind: 'tasks'; readonly peerId: string; readonly day?: string }
  | { readonly kind: 'pools'; readonly peerId: string }
  | { readonly kind: 'node'; readonly peerId: string }
  | { readonly kind: 'events'; readonly retention: RetentionClass; readonly day: string; readonly peerId: string };

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

export function parseDocId(id: string): ParsedDocId | undefined {
  if (id === FLEET_DOC_ID) return { kind: 'fleet' };
  if (id.startsWith('desired/')) {
    const [area, day, ...rest] = id.slice('desired/'.length).split('/');
    // Task requests live in day buckets only (docs/CATALOG.md §Tasks: retention); the catalog is one document.
    if (area === 'catalog' && day === undefined) return { kind: 'desired', area };
    if (area === 'tasks' && rest.length === 0 && DAY_PATTERN.test(day ?? '')) return { kind: 'desired', area, day: day! };
  }
  if (id.startsWith('node/')) {
    const peerId = id.slice('node/'.length);
    if (PEER_ID_PATTERN.test(peerId)) return { kind: 'node', peerId };
  }
  if (id.startsWith('tasks/')) {
    const [peerId, day, ...rest] = id.slice('tasks/'.length).split('/');
    if (rest.length === 0 && PEER_ID_PATTERN.test(peerId ?? '')) {
      if (day === undefined) return { kind: 'tasks', peerId: peerId! };
      if (DAY_PATTERN.test(day)) return { kind: 'tasks', peerId: peerId!, day };
    }
  }
  if (id.startsWith('pools/')) {
    const peerId = id.slice('pools/'.length);
    if (PEER_ID_PATTERN.test(peerId)) return { kind: 'pools', peerId };
  }
  if (id.startsWith('events/')) {
    const [, retention, day, peerId, ...rest] = id.split('/');
    if (rest.length === 0 && (retention === 'routine' || retention === 'high') && DAY_PATTERN.test(day ?? '') && PEER_ID_PATTERN.test(peerId ?? '')) {
      return { kind: 'events', retention, day: day!, peerId: peerId! };
    }
  }
  return undefined;
}

/**
 * The peer whose key must seal a document (its only writer), for node and event documents. The
 * fleet and desired documents have no single writer: they gain operator-signed entries only.
 */
export function writerOfDoc(id: string): string | undefined {
  const parsed = parseDocId(id);
  return parsed === undefined || parsed.kind === 'fleet' || parsed.kind === 'desired' ? undefined : parsed.peerId;
}

export function nodeDocId(peerId: string): DocId {
  if (!PEER_ID_PATTERN.test(peerId)) throw new RangeError(`not a peer id: ${peerId}`);
  return `node/${peerId}` as DocId;
}

/** The document of the tasks `peerId` ran and, while it ran the dispatcher, leased (sealed by it). */
export function tasksDocId(peerId: string): DocId {
  if (!PEER_ID_PATTERN.test(peerId)) throw new RangeError(`not a peer id: ${peerId}`);
  return `tasks/${peerId}` as DocId;
}

/** The bucket of the runs `peerId` made and the leases it gave for tasks requested on `day` (`yyyy-mm-dd`, UTC). */
export function taskBucketDocId(peerId: string, day: string): DocId {
  if (!PEER_ID_PATTERN.test(peerId)) throw new RangeError(`not a peer id: ${peerId}`);
  if (!DAY_PATTERN.test(day)) throw new RangeError(`not a day: ${day}`);
  return `tasks/${peerId}/${day}` as DocId;
}

/** The bucket of the task requests, cancels and instance actions operators signed on `day` (`yyyy-mm-dd`, UTC). */
export function desiredTasksBucketId(day: string): DocId {
  if (!DAY_PATTERN.test(day)) throw new RangeError(`not a day: ${day}`);
  return `desired/tasks/${day}` as DocId;
}

/** The document of the pool claims `peerId` recorded as owner of `control.pools`, and the claim it holds as a member (sealed by it). */
export function poolsDocId(peerId: string): DocId {
  if (!PEER_ID_PATTERN.test(peerId)) throw new RangeError(`not a peer id: ${peerId}`);
  return `pools/${peerId}` as DocId;
}

export function isFleetId(value: string): value is FleetId {
  return FLEET_ID_PATTERN.test(value);
}

/** Hex encoding, lowercase. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}
