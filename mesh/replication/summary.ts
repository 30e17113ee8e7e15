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
  const perBucket: Array<Array<[string, string]>> = Array.from({ length: SUMMARY_BUCKETS }, () => []);
  for (const [docId, digest] of digests) perBucket[bucketOf(docId)]!.push([docId, digest]);
  const buckets = new Uint8Array(SUMMARY_BUCKETS * BUCKET_HASH_BYTES);
  const root = createHash('sha256');
  perBucket.forEach((pairs, index) => {
    const hash = createHash('sha256');
    for (const [docId, digest] of pairs.sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${docId}\u0000${digest}\u0000`);
    const bucketHash = hash.digest().subarray(0, BUCKET_HASH_BYTES);
    buckets.set(bucketHash, index * BUCKET_HASH_BYTES);
    root.update(bucketHash);
  });
  return { count: digests.size, root: root.digest('hex').slice(0, 32), buckets };
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
