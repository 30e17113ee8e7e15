import { FLEET_ID_PATTERN } from '../../crdt-schema/index.ts';
import { decodeCbor, encodeCbor, s } from '../wire/index.ts';

/** What a join string carries: where to go, which fleet, and the one-time secret. */
export interface JoinInfo {
  readonly fleetId: string;
  /** Bootstrap multiaddrs, each ending in `/p2p/<peerId>`. */
  readonly addrs: readonly string[];
  readonly token: Uint8Array;
  /** The node name the token is bound to, if any. */
  readonly name?: string;
}

const PREFIX = 'pnjoin1.';
const MAX_JOIN_STRING = 8192;

const joinShape = s.object({
  f: s.string({ min: 32, max: 32, pattern: FLEET_ID_PATTERN }),
  a: s.array(s.string({ min: 1, max: 512 }), { min: 1, max: 16 }),
  t: s.bytes({ min: 32, max: 32 }),
  n: s.optional(s.string({ min: 1, max: 63 })),
});

/** Thrown when a join string cannot be read; the message says what is wrong with it. */
export class InvalidJoinStringError extends Error {
  override name = 'InvalidJoinStringError';
}

export function encodeJoinString(info: JoinInfo): string {
  const body: Record<string, unknown> = { f: info.fleetId, a: [...info.addrs], t: info.token };
  if (info.name !== undefined) body['n'] = info.name;
  joinShape.check(body);
  return PREFIX + Buffer.from(encodeCbor(body)).toString('base64url');
}

export function decodeJoinString(text: string): JoinInfo {
  const trimmed = text.trim();
  if (!trimmed.startsWith(PREFIX)) throw new InvalidJoinStringError(`a join string starts with ${PREFIX}: copy it whole from "powernode token create"`);
  if (trimmed.length > MAX_JOIN_STRING) throw new InvalidJoinStringError('the join string is too long');
  const payload = trimmed.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(payload)) throw new InvalidJoinStringError('the join string has characters that base64url does not use: was it cut or wrapped?');
  try {
    const body = joinShape.check(decodeCbor(Buffer.from(payload, 'base64url')));
    return { fleetId: body.f, addrs: body.a, token: body.t, ...(body.n === undefined ? {} : { name: body.n }) };
  } catch (error) {
    throw new InvalidJoinStringError(`the join string is damaged (${(error as Error).message}): copy it again`);
  }
}

/** The peer id at the end of a multiaddr (`…/p2p/<id>`), if any. */
export function peerIdOfAddress(address: string): string | undefined {
  const match = /\/p2p\/([1-9A-HJ-NP-Za-km-z]+)$/.exec(address);
  return match?.[1];
}
