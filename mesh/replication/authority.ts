import { createHash } from 'node:crypto';
import { type DocId, SchemaMissingError, SchemaTooNewError, checkSchema, parseDocId } from '../../crdt-schema/index.ts';
import type { AnyDoc } from './doc-store.ts';

/** Thrown when received changes may not be adopted; the message says why. */
export class RefusedChangeError extends Error {
  override name = 'RefusedChangeError';
  readonly reason: 'unknown-document' | 'schema-too-new' | 'schema-missing' | 'not-authorized' | 'too-large';

  constructor(reason: RefusedChangeError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

const ACTOR_PREFIX_BYTES = 12;

/**
 * The part of an Automerge actor id that names its node: 12 bytes of SHA-256 over the peer id.
 * A node appends 4 random bytes per process start, so a node that lost a document never reuses
 * sequence numbers of its own earlier changes.
 */
export function actorPrefixFor(peerId: string): string {
  return createHash('sha256').update(`powernode/actor/v1/${peerId}`).digest('hex').slice(0, ACTOR_PREFIX_BYTES * 2);
}

/**
 * Checks a document that received bytes turned `before` into: the id is one this node knows and
 * the schema one it understands. Who may write it is checked separately, by seals
 * (seal-coverage.ts).
 */
export function verifyIncoming(docId: DocId, _before: AnyDoc, after: AnyDoc): void {
  const parsed = parseDocId(docId);
  if (parsed === undefined) throw new RefusedChangeError('unknown-document', `unknown document id ${docId}`);
  try {
    checkSchema(docId, parsed.kind, after);
  } catch (error) {
    if (error instanceof SchemaTooNewError) throw new RefusedChangeError('schema-too-new', error.message);
    if (error instanceof SchemaMissingError) throw new RefusedChangeError('schema-missing', error.message);
    throw error;
  }
}
