import { createHash } from 'node:crypto';
import type { DocId } from '../../crdt-schema/index.ts';

/** Documents are hashed into this many buckets for the first comparison. */
export const SUMMARY_BUCKETS = 64;
const BUCKET_HASH_BYTES = 8;

/** What one peer holds, compressed: a root hash over everything, and one hash per bucket. */
export interface Summary {
  readonly count: number;
  readonly root: string;
  readonly buckets: Uint8Array;
}

const bucketCache = new Map<string, number>();

/** Which bucket a document id falls in (stable across nodes and releases). */
export function bucketOf(docId: string): number {
  let bucket = bucketCache.get(docId);
  if (bucket === undefined) {
    bucket = createHash('sha256').update(docId).digest()[0]! % SUMMARY_BUCKETS;
    if (bucketCache.size > 100_000) bucketCache.clear();
    bucketCache.set(docId, bucket);
  }
  return bucket;
}

/** Builds the summary of `digests` (document id → heads digest). */
export function summarize(digests: ReadonlyMap<DocId, string>): Summary {
  const perBucket: DocId[][] = Array.from({ length: SUMMARY_BUCKETS }, () => []);
  for (const docId of digests.keys()) perBucket[bucketOf(docId)]!.push(docId);
  const buckets = new Uint8Array(SUMMARY_BUCKETS * BUCKET_HASH_BYTES);
  const digestOf = (docId: DocId): string | undefined => digests.get(docId);
  perBucket.forEach((docIds, index) => buckets.set(bucketHashOf(docIds, digestOf), index * BUCKET_HASH_BYTES));
  return summaryOf(digests.size, buckets);
}

/** One bucket's hash: SHA-256 of its documents' `id NUL digest NUL`, in id order, cut to 8 bytes. */
function bucketHashOf(docIds: Iterable<DocId>, digestOf: (docId: DocId) => string | undefined): Uint8Array {
  // The default sort compares by code units, as `<` does; one string hashed (an update per
  // document was a call into the hash for each).
  let text = '';
  for (const docId of [...docIds].sort()) text += `${docId}\u0000${digestOf(docId)!}\u0000`;
  return createHash('sha256').update(text).digest().subarray(0, BUCKET_HASH_BYTES);
}

/** The summary of `count` documents with these bucket hashes: the root hashes them in order. */
function summaryOf(count: number, buckets: Uint8Array): Summary {
  const root = createHash('sha256').update(buckets).digest('hex').slice(0, 32);
  return { count, root, buckets };
}

/** Bucket indexes whose hashes differ between two summaries. */
export function differingBuckets(a: Summary, b: Summary): number[] {
  if (a.root === b.root) return [];
  const out: number[] = [];
  for (let i = 0; i < SUMMARY_BUCKETS; i++) {
    const offset = i * BUCKET_HASH_BYTES;
    for (let j = 0; j < BUCKET_HASH_BYTES; j++) {
      if (a.buckets[offset + j] !== b.buckets[offset + j]) {
        out.push(i);
        break;
      }
    }
  }
  return out;
}

/**
 * {@link summarize} of a store kept up to date: told which documents changed ({@link note}), it
 * hashes again only their buckets, reading the digests of those buckets' documents then. A
 * summary is sent on every session a node opens and every anti-entropy round, and while a fleet
 * starts the store changes between nearly every two of them: a 1,000-node simulated fleet's first
 * seconds spent a tenth of their time sorting and hashing every document's digest again for each.
 * It keeps which documents each bucket holds, not their digests (a map of every document's
 * digest per node was a million entries at 1,000 nodes, filled at every node's start).
 */
export class SummaryKeeper {
  readonly #members: Array<Set<DocId>> = Array.from({ length: SUMMARY_BUCKETS }, () => new Set());
  readonly #buckets = new Uint8Array(SUMMARY_BUCKETS * BUCKET_HASH_BYTES);
  readonly #dirty = new Set<number>(Array.from({ length: SUMMARY_BUCKETS }, (_, i) => i));
  /** Documents changed since the last summary; undefined: every document is read at the next one. */
  #noted: Set<DocId> | undefined;
  #count = 0;
  #summary: Summary | undefined;

  /** `docId` changed (or went): read at the next summary. */
  note(docId: DocId): void {
    this.#noted?.add(docId);
  }

  /** Reads every document at the next summary (changes were not followed meanwhile). */
  rescan(): void {
    this.#noted = undefined;
  }

  /**
   * The summary at the digests `digestOf` gives (none: not held): of the documents noted since the
   * last one, or of all of `ids()` at the first summary and after {@link rescan}.
   */
  summary(ids: () => Iterable<DocId>, digestOf: (docId: DocId) => string | undefined): Summary {
    const noted = this.#noted;
    this.#noted = new Set();
    if (noted === undefined) {
      const held = new Set(ids());
      for (const members of this.#members) for (const docId of members) if (!held.has(docId)) this.#read(docId, false);
      for (const docId of held) this.#read(docId, digestOf(docId) !== undefined);
    } else {
      for (const docId of noted) this.#read(docId, digestOf(docId) !== undefined);
    }
    if (this.#dirty.size === 0 && this.#summary !== undefined) return this.#summary;
    for (const index of this.#dirty) this.#buckets.set(bucketHashOf(this.#members[index]!, digestOf), index * BUCKET_HASH_BYTES);
    this.#dirty.clear();
    // A copy: a summary handed out is never changed under its holder. One that comes out the same
    // (a noted document whose digest did not change) is the one handed out before.
    const next = summaryOf(this.#count, this.#buckets.slice());
    if (this.#summary === undefined || next.root !== this.#summary.root || next.count !== this.#summary.count) this.#summary = next;
    return this.#summary;
  }

  /** `docId` is held (`held`) or not: its bucket is hashed again (it may have changed, or come or gone). */
  #read(docId: DocId, held: boolean): void {
    const bucket = bucketOf(docId);
    const members = this.#members[bucket]!;
    if (held) {
      if (!members.has(docId)) {
        members.add(docId);
        this.#count++;
      }
      this.#dirty.add(bucket);
    } else if (members.delete(docId)) {
      this.#count--;
      this.#dirty.add(bucket);
    }
  }
}
