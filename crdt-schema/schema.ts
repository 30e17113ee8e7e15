import type { DocKind } from './ids.ts';

/** The highest schema version of each document kind that this release reads and writes. */
export const SCHEMA_VERSIONS: Readonly<Record<DocKind, number>> = { fleet: 1, node: 1, events: 3, desired: 1, tasks: 2, pools: 2 };

/**
 * Marks a document this release writes to with its kind's schema version (raising an older one:
 * what is written now has this version's shape; a newer one is never written, see checkSchema).
 */
export function markSchema(draft: { schema?: number }, kind: DocKind): void {
  if (draft.schema === undefined || draft.schema < SCHEMA_VERSIONS[kind]) draft.schema = SCHEMA_VERSIONS[kind];
}

/**
 * Thrown when a document carries a schema version newer than this node understands. The node
 * refuses the document rather than read or write it with the wrong shape.
 */
export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
  readonly docId: string;
  readonly found: number;
  readonly supported: number;

  constructor(docId: string, found: number, supported: number) {
    super(`document ${docId} is schema ${found}; this node understands up to ${supported}: upgrade powernode on this node`);
    this.docId = docId;
    this.found = found;
    this.supported = supported;
  }
}

/** Thrown when a document has no usable schema field at all. */
export class SchemaMissingError extends Error {
  override name = 'SchemaMissingError';
}

/**
 * Checks the `schema` field of a document's root. An empty document (nothing received yet) passes.
 */
export function checkSchema(docId: string, kind: DocKind, root: Readonly<Record<string, unknown>>): void {
  if (Object.keys(root).length === 0) return;
  const schema = root['schema'];
  if (typeof schema !== 'number' || !Number.isSafeInteger(schema) || schema < 1) {
    throw new SchemaMissingError(`document ${docId} has no valid schema version`);
  }
  if (schema > SCHEMA_VERSIONS[kind]) throw new SchemaTooNewError(docId, schema, SCHEMA_VERSIONS[kind]);
}
