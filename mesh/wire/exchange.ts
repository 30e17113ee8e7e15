import type { Clock } from '../ports/clock.ts';
import type { FrameStream, PeerId, ProtocolOptions, RequestHandler, RequestHandlerOptions, Transport } from '../ports/transport.ts';
import { type MessageOf, type MessageShapes, type ProtocolDefinition, WireError, decodeMessage, encodeMessage } from './protocol.ts';

/** The first frame of a stream; a stream that ends first is a protocol error. */
export async function firstFrame(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  for await (const frame of stream) return frame;
  throw new WireError('protocol', 'the stream ended before a message arrived');
}

/** Thrown by a request handler to reset the exchange without counting it against the peer (not a wire fault). */
export class ExchangeAbortedError extends Error {
  override name = 'ExchangeAbortedError';
}

/**
 * One request and its answer: through the transport's `request` where it has one (bounded by its
 * own timer), else on a fresh stream (opened, connecting if needed; one frame sent, one read, on
 * `clock`'s timer). Resolves undefined when nothing (connection included) came within
 * `timeoutMs`; throws on a refused or reset exchange or a malformed answer.
 */
export function exchange<M extends MessageShapes>(
  transport: Transport,
  clock: Clock,
  peer: PeerId,
  protocol: ProtocolDefinition<M>,
  message: MessageOf<ProtocolDefinition<M>>,
  timeoutMs: number,
): Promise<MessageOf<ProtocolDefinition<M>> | undefined> {
  // Not an async function: every SWIM probe is one of these, and a promise chained on the
  // transport's is one link fewer to settle than an async function awaiting it.
  let answer: Promise<Uint8Array | undefined>;
  try {
    const frame = encodeMessage(protocol, message);
    answer =
      transport.request === undefined
        ? streamExchange(transport, clock, peer, protocol.id, frame, protocol, timeoutMs)
        : transport.request(peer, protocol.id, frame, { maxFrameBytes: protocol.maxFrameBytes, timeoutMs });
  } catch (error) {
    return Promise.reject(error as Error);
  }
  return answer.then((frame) => (frame === undefined ? undefined : decodeMessage(protocol, frame)));
}

/**
 * One request frame and its answer on a fresh stream; undefined when nothing came within
 * `timeoutMs` (the stream is then reset).
 */
export async function streamExchange(transport: Transport, clock: Clock, peer: PeerId, protocol: string, frame: Uint8Array, options: ProtocolOptions, timeoutMs: number): Promise<Uint8Array | undefined> {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  let stream: FrameStream | undefined;
  try {
    stream = await transport.openStream(peer, protocol, { maxFrameBytes: options.maxFrameBytes, signal: controller.signal });
    const opened = stream;
    await opened.send(frame);
    const answer = await new Promise<Uint8Array | undefined>((resolve, reject) => {
      controller.signal.addEventListener('abort', () => resolve(undefined), { once: true });
      firstFrame(opened).then(resolve, reject);
    });
    if (answer === undefined) {
      opened.abort(new Error(`no answer within ${timeoutMs} ms`));
      return undefined;
    }
    await opened.close();
    return answer;
  } catch (error) {
    stream?.abort(error as Error);
    if (controller.signal.aborted) return undefined;
    throw error;
  } finally {
    clock.clearTimeout(timer);
  }
}

/**
 * Serves `protocol` one request per exchange: through the transport's `handleRequests` where it
 * has one, else on streams (the first frame is the request; the answer, if any, is sent back
 * before the stream closes).
 */
export function serveRequests(transport: Transport, protocol: string, handler: RequestHandler, options: RequestHandlerOptions): void {
  if (transport.handleRequests !== undefined) transport.handleRequests(protocol, handler, options);
  else transport.handle(protocol, (stream) => void serveStream(stream, handler, options), { maxFrameBytes: options.maxFrameBytes });
}

/** Serves one request on `stream` with `handler`; what goes wrong resets it (and, but for an abort, is told to `onError`). */
export async function serveStream(stream: FrameStream, handler: RequestHandler, options: Pick<RequestHandlerOptions, 'onError'>): Promise<void> {
  try {
    const answer = await handler(stream.remotePeer, await firstFrame(stream));
    if (answer !== undefined) await stream.send(answer instanceof Uint8Array ? answer : answer.frame);
    await stream.close();
    if (answer !== undefined && !(answer instanceof Uint8Array)) answer.afterSent();
  } catch (error) {
    if (!(error instanceof ExchangeAbortedError)) options.onError?.(stream.remotePeer, error as Error);
    stream.abort(error as Error);
  }
}
