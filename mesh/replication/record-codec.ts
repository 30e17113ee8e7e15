import { createHash } from 'node:crypto';

const RECORD_VERSION = 1;
const CHECKSUM_BYTES = 8;

/** Thrown when a stored record's checksum or version does not match: the bytes were damaged. */
export class DamagedRecordError extends Error {
  override name = 'DamagedRecordError';
}

/**
 * Wraps stored bytes with a version byte and a truncated SHA-256, so damage on disk is detected
 * on read. Automerge checks its own chunks, but skips a bad incremental chunk silently.
 */
export function sealRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + CHECKSUM_BYTES + payload.length);
  out[0] = RECORD_VERSION;
  out.set(checksum(payload), 1);
  out.set(payload, 1 + CHECKSUM_BYTES);
  return out;
}

export function openRecord(record: Uint8Array): Uint8Array {
  if (record.length < 1 + CHECKSUM_BYTES || record[0] !== RECORD_VERSION) throw new DamagedRecordError('unknown record format');
  const payload = record.subarray(1 + CHECKSUM_BYTES);
  const expected = record.subarray(1, 1 + CHECKSUM_BYTES);
  const actual = checksum(payload);
  for (let i = 0; i < CHECKSUM_BYTES; i++) if (expected[i] !== actual[i]) throw new DamagedRecordError('checksum mismatch');
  return payload;
}

function checksum(payload: Uint8Array): Uint8Array {
  return createHash('sha256').update(payload).digest().subarray(0, CHECKSUM_BYTES);
}

/** First 8 bytes of SHA-256 over the sorted heads, as 16 hex characters: a compact document digest. */
export function headsDigest(heads: readonly string[]): string {
  const hash = createHash('sha256');
  for (const head of [...heads].sort()) hash.update(head);
  return hash.digest('hex').slice(0, 16);
}
