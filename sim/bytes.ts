/**
 * A copy of `value` for whoever receives it (a frame crossing the simulated network, a record read
 * from simulated storage). Small ones go into Node's shared buffer pool (a plain Uint8Array over
 * it): an array buffer of their own each is an allocation outside the heap, with its accounting
 * and its sweeping after collection, and at 1,000 nodes copying each sync frame that way was an
 * eighth of a steady simulated second (a thousand nodes each reading two thousand records at
 * start, a tenth of the start-up). A receiver sees its own bytes either way.
 */
export function copyOf(value: Uint8Array): Uint8Array {
  // `new Uint8Array(value)` copies whatever it is given: a Buffer's `slice` would be a view.
  if (!sharesMemory(value)) return new Uint8Array(value);
  const pooled = Buffer.from(value);
  return new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.byteLength);
}

/**
 * Copies of `values`, in order, as {@link copyOf} gives them, the small ones side by side in
 * buffers of their own of up to 64 KiB: a range read at a simulated node's start hands out two
 * thousand records, and a pooled copy each was a tenth of creating a 1,000-node fleet. A reader
 * that keeps one value keeps its neighbours' bytes in memory too (at most 64 KiB of them).
 */
export function copiesOf(values: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let room = new Uint8Array(0);
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (!sharesMemory(value)) {
      out.push(new Uint8Array(value));
      continue;
    }
    if (at + value.length > room.length) {
      // The next buffer holds this value and as many of those after it as fit in 64 KiB.
      let size = 0;
      for (let j = i; j < values.length && size < ROOM_BYTES; j++) if (sharesMemory(values[j]!)) size += values[j]!.length;
      room = new Uint8Array(Math.min(size, ROOM_BYTES));
      at = 0;
    }
    const copy = room.subarray(at, at + value.length);
    copy.set(value);
    at += value.length;
    out.push(copy);
  }
  return out;
}

/** Whether `value` is copied into shared memory (small and not empty) rather than into an array buffer of its own. */
function sharesMemory(value: Uint8Array): boolean {
  return value.length > 0 && value.length < 4096;
}

/** Bytes of one buffer of {@link copiesOf}'s small copies at most. */
const ROOM_BYTES = 64 * 1024;
