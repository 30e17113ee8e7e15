import { credentialChainShape } from '../trust/credentials.ts';
import { defineProtocol, type MessageOf, s } from '../wire/index.ts';

/** Redeeming a join token with a member (docs/ARCHITECTURE.md §Join). */
export const joinProtocol = defineProtocol({
  id: '/powernode/join/1',
  version: 1,
  maxFrameBytes: 64 * 1024,
  messages: {
    redeem: s.object({
      fleetId: s.string({ min: 1, max: 64 }),
      token: s.bytes({ min: 32, max: 32 }),
      name: s.string({ min: 1, max: 63 }),
      grant: s.object({
        expiresAt: s.uint(),
        name: s.optional(s.string({ min: 1, max: 63 })),
        operator: s.string({ min: 1, max: 100 }),
        signature: s.string({ min: 1, max: 200 }),
      }),
    }),
    welcome: s.object({ fleetId: s.string({ min: 1, max: 64 }), fleetName: s.string({ max: 200 }), chain: credentialChainShape }),
    refused: s.object({
      reason: s.oneOf(['bad-grant', 'expired', 'used', 'name-mismatch', 'revoked', 'wrong-fleet', 'not-ready', 'bad-request'] as const),
      message: s.string({ max: 1000 }),
    }),
  },
});

export type JoinMessage = MessageOf<typeof joinProtocol>;
export type JoinRefusalReason = Extract<JoinMessage, { type: 'refused' }>['body']['reason'];

/** Thrown on the joining node when a member refuses its token; `reason` says which check failed. */
export class JoinRefusedError extends Error {
  override name = 'JoinRefusedError';
  readonly reason: JoinRefusalReason;

  constructor(reason: JoinRefusalReason, message: string) {
    super(message);
    this.reason = reason;
  }
}
