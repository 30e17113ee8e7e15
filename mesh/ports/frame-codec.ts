import { FrameTooLargeError } from './transport.ts';

/** Thrown when a length prefix is not a valid unsigned varint of at most 5 bytes. */
export class MalformedLengthPrefixError extends Error {
  override name = 'MalformedLengthPrefixError';
}

const MAX_PREFIX_BYTES = 5;

/** Prefixes `frame` with its length as an unsigned varint. */
export function encodeFrame(frame: Uint8Array): Uint8Array {
  const prefix: number[] = [];
  let length = frame.length;
  do {
    let byte = length & 0x7f;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    prefix.push(byte);
  } while (length > 0);
  const out = new Uint8Array(prefix.length + frame.length);
  out.set(prefix, 0);
  out.set(frame, prefix.length);
  return out;
}

/**
 * Splits a byte stream into length-prefixed frames. A declared length over `maxFrameBytes` is
 * refused as soon as the prefix is read, before the frame is buffered.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  #buffer: Uint8Array = new Uint8Array(0);

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Appends `chunk` and returns every frame now complete. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : concat(this.#buffer, chunk);
    const frames: Uint8Array[] = [];
    for (;;) {
      const header = readPrefix(this.#buffer);
      if (header === undefined) break;
      if (header.length > this.#maxFrameBytes) throw new FrameTooLargeError(header.length, this.#maxFrameBytes);
      const end = header.prefixBytes + header.length;
      if (this.#buffer.length < end) break;
      frames.push(this.#buffer.slice(header.prefixBytes, end));
      this.#buffer = this.#buffer.subarray(end);
    }
    return frames;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.#buffer.length;
  }
}

function readPrefix(buffer: Uint8Array): { length: number; prefixBytes: number } | undefined {
  let length = 0;
  for (let i = 0; i < buffer.length; i++) {
    if (i >= MAX_PREFIX_BYTES) throw new MalformedLengthPrefixError('length prefix longer than 5 bytes');
    const byte = buffer[i]!;
    length += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { length, prefixBytes: i + 1 };
  }
  if (buffer.length >= MAX_PREFIX_BYTES) throw new MalformedLengthPrefixError('length prefix longer than 5 bytes');
  return undefined;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
