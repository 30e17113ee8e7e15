import { defineProtocol, type MessageOf, s } from '../wire/index.ts';
import { SUMMARY_BUCKETS } from './summary.ts';

// A stored document is at most 4 MiB (MAX_DOC_BYTES in doc-store.ts); what carries one — a
// snapshot or a sync message with all its changes — stays under 6 MiB, inside the 8 MiB frame.
const MAX_DOC_MESSAGE_BYTES = 6 * 1024 * 1024;
const MAX_FRAME_BYTES = 8 * 1024 * 1024;
export const MAX_WANT_PER_MESSAGE = 5_000;
/** Documents one `have` message names at most. */
export const MAX_HAVE_PER_MESSAGE = 1_000;
/** Bytes of a peer tag (the first bytes of SHA-256 of its peer id) in a sync message's `also`. */
export const PEER_TAG_BYTES = 8;
/** Peers one sync message's `also` names at most. */
export const MAX_ALSO_PEERS = 64;
const docId = s.string({ min: 1, max: 128, pattern: /^[A-Za-z0-9/_-]+$/ });
const digest = s.string({ min: 16, max: 16, pattern: /^[0-9a-f]{16}$/ });
/** Seals that authenticate a document's changes (docs/SECURITY.md §Write authority). */
const seals = s.optional(
  s.array(
    s.object({
      heads: s.array(s.string({ min: 64, max: 64, pattern: /^[0-9a-f]{64}$/ }), { min: 1, max: 64 }),
      signer: s.bytes({ min: 32, max: 32 }),
      signature: s.bytes({ min: 64, max: 64 }),
    }),
    { max: 16 },
  ),
);

/**
 * Replication between two peers (docs/ARCHITECTURE.md §Sync): hello, a summary, entries for
 * differing buckets, then snapshots for missing documents and Automerge sync for differing ones.
 */
export const syncProtocol = defineProtocol({
  id: '/powernode/sync/1',
  version: 1,
  maxFrameBytes: MAX_FRAME_BYTES,
  messages: {
    hello: s.object({ fleetId: s.string({ min: 1, max: 64 }) }),
    summary: s.object({
      count: s.uint(),
      root: s.string({ min: 32, max: 32 }),
      buckets: s.bytes({ min: SUMMARY_BUCKETS * 8, max: SUMMARY_BUCKETS * 8 }),
    }),
    entries: s.object({ bucket: s.uint(SUMMARY_BUCKETS - 1), entries: s.array(s.tuple([docId, digest]), { max: 200_000 }) }),
    /** Documents the sender lacks and would take in; the receiver answers with snapshots. */
    want: s.object({ docIds: s.array(docId, { min: 1, max: MAX_WANT_PER_MESSAGE }) }),
    snapshot: s.object({ docId, bytes: s.bytes({ min: 1, max: MAX_DOC_MESSAGE_BYTES }), seals }),
    /**
     * `also`: a push of a new version also goes to these peers (tags of PEER_TAG_BYTES each), so
     * the receiver need not relay it to them (docs/ARCHITECTURE.md §Sync: hinted relays).
     */
    sync: s.object({ docId, message: s.bytes({ min: 1, max: MAX_DOC_MESSAGE_BYTES }), seals, also: s.optional(s.bytes({ min: PEER_TAG_BYTES, max: PEER_TAG_BYTES * MAX_ALSO_PEERS })) }),
    /** The versions (digests) the sender holds of documents it did not relay to the receiver: it syncs any that differ. */
    have: s.object({ entries: s.array(s.tuple([docId, digest]), { min: 1, max: MAX_HAVE_PER_MESSAGE }) }),
    refused: s.object({ docId, reason: s.string({ max: 1000 }) }),
  },
});

export type SyncMessage = MessageOf<typeof syncProtocol>;
