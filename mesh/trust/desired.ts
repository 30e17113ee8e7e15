import * as A from '@automerge/automerge';
import {
  type DesiredChange,
  type DesiredEntry,
  type EntryOperator,
  type FleetView,
  InvalidDesiredEntryError,
  SCHEMA_VERSIONS,
  canonicalJson,
  checkAreaChanges,
  dayOf,
  isEntryTime,
  signedDocIdOf,
  parseDocId,
  desiredBody,
  desiredStatement,
  parseDesiredBody,
  readDesiredEntry,
  toPlain,
} from '../../crdt-schema/index.ts';
import type { AnyDoc } from '../replication/doc-store.ts';
import { type DecisionVerifier, emptyChangeProblem } from './decisions.ts';
import { fromBase64Url, sha256Hex, signBytes, toBase64Url, verifyBytes } from './keys.ts';
import { isActiveOperator } from './operator-auth.ts';

/** An operator key where it is held (CLI, console, tests), with its certificate. */
export interface SigningOperator extends EntryOperator {
  readonly seed: Uint8Array;
}

/** Signs a batch of desired-state changes for document `docId` (where the operator key is). */
export function signDesiredEntry(operator: SigningOperator, fleetId: string, docId: string, changes: readonly DesiredChange[], at: number): DesiredEntry {
  // Only the certificate's fields: whatever else the caller's key object holds stays here.
  const certificate: EntryOperator = { publicKey: operator.publicKey, name: operator.name, addedAt: operator.addedAt, certificate: operator.certificate };
  const unsigned = { at, body: desiredBody(changes), operator: certificate };
  return { ...unsigned, signature: toBase64Url(signBytes(operator.seed, desiredStatement(fleetId, docId, unsigned))) };
}

/**
 * Why `entry` may not be part of document `docId` of `fleet`, or undefined: its body must be a
 * valid batch, the operator it carries certified by the fleet root key, and the signature its
 * own. An entry is self-certifying — it does not wait for the fleet document to list its
 * operator, so replicas take it in whatever order the two documents arrive. With `activeAt`
 * (where an entry is made: the API) the operator must not be revoked at that time either.
 */
export function desiredEntryProblem(fleet: FleetView, docId: string, entry: DesiredEntry, verifier: DecisionVerifier, options: { readonly activeAt?: number } = {}): string | undefined {
  const parsed = parseDocId(docId);
  if (parsed?.kind !== 'desired') return `${docId} is not a desired document`;
  // A day bucket holds the entries signed on its day: a signed entry cannot be moved to another
  // bucket (one that retires later than its tasks' runs) or out of the buckets.
  if (!isEntryTime(entry.at)) return 'the entry\'s time is not a valid time';
  if (parsed.day !== undefined && dayOf(entry.at) !== parsed.day) return `the entry was signed on ${dayOf(entry.at)}, not on ${parsed.day} (the day of ${docId})`;
  try {
    checkAreaChanges(parsed.area, parseDesiredBody(entry.body));
  } catch (error) {
    if (error instanceof InvalidDesiredEntryError) return error.message;
    throw error;
  }
  if (!verifier.certified(fleet, entry.operator)) return 'the entry is not signed by an operator of this fleet';
  if (options.activeAt !== undefined) {
    const known = fleet.operators.find((o) => o.publicKey === entry.operator.publicKey);
    if (known !== undefined && !isActiveOperator(fleet, known, options.activeAt)) return 'that operator key was revoked by the fleet root key';
  }
  const { signature, ...unsigned } = entry;
  const statement = desiredStatement(fleet.fleetId, signedDocIdOf(docId), unsigned);
  // Remembered by what was signed and the signature, so a verdict never covers other content.
  const valid = verifier.verdict(`${sha256Hex(statement)}/${signature}`, () => {
    try {
      return verifyBytes(fromBase64Url(entry.operator.publicKey), statement, fromBase64Url(signature));
    } catch {
      return false;
    }
  });
  return valid ? undefined : 'the entry\'s signature does not verify';
}

/**
 * True when every value Automerge holds under `key` of `doc`'s root (the winner and any
 * conflicting losers), and under each field of an entry map there, is the same.
 */
function sameEverywhere(doc: AnyDoc, key: string): boolean {
  if (!conflictFree(doc, key)) return false;
  // Fields of the entry map itself may hold concurrent writes too.
  const shown = (doc as unknown as Record<string, unknown>)[key];
  return typeof shown !== 'object' || shown === null || Object.keys(shown).every((field) => conflictFree(shown, field));
}

/** True when every value Automerge holds under `key` of the map `object` is the same. */
function conflictFree(object: unknown, key: string): boolean {
  const conflicts = A.getConflicts(object as A.Doc<Record<string, unknown>>, key);
  if (conflicts === undefined) return true;
  const values = Object.values(conflicts).map((value) => canonicalJson(toPlain(value)));
  return values.every((value) => value === values[0]);
}

/**
 * Why the change from `before` to `after` of a desired document may not be adopted, or
 * undefined. The document only gains entries (and its schema field, once): the net effect of the
 * change (Automerge's diff, so the cost follows the change) may only create root keys, each a
 * valid signed entry under its own signature. A first copy is checked entry by entry.
 */
export function desiredChangeProblem(docId: string, before: AnyDoc, after: AnyDoc, fleet: FleetView | undefined, verifier: DecisionVerifier): string | undefined {
  if (fleet === undefined) return 'the fleet document is not held yet';
  const empty = emptyChangeProblem(before, after);
  if (empty !== undefined) return empty;
  // A sync round that brought no changes yet (an empty document) has nothing to check.
  if (Object.keys(after).length === 0) return undefined;
  const held = before as unknown as Record<string, unknown>;
  const created = new Set<string>();
  if (Object.keys(held).length === 0) {
    for (const key of Object.keys(after)) if (key !== 'schema') created.add(key);
  } else {
    for (const patch of A.diff(after, A.getHeads(before), A.getHeads(after))) {
      const [key] = patch.path;
      if (typeof key !== 'string') return 'a desired document holds entries at its root';
      // The schema field is written by whoever writes first; checked below, whatever wrote it.
      if (key === 'schema') continue;
      if (patch.path.length === 1) {
        if (patch.action !== 'put' && patch.action !== 'conflict') return 'an entry may not change or disappear';
        // Two nodes that recorded one entry at once hold two copies under its key: the same
        // entry, whichever copy Automerge shows. Anything else under a held key is a change.
        if (held[key] !== undefined && canonicalJson(toPlain(held[key])) !== canonicalJson(toPlain((after as unknown as Record<string, unknown>)[key]))) {
          return 'an entry may not change or disappear';
        }
        created.add(key);
      } else if (!created.has(key)) {
        return 'an entry may not change or disappear';
      }
    }
  }
  const root = after as unknown as Record<string, unknown>;
  if (root['schema'] !== SCHEMA_VERSIONS.desired || !sameEverywhere(after, 'schema')) return `a desired document is schema ${SCHEMA_VERSIONS.desired}`;
  for (const key of created) {
    // Every copy Automerge keeps under the key (a losing concurrent write is kept too, just not
    // shown) must be the same entry; otherwise a member could store anything under a valid entry.
    if (!sameEverywhere(after, key)) return 'an entry may not change or disappear';
    const entry = readDesiredEntry(key, toPlain(root[key]));
    if (entry === undefined) return 'a malformed entry';
    const problem = desiredEntryProblem(fleet, docId, entry, verifier);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
