import { randomBytes } from 'node:crypto';
import { type MemberStatus, encodeJoinString, sha256Hex, signGrant } from '../mesh/index.ts';
import type { ApiClient } from './api-client.ts';
import type { OperatorKeyFile } from './key-files.ts';

export const TOKEN_TTL_DEFAULT_MS = 60 * 60 * 1000;
export const TOKEN_TTL_MAX_MS = 30 * 24 * 60 * 60 * 1000;
const JOIN_STRING_ADDRS_MAX = 8;

/** Thrown when a join token cannot be made as asked. */
export class TokenRequestError extends Error {
  override name = 'TokenRequestError';
}

/**
 * Makes a join string where the operator key is: 32 random bytes made here, and the operator's
 * signed grant for their hash. The node named by `client` only supplies bootstrap addresses (its
 * own, then those of members it is connected to); no node sees the token before it is redeemed.
 */
export async function createJoinString(
  client: ApiClient,
  key: OperatorKeyFile & { readonly seed: Uint8Array },
  options: { ttlMs?: number; name?: string; now?: number } = {},
): Promise<{ join: string; expiresAt: number }> {
  const ttlMs = options.ttlMs ?? TOKEN_TTL_DEFAULT_MS;
  if (ttlMs <= 0 || ttlMs > TOKEN_TTL_MAX_MS) throw new TokenRequestError('a token lifetime must be between 1 ms and 30 days');
  const status = await client.get<{ fleetId: string; self: { peerId: string; addrs: string[] }; members: MemberStatus[] }>('/api/v1/status');
  if (status.fleetId !== key.fleetId) throw new TokenRequestError(`that node belongs to fleet ${status.fleetId}, but the key is for fleet ${key.fleetId}`);
  const withPeer = (peer: string) => (address: string) => (address.includes('/p2p/') ? address : `${address}/p2p/${peer}`);
  const addrs = [
    ...status.self.addrs.map(withPeer(status.self.peerId)),
    ...status.members.filter((m) => !m.self && m.state === 'alive').flatMap((m) => m.addrs.map(withPeer(m.peerId))),
  ].slice(0, JOIN_STRING_ADDRS_MAX);
  if (addrs.length === 0) throw new TokenRequestError('that node reports no mesh addresses to join through');
  const token = new Uint8Array(randomBytes(32));
  const expiresAt = (options.now ?? Date.now()) + ttlMs;
  const name = options.name === undefined ? {} : { name: options.name };
  const grant = signGrant(key.seed, { fleetId: key.fleetId, tokenHash: sha256Hex(token), expiresAt, operator: key.publicKey, ...name });
  return { join: encodeJoinString({ fleetId: key.fleetId, addrs, token, grant, ...name }), expiresAt };
}
