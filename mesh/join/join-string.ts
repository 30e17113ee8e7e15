import { FLEET_ID_PATTERN } from '../../crdt-schema/index.ts';
import type { Grant } from '../trust/grants.ts';
import { sha256Hex } from '../trust/keys.ts';
import { decodeCbor, encodeCbor, s } from '../wire/index.ts';

/** What a join string carries: where to go, which fleet, the one-time secret and the operator's grant for it. */
export interface JoinInfo {
  readonly fleetId: string;
  /** Bootstrap multiaddrs, each ending in `/p2p/<peerId>`. */
  readonly addrs: readonly string[];
  readonly token: Uint8Array;
  /** The node name the token is bound to, if any. */
  readonly name?: string;
  readonly grant: Grant;
}

const PREFIX = 'pnjoin2.';
const OLD_PREFIX = 'pnjoin1.';
const MAX_JOIN_STRING = 8192;

const joinShape = s.object({
  f: s.string({ min: 32, max: 32, pattern: FLEET_ID_PATTERN }),
  a: s.array(s.string({ min: 1, max: 512 }), { min: 1, max: 16 }),
  t: s.bytes({ min: 32, max: 32 }),
  n: s.optional(s.string({ min: 1, max: 63 })),
  // The grant, minus what the rest of the string already says (fleet, token hash, name).
  g: s.object({ e: s.uint(), o: s.string({ min: 1, max: 100 }), s: s.string({ min: 1, max: 200 }) }),
});

/** Thrown when a join string cannot be read; the message says what is wrong with it. */
export class InvalidJoinStringError extends Error {
  override name = 'InvalidJoinStringError';
}

export function encodeJoinString(info: JoinInfo): string {
  const body: Record<string, unknown> = { f: info.fleetId, a: [...info.addrs], t: info.token, g: { e: info.grant.expiresAt, o: info.grant.operator, s: info.grant.signature } };
  if (info.name !== undefined) body['n'] = info.name;
  joinShape.check(body);
  return PREFIX + Buffer.from(encodeCbor(body)).toString('base64url');
}

export function decodeJoinString(text: string): JoinInfo {
  const trimmed = text.trim();
  if (trimmed.startsWith(OLD_PREFIX)) throw new InvalidJoinStringError('this join string is from an older powernode release: ask an operator for a new one');
  if (!trimmed.startsWith(PREFIX)) throw new InvalidJoinStringError(`a join string starts with ${PREFIX}: copy it whole from "powernode token create"`);
  if (trimmed.length > MAX_JOIN_STRING) throw new InvalidJoinStringError('the join string is too long');
  const payload = trimmed.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(payload)) throw new InvalidJoinStringError('the join string has characters that base64url does not use: was it cut or wrapped?');
  try {
    const body = joinShape.check(decodeCbor(Buffer.from(payload, 'base64url')));
    const name = body.n === undefined ? {} : { name: body.n };
    const grant: Grant = { fleetId: body.f, tokenHash: sha256Hex(body.t), expiresAt: body.g.e, operator: body.g.o, signature: body.g.s, ...name };
    return { fleetId: body.f, addrs: body.a, token: body.t, grant, ...name };
  } catch (error) {
    throw new InvalidJoinStringError(`the join string is damaged (${(error as Error).message}): copy it again`);
  }
}

/** The peer id at the end of a multiaddr (`…/p2p/<id>`), if any. */
export function peerIdOfAddress(address: string): string | undefined {
  const match = /\/p2p\/([1-9A-HJ-NP-Za-km-z]+)$/.exec(address);
  return match?.[1];
}
