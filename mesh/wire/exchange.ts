import type { Clock } from '../ports/clock.ts';
import type { FrameStream, PeerId, Transport } from '../ports/transport.ts';
import { type MessageOf, type MessageShapes, type ProtocolDefinition, WireError, decodeMessage, encodeMessage } from './protocol.ts';

/** The first frame of a stream; a stream that ends first is a protocol error. */
export async function firstFrame(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  for await (const frame of stream) return frame;
  throw new WireError('protocol', 'the stream ended before a message arrived');
}

/**
 * One request and its answer on a fresh stream: opens it (connecting if needed), sends
 * `message`, waits for one frame and decodes it. Resolves undefined when nothing (connection
 * included) came within `timeoutMs`; throws on a refused stream or a malformed answer.
 */
export async function exchange<M extends MessageShapes>(
  transport: Transport,
  clock: Clock,
  peer: PeerId,
  protocol: ProtocolDefinition<M>,
  message: MessageOf<ProtocolDefinition<M>>,
  timeoutMs: number,
): Promise<MessageOf<ProtocolDefinition<M>> | undefined> {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  let stream: FrameStream | undefined;
  try {
    stream = await transport.openStream(peer, protocol.id, { maxFrameBytes: protocol.maxFrameBytes, signal: controller.signal });
    const opened = stream;
    await opened.send(encodeMessage(protocol, message));
    const frame = await new Promise<Uint8Array | undefined>((resolve, reject) => {
      controller.signal.addEventListener('abort', () => resolve(undefined), { once: true });
      firstFrame(opened).then(resolve, reject);
    });
    if (frame === undefined) {
      opened.abort(new Error(`no answer within ${timeoutMs} ms`));
      return undefined;
    }
    await opened.close();
    return decodeMessage(protocol, frame);
  } catch (error) {
    stream?.abort(error as Error);
    if (controller.signal.aborted) return undefined;
    throw error;
  } finally {
    clock.clearTimeout(timer);
  }
}
