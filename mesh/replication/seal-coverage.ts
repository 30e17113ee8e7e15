import * as A from '@automerge/automerge';
import { writerOfDoc } from '../../crdt-schema/index.ts';
import type { Seal } from '../trust/seals.ts';
import { publicKeyFromPeerId } from '../trust/peer-keys.ts';
import type { AnyDoc } from './doc-store.ts';

/**
 * Who may seal a document, or undefined where seals are not enforced. `node/<peer>` and
 * `events/…/<peer>`: that peer's own key. The fleet document is not sealed: it only gains
 * operator-signed decisions, checked change by change (mesh/trust/decisions.ts).
 */
export function sealAuthority(docId: string): ((signer: Uint8Array) => boolean) | undefined {
  const writer = writerOfDoc(docId);
  if (writer === undefined) return undefined;
  let key: Uint8Array;
  try {
    key = publicKeyFromPeerId(writer);
  } catch {
    return () => false;
  }
  return (signer) => signer.length === key.length && signer.every((byte, i) => byte === key[i]);
}

/**
 * True when every change `after` added to `before` is in the history below some seal's heads.
 * Seals whose heads the document does not hold (yet) cover nothing.
 */
export function coveredBySeals(before: AnyDoc, after: AnyDoc, seals: readonly Seal[]): boolean {
  const added = A.getChangesMetaSince(after, A.getHeads(before));
  if (added.length === 0) return true;
  const heads = A.getHeads(after);
  // Common case: the writer sealed exactly the heads we now hold.
  if (seals.some((seal) => seal.heads.length === heads.length && seal.heads.every((h) => heads.includes(h)))) return true;
  const deps = new Map<string, readonly string[]>();
  for (const change of A.getChangesMetaSince(after, [])) deps.set(change.hash, change.deps);
  const reachable = new Set<string>();
  const stack = seals.flatMap((seal) => (seal.heads.every((h) => deps.has(h)) ? [...seal.heads] : []));
  while (stack.length > 0) {
    const hash = stack.pop()!;
    if (reachable.has(hash)) continue;
    reachable.add(hash);
    for (const dep of deps.get(hash) ?? []) stack.push(dep);
  }
  return added.every((change) => reachable.has(change.hash));
}
