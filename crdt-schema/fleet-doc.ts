import { ImmutableString } from '@automerge/automerge';
import { type FleetId, PEER_ID_PATTERN } from './ids.ts';
import { InvalidLabelError, LABELS_PER_NODE_MAX, checkLabelKey, checkLabelValue } from './labels.ts';
import { toPlain } from './plain.ts';
import { SCHEMA_VERSIONS } from './schema.ts';

/** An operator key certified by the fleet root key. */
export interface OperatorView {
  readonly publicKey: string;
  readonly name: string;
  readonly addedAt: number;
  /** Root signature over the operator certificate statement (base64url). */
  readonly certificate: string;
}

export interface MemberView {
  readonly peerId: string;
  readonly name: string;
  readonly joinedAt: number;
  readonly labels: Readonly<Record<string, string>>;
  /** `founder` for the node that created the fleet, else the first 16 hex characters of the token hash. */
  readonly via: string;
}

export interface TokenView {
  readonly hash: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly name?: string;
  readonly usedBy?: string;
  readonly usedAt?: number;
}

/** The fleet document as plain data. Malformed entries (from a faulty writer) are left out. */
export interface FleetView {
  readonly schema: number;
  readonly fleetId: FleetId;
  readonly name: string;
  readonly createdAt: number;
  readonly rootKey: string;
  readonly operators: readonly OperatorView[];
  readonly members: readonly MemberView[];
  readonly tokens: readonly TokenView[];
}

/** The fleet document as Automerge holds it (what change callbacks receive). */
export interface FleetDocument {
  schema: number;
  fleetId: ImmutableString;
  name: ImmutableString;
  createdAt: number;
  rootKey: ImmutableString;
  operators: Record<string, { name: ImmutableString; addedAt: number; certificate: ImmutableString }>;
  members: Record<string, { name: ImmutableString; joinedAt: number; labels: Record<string, ImmutableString>; via: ImmutableString }>;
  tokens: Record<string, { createdAt: number; expiresAt: number; name?: ImmutableString; usedBy?: ImmutableString; usedAt?: number }>;
}

export interface FleetFounding {
  readonly fleetId: FleetId;
  readonly name: string;
  readonly createdAt: number;
  readonly rootKey: string;
  readonly operator: OperatorView;
  readonly founder: { readonly peerId: string; readonly name: string };
}

const str = (value: string): ImmutableString => new ImmutableString(value);

/** Fills an empty document with a new fleet: its root key, first operator and founding member. */
export function foundFleet(draft: FleetDocument, founding: FleetFounding): void {
  draft.schema = SCHEMA_VERSIONS.fleet;
  draft.fleetId = str(founding.fleetId);
  draft.name = str(founding.name);
  draft.createdAt = founding.createdAt;
  draft.rootKey = str(founding.rootKey);
  draft.operators = {};
  draft.members = {};
  draft.tokens = {};
  addOperator(draft, founding.operator);
  draft.members[founding.founder.peerId] = {
    name: str(founding.founder.name),
    joinedAt: founding.createdAt,
    labels: {},
    via: str('founder'),
  };
}

export function addOperator(draft: FleetDocument, operator: OperatorView): void {
  draft.operators[operator.publicKey] = {
    name: str(operator.name),
    addedAt: operator.addedAt,
    certificate: str(operator.certificate),
  };
}

/** Records a join token by its SHA-256 (hex); the token itself is never stored. */
export function addToken(draft: FleetDocument, token: Omit<TokenView, 'usedBy' | 'usedAt'>): void {
  const entry: FleetDocument['tokens'][string] = { createdAt: token.createdAt, expiresAt: token.expiresAt };
  if (token.name !== undefined) entry.name = str(token.name);
  draft.tokens[token.hash] = entry;
}

/** Why a token cannot be redeemed. */
export type RedeemRefusal = 'unknown-token' | 'expired' | 'used' | 'name-mismatch' | 'wrong-fleet' | 'already-member';

export type RedeemCheck = { readonly ok: true } | { readonly ok: false; readonly reason: RedeemRefusal; readonly message: string };

/** Decides whether `peerId` may join with the token whose hash is `hash`. Pure. */
export function checkRedeem(fleet: FleetView, request: { hash: string; peerId: string; name?: string; now: number }): RedeemCheck {
  const token = fleet.tokens.find((t) => t.hash === request.hash);
  if (token === undefined) {
    return { ok: false, reason: 'unknown-token', message: 'this fleet never issued that join token: ask an operator for a new one' };
  }
  if (token.usedBy !== undefined) {
    if (token.usedBy === request.peerId) return { ok: true };
    return { ok: false, reason: 'used', message: `that join token was already used by ${token.usedBy}: ask an operator for a new one` };
  }
  if (token.expiresAt <= request.now) {
    return { ok: false, reason: 'expired', message: `that join token expired at ${new Date(token.expiresAt).toISOString()}: ask an operator for a new one` };
  }
  if (token.name !== undefined && token.name !== request.name) {
    return { ok: false, reason: 'name-mismatch', message: `that join token is for a node named ${token.name}` };
  }
  if (fleet.members.some((m) => m.peerId === request.peerId)) {
    return { ok: false, reason: 'already-member', message: `${request.peerId} is already a member of this fleet` };
  }
  return { ok: true };
}

/** Marks the token used and adds the member. Call only after {@link checkRedeem} said ok. */
export function redeemToken(draft: FleetDocument, request: { hash: string; peerId: string; name: string; now: number }): void {
  const token = draft.tokens[request.hash];
  if (token === undefined) throw new RangeError('redeemToken needs a token that checkRedeem accepted');
  token.usedBy = str(request.peerId);
  token.usedAt = request.now;
  if (draft.members[request.peerId] === undefined) {
    draft.members[request.peerId] = { name: str(request.name), joinedAt: request.now, labels: {}, via: str(request.hash.slice(0, 16)) };
  }
}

/** Thrown when a label change names a peer that is not a member. */
export class UnknownMemberError extends Error {
  override name = 'UnknownMemberError';
}

/** Sets and removes labels on a member. Validates everything before changing anything. */
export function setLabels(draft: FleetDocument, peerId: string, set: Readonly<Record<string, string>>, remove: readonly string[]): void {
  const member = draft.members[peerId];
  if (member === undefined) throw new UnknownMemberError(`${peerId} is not a member of this fleet`);
  for (const [key, value] of Object.entries(set)) {
    checkLabelKey(key);
    checkLabelValue(key, value);
  }
  for (const key of remove) checkLabelKey(key);
  const after = new Set([...Object.keys(member.labels), ...Object.keys(set)]);
  for (const key of remove) after.delete(key);
  if (after.size > LABELS_PER_NODE_MAX) throw new InvalidLabelError(`a node can carry at most ${LABELS_PER_NODE_MAX} labels`);
  for (const [key, value] of Object.entries(set)) {
    if (String(member.labels[key] ?? '') !== value || member.labels[key] === undefined) member.labels[key] = str(value);
  }
  for (const key of remove) delete member.labels[key];
}

/** Deletes tokens that expired more than `graceMs` ago, unused or used. */
export function pruneTokens(draft: FleetDocument, now: number, graceMs: number): number {
  let pruned = 0;
  for (const [hash, token] of Object.entries(draft.tokens)) {
    if (token.expiresAt + graceMs < now) {
      delete draft.tokens[hash];
      pruned++;
    }
  }
  return pruned;
}

/** Reads the fleet document into plain data, leaving out entries that do not have the right shape. */
export function readFleet(doc: unknown): FleetView | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const root = toPlain(doc) as Record<string, unknown>;
  if (typeof root['fleetId'] !== 'string' || typeof root['schema'] !== 'number') return undefined;
  return {
    schema: root['schema'],
    fleetId: root['fleetId'] as FleetId,
    name: stringOr(root['name'], ''),
    createdAt: numberOr(root['createdAt'], 0),
    rootKey: stringOr(root['rootKey'], ''),
    operators: entries(root['operators']).flatMap(([publicKey, v]) =>
      typeof v['name'] === 'string' && typeof v['certificate'] === 'string'
        ? [{ publicKey, name: v['name'], addedAt: numberOr(v['addedAt'], 0), certificate: v['certificate'] }]
        : [],
    ),
    members: entries(root['members']).flatMap(([peerId, v]) =>
      PEER_ID_PATTERN.test(peerId)
        ? [{ peerId, name: stringOr(v['name'], ''), joinedAt: numberOr(v['joinedAt'], 0), labels: stringMap(v['labels']), via: stringOr(v['via'], '') }]
        : [],
    ),
    tokens: entries(root['tokens']).flatMap(([hash, v]) =>
      typeof v['expiresAt'] === 'number'
        ? [
            {
              hash,
              createdAt: numberOr(v['createdAt'], 0),
              expiresAt: v['expiresAt'],
              ...(typeof v['name'] === 'string' ? { name: v['name'] } : {}),
              ...(typeof v['usedBy'] === 'string' ? { usedBy: v['usedBy'] } : {}),
              ...(typeof v['usedAt'] === 'number' ? { usedAt: v['usedAt'] } : {}),
            },
          ]
        : [],
    ),
  };
}

function entries(value: unknown): Array<[string, Record<string, unknown>]> {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value as Record<string, unknown>)
    .filter((entry): entry is [string, Record<string, unknown>] => typeof entry[1] === 'object' && entry[1] !== null)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [key, v] of Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}
