import { Decoder, Encoder, setSizeLimits } from 'cbor-x';
import { type Infer, type Shape, ShapeError } from './shape.ts';

// Bound what one CBOR item may declare, so a hostile length cannot make the decoder allocate
// before the shape check runs. Frames are capped per protocol as well.
setSizeLimits({ maxArraySize: 200_000, maxMapSize: 200_000, maxObjectSize: 200_000 });

const encoder = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Why a frame was refused. */
export type WireErrorCode = 'malformed' | 'unsupported-version' | 'unknown-type' | 'bad-shape' | 'oversized' | 'protocol';

/** Thrown when a frame from a peer is refused; the code says why, and is what gets counted. */
export class WireError extends Error {
  override name = 'WireError';
  readonly code: WireErrorCode;

  constructor(code: WireErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type MessageShapes = Record<string, Shape<unknown>>;

/** A protocol: its id, envelope version, frame cap and one shape per message type. */
export interface ProtocolDefinition<M extends MessageShapes> {
  readonly id: string;
  readonly version: number;
  readonly maxFrameBytes: number;
  readonly messages: M;
}

/** The union of a protocol's messages, each tagged by `type`. */
export type MessageOf<P> = P extends ProtocolDefinition<infer M>
  ? { [K in keyof M & string]: { readonly type: K; readonly body: Infer<M[K]> } }[keyof M & string]
  : never;

export function defineProtocol<const M extends MessageShapes>(definition: ProtocolDefinition<M>): ProtocolDefinition<M> {
  return definition;
}

/**
 * Encodes a message as a CBOR envelope `[version, type, body]`. The body is checked against its
 * shape first: a node never sends what it would refuse to receive.
 */
export function encodeMessage<M extends MessageShapes>(protocol: ProtocolDefinition<M>, message: MessageOf<ProtocolDefinition<M>>): Uint8Array {
  const shape = protocol.messages[message.type];
  if (shape === undefined) throw new WireError('unknown-type', `${protocol.id} has no message type ${message.type}`);
  shape.check(message.body, message.type);
  const frame: Uint8Array = encoder.encode([protocol.version, message.type, message.body]);
  if (frame.length > protocol.maxFrameBytes) {
    throw new WireError('oversized', `${protocol.id} ${message.type} is ${frame.length} bytes, over the ${protocol.maxFrameBytes}-byte cap`);
  }
  return frame;
}

/** Decodes and validates one frame. Throws {@link WireError}; never returns an unchecked value. */
export function decodeMessage<M extends MessageShapes>(protocol: ProtocolDefinition<M>, frame: Uint8Array): MessageOf<ProtocolDefinition<M>> {
  if (frame.length > protocol.maxFrameBytes) {
    throw new WireError('oversized', `frame of ${frame.length} bytes over the ${protocol.maxFrameBytes}-byte cap of ${protocol.id}`);
  }
  let envelope: unknown;
  try {
    envelope = decoder.decode(frame);
  } catch (error) {
    throw new WireError('malformed', `not a CBOR item: ${(error as Error).message}`);
  }
  if (!Array.isArray(envelope) || envelope.length !== 3) throw new WireError('malformed', 'envelope is not [version, type, body]');
  const [version, type, body] = envelope as [unknown, unknown, unknown];
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) throw new WireError('malformed', 'envelope version is not an integer');
  if (version !== protocol.version) {
    throw new WireError('unsupported-version', `${protocol.id} envelope version ${version}; this node speaks ${protocol.version}`);
  }
  if (typeof type !== 'string' || !Object.hasOwn(protocol.messages, type)) {
    throw new WireError('unknown-type', `${protocol.id} has no message type ${JSON.stringify(type)}`);
  }
  try {
    return { type, body: protocol.messages[type]!.check(body, type) } as MessageOf<ProtocolDefinition<M>>;
  } catch (error) {
    if (error instanceof ShapeError) throw new WireError('bad-shape', error.message);
    throw error;
  }
}

/** Encodes any plain value as CBOR (for storage records and join strings). */
export function encodeCbor(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes CBOR, turning any decoder failure into a `malformed` {@link WireError}. */
export function decodeCbor(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch (error) {
    throw new WireError('malformed', `not a CBOR item: ${(error as Error).message}`);
  }
}
