import * as A from '@automerge/automerge';

const cuts = new Map<string, ReadonlySet<string>>();
const CUTS_MAX = 64;

/**
 * The keys a document's map held at `heads` (an operator revocation's cut): of `field` at its
 * root, or of the root itself (its `schema` field aside) — or undefined while this replica does
 * not hold those heads (the cut applies once it does), or when `doc` is plain data, not an
 * Automerge document. What a document held at given heads never changes, and heads name their
 * document's history, so each cut is computed once, for every caller in the process.
 */
export function keysAtHeads(doc: unknown, heads: readonly string[], field?: string): ReadonlySet<string> | undefined {
  const key = `${field ?? ''}|${heads.join(',')}`;
  const known = cuts.get(key);
  if (known !== undefined) return known;
  let cut: ReadonlySet<string>;
  try {
    const automerge = doc as A.Doc<Record<string, unknown>>;
    if (heads.length > 0 && !A.hasHeads(automerge, heads as A.Heads)) return undefined;
    const view = heads.length === 0 ? {} : A.view(automerge, heads as A.Heads);
    const map = field === undefined ? view : ((view as Record<string, unknown>)[field] ?? {});
    cut = new Set(Object.keys(map as object).filter((k) => field !== undefined || k !== 'schema'));
  } catch {
    return undefined;
  }
  if (cuts.size >= CUTS_MAX) cuts.clear();
  cuts.set(key, cut);
  return cut;
}
