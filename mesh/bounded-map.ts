/**
 * Sets `key` in `map`, first dropping its oldest entry (Map keeps insertion order) when it holds
 * `max` entries already: a cache or memory that a flood of new keys cannot grow without bound.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** `map`'s value for `key`, else `make()`'s, remembered there (bounded as {@link setBounded}). */
export function rememberedIn<K, V>(map: Map<K, V>, key: K, max: number, make: () => V): V {
  const known = map.get(key);
  if (known !== undefined) return known;
  const made = make();
  setBounded(map, key, made, max);
  return made;
}
