/**
 * Converts a value read from an Automerge document into plain JSON-like data: immutable strings
 * become strings, counters numbers, lists arrays, maps objects. Views handed to the API and the
 * domain logic are always plain.
 */
export function toPlain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return value;
  if (value instanceof Date) return value.getTime();
  if (Array.isArray(value)) return value.map(toPlain);
  const tagged = value as { val?: unknown; value?: unknown };
  if (isImmutableString(value)) return String(tagged.val);
  if (isCounter(value)) return Number(tagged.value);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = toPlain((value as Record<string, unknown>)[key]);
  return out;
}

function isImmutableString(value: object): boolean {
  return Object.getOwnPropertySymbols(value).some((symbol) => symbol.description === '_am_immutableString');
}

function isCounter(value: object): boolean {
  return value.constructor?.name === 'Counter' && typeof (value as { value?: unknown }).value === 'number';
}

/**
 * A document entry written as one JSON string (one Automerge operation for a whole record), or as
 * a map of fields (older schemas), as a plain object; undefined when it is neither, is longer
 * than `maxChars`, or does not parse to an object.
 */
export function plainEntry(entry: unknown, maxChars: number): Record<string, unknown> | undefined {
  let value = toPlain(entry);
  if (typeof value === 'string') {
    if (value.length > maxChars) return undefined;
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  return value === null || typeof value !== 'object' || Array.isArray(value) ? undefined : (value as Record<string, unknown>);
}
