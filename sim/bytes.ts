/**
 * A copy of `value` for whoever receives it (a frame crossing the simulated network, a record read
 * from simulated storage). Small ones go into Node's shared buffer pool (a plain Uint8Array over
 * it): an array buffer of their own each is an allocation outside the heap, with its accounting
 * and its sweeping after collection, and at 1,000 nodes copying each sync frame that way was an
 * eighth of a steady simulated second (a thousand nodes each reading two thousand records at
 * start, a tenth of the start-up). A receiver sees its own bytes either way.
 */
export function copyOf(value: Uint8Array): Uint8Array {
  if (value.length === 0 || value.length >= 4096) return value.slice();
  const pooled = Buffer.from(value);
  return new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.byteLength);
}

/**
 * Copies of `values`, in order, as {@link copyOf} gives them, the small ones side by side in one
 * buffer of their own: a range read at a simulated node's start hands out two thousand records,
 * and a pooled copy each was a tenth of creating a 1,000-node fleet.
 */
export function copiesOf(values: readonly Uint8Array[]): Uint8Array[] {
  let small = 0;
  for (const value of values) if (value.length < 4096) small += value.length;
  const room = new Uint8Array(small);
  let at = 0;
  return values.map((value) => {
    if (value.length >= 4096) return value.slice();
    const copy = room.subarray(at, at + value.length);
    copy.set(value);
    at += value.length;
    return copy;
  });
}
